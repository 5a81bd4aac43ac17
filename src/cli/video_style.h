/* -vsd DIR|VIDEO (--video-style): generate.py's video style transfer. Each frame of a folder, or
 * of a video file extracted with ffmpeg, is in turn the init image of a run with the same seed
 * and settings, written as steps/<frame name>; --video-style-blend W starts each frame after the
 * first from W * z_prev + (1 - W) * z_frame. Frames already finished are skipped, so rerunning
 * an interrupted command resumes it. */
#ifndef VQC_CLI_VIDEO_STYLE_H
#define VQC_CLI_VIDEO_STYLE_H

#include "cli/options.h"

/* Runs o->video_style to the end (or to Ctrl-C), then encodes the styled frames when a video is
 * asked for (-vid, --video, or any video file given as the source). Returns the exit status,
 * after printing a one-line error on failure. */
int cli_video_style_run(gen_opts *o);

#endif

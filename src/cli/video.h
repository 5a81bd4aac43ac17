/* --video OUT.mp4: frames written during the run, encoded with ffmpeg at the end. */
#ifndef VQC_CLI_VIDEO_H
#define VQC_CLI_VIDEO_H

#include <stddef.h>

#include "cli/options.h"

/* Checks that ffmpeg is installed and the video can be written; without --save-frames, makes
 * a temporary frames folder (its path in tmpdir, "" otherwise) and points the run at it.
 * Returns 0 or a negative code with a message. No-op without --video. */
int cli_video_prepare(gen_opts *o, char *tmpdir, size_t len);

/* Encodes the frames into o->video (H.264, written to a temporary name, then renamed). */
int cli_video_encode(const gen_opts *o);

/* Single-quotes s for sh into out (len bytes; a string too long for it is cut short). */
void cli_shell_quote(const char *s, char *out, size_t len);

/* Removes the temporary frames folder, if one was made. */
void cli_video_cleanup(const char *tmpdir);

#endif

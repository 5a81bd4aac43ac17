/* --video: the run's frames encoded with ffmpeg, when it is installed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/video.h"
#include "cli/common.h"

int cli_video_prepare(gen_opts *o, char *tmpdir, size_t len)
{
    tmpdir[0] = 0;
    if (!o->video)
        return 0;
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0)
        return vqc_set_error(
            VQC_ERR_USAGE, "--video needs ffmpeg, which is not installed (apt-get install ffmpeg)");
    int rc = vqc_check_output(o->video);
    if (rc || o->gp.save_frames)
        return rc;
    snprintf(tmpdir, len, "%s/vqclip-frames-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return vqc_set_error(VQC_ERR_IO, "cannot create a folder for frames: %s", strerror(errno));
    o->gp.save_frames = tmpdir;
    return 0;
}

void cli_shell_quote(const char *s, char *out, size_t len)
{
    size_t n = 0;
    out[n++] = '\'';
    for (; *s && n + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *s;
        }
    }
    out[n++] = '\'';
    out[n] = 0;
}

/* How many frames the run left: with generate.py's names, 1.png, 2.png, ... (0.png, the start,
 * is not part of its video). */
static int count_peer_frames(const char *dir)
{
    char path[4200];
    int n = 0;
    for (;;) {
        snprintf(path, sizeof path, "%s/%d.png", dir, n + 1);
        if (access(path, F_OK) != 0)
            return n;
        n++;
    }
}

/* The ffmpeg command for generate.py's -vid / -zvid videos, as it makes them: with -ofps of 10
 * or more the frames at -ifps are motion-interpolated to -ofps; otherwise the rate is frames /
 * -vl seconds within 10-60 fps, x264 at crf 17. (The peer encodes the interpolated video with
 * NVENC at 10 Mb/s; here x264 at that bit rate, which every ffmpeg has.) The prompts go into the
 * comment. */
static int peer_command(const gen_opts *o, const char *dir, const char *tmp, char *cmd, size_t len)
{
    int frames = count_peer_frames(o->gp.save_frames);
    if (frames == 0)
        return 0;
    char comment[1200];
    cli_shell_quote(o->gp.prompts ? o->gp.prompts : "", comment, sizeof comment);
    if (o->output_fps >= 10) {
        snprintf(cmd, len,
                 "ffmpeg -y -loglevel error -framerate %.17g -start_number 1 -i %s/%%d.png "
                 "-frames:v %d -vf "
                 "\"minterpolate='mi_mode=mci:me=hexbs:me_mode=bidir:mc_mode=aobmc:vsbmc=1:"
                 "mb_size=8:search_param=32:fps=%.17g'\" -c:v libx264 -pix_fmt yuv420p -b:v 10M "
                 "-metadata comment=%s -f mp4 %s </dev/null",
                 o->input_fps, dir, frames, o->output_fps, comment, tmp);
    } else {
        double fps = frames / o->video_length;
        fps = fps < 10 ? 10 : fps > 60 ? 60 : fps;
        snprintf(cmd, len,
                 "ffmpeg -y -loglevel error -framerate %.17g -start_number 1 -i %s/%%d.png "
                 "-frames:v %d -c:v libx264 -r %.17g -pix_fmt yuv420p -crf 17 -preset veryslow "
                 "-metadata comment=%s -f mp4 %s </dev/null",
                 fps, dir, frames, fps, comment, tmp);
    }
    return frames;
}

int cli_video_encode(const gen_opts *o)
{
    if (!o->video)
        return 0;
    char dir[4200], tmp[4200], cmd[16000], tmpname[4096];
    snprintf(tmpname, sizeof tmpname, "%s.part.mp4", o->video);
    cli_shell_quote(o->gp.save_frames, dir, sizeof dir);
    cli_shell_quote(tmpname, tmp, sizeof tmp);
    if (o->gp.peer_frame_names) {
        if (peer_command(o, dir, tmp, cmd, sizeof cmd) == 0) {
            cli_log(VQC_LOG_WARN, "no frames were made: no video written");
            return 0;
        }
    } else {
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -y -loglevel error -framerate %d -pattern_type glob -i %s'/*.png' "
                 "-c:v libx264 -pix_fmt yuv420p -f mp4 %s </dev/null",
                 o->video_fps, dir, tmp);
    }
    int st = system(cmd);
    if (st != 0 || rename(tmpname, o->video) != 0) {
        unlink(tmpname);
        return vqc_set_error(VQC_ERR_RUNTIME, "ffmpeg could not encode %s (status %d)", o->video,
                             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    cli_log(VQC_LOG_INFO, "wrote %s", o->video);
    return 0;
}

void cli_video_cleanup(const char *tmpdir)
{
    if (!tmpdir[0])
        return;
    char q[4200], cmd[4300];
    cli_shell_quote(tmpdir, q, sizeof q);
    snprintf(cmd, sizeof cmd, "rm -rf %s", q);
    if (system(cmd) != 0)
        cli_log(VQC_LOG_WARN, "could not remove %s", tmpdir);
}

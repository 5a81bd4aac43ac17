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

/* Single-quotes s for sh into out. */
static void quote(const char *s, char *out, size_t len)
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

int cli_video_encode(const gen_opts *o)
{
    if (!o->video)
        return 0;
    char dir[4200], tmp[4200], out[4200], cmd[13000], tmpname[4096];
    snprintf(tmpname, sizeof tmpname, "%s.part.mp4", o->video);
    quote(o->gp.save_frames, dir, sizeof dir);
    quote(tmpname, tmp, sizeof tmp);
    quote(o->video, out, sizeof out);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -y -loglevel error -framerate %d -pattern_type glob -i %s'/*.png' "
             "-c:v libx264 -pix_fmt yuv420p %s </dev/null",
             o->video_fps, dir, tmp);
    int st = system(cmd);
    if (st != 0 || rename(tmpname, o->video) != 0) {
        unlink(tmpname);
        return vqc_set_error(VQC_ERR_RUNTIME, "ffmpeg could not encode %s (status %d)", o->video,
                             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    (void)out;
    return 0;
}

void cli_video_cleanup(const char *tmpdir)
{
    if (!tmpdir[0])
        return;
    char q[4200], cmd[4300];
    quote(tmpdir, q, sizeof q);
    snprintf(cmd, sizeof cmd, "rm -rf %s", q);
    if (system(cmd) != 0)
        cli_log(VQC_LOG_WARN, "could not remove %s", tmpdir);
}

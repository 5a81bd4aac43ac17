/* -vsd DIR|VIDEO: video style transfer (see video_style.h). The order of a run: the source is
 * checked (a folder of frames, or a video file ffprobe can read, whose frames ffmpeg extracts
 * into OUTPUT-frames/), every existing output is classed as finished, unfinished or foreign (a
 * foreign file stops the run: it is never overwritten), then the models load and each frame
 * that is not finished runs; the video is encoded at the end, also after Ctrl-C. */
#include "cli/video_style.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/batch.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "cli/upscale_after.h"
#include "cli/video.h"

#define VS_PATH 4096
#define VS_MARKER ".vqclip-source" /* in an extraction folder: the video it came from */
#define VS_RECORD ".vqclip-style"  /* in the styled folder: the source and seed of its frames */

typedef struct vs_run {
    gen_opts *o;
    char src_dir[VS_PATH]; /* the frames: the folder given, or the extracted ones */
    char out_dir[VS_PATH]; /* the styled frames: --save-frames, else steps */
    const char *video_in;  /* the video file given; NULL for a folder */
    char video_abs[PATH_MAX];
    char source_abs[PATH_MAX]; /* the folder or video given, resolved */
    bool recorded;             /* the styled folder has a record of this source */
    char rate[64];             /* the video's frame rate as ffprobe writes it ("25/1") */
    char **names;              /* the frames' file names, sorted */
    int n;
    bool *done; /* per frame: its output is there, finished */
} vs_run;

static void vs_free(vs_run *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->names[i]);
    free(v->names);
    free(v->done);
}

/* Writes a small text file; 0, or -1. */
static int write_text(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int write_text(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) != 0 || n < 0 ? -1 : 0;
}

/* ---- the frames ------------------------------------------------------------------------------ */

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

static bool frame_name(const char *name)
{
    return name[0] != '.' &&
           (has_ext(name, ".jpg") || has_ext(name, ".jpeg") || has_ext(name, ".png"));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The frame files of v->src_dir (regular files named *.jpg, *.jpeg or *.png, in any case; not
 * hidden ones), sorted by name, byte by byte. */
static int list_frames(vs_run *v)
{
    DIR *d = opendir(v->src_dir);
    if (!d)
        return vqc_set_error(VQC_ERR_IO, "cannot read the frames folder %s: %s", v->src_dir,
                             strerror(errno));
    int cap = 0, rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        char path[2 * VS_PATH];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", v->src_dir, e->d_name);
        if (!frame_name(e->d_name) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (v->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(v->names, (size_t)cap * sizeof *grown);
            if (!grown) {
                rc = vqc_set_error(VQC_ERR_NOMEM, "out of memory");
                break;
            }
            v->names = grown;
        }
        if (!(v->names[v->n] = strdup(e->d_name)))
            rc = vqc_set_error(VQC_ERR_NOMEM, "out of memory");
        else
            v->n++;
    }
    closedir(d);
    if (!rc && v->n == 0)
        rc = vqc_set_error(VQC_ERR_USAGE, "%s holds no frames (*.jpg, *.jpeg, *.png)", v->src_dir);
    if (!rc)
        qsort(v->names, (size_t)v->n, sizeof *v->names, by_name);
    return rc;
}

/* ---- a video file: its rate, its frames ------------------------------------------------------ */

/* The first line a shell command prints, into out; 0 when it exited 0 and printed one. */
static int first_line(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    out[0] = 0;
    bool got = fgets(out, (int)len, p) != NULL;
    char rest[256];
    while (fgets(rest, sizeof rest, p))
        ;
    int st = pclose(p);
    out[strcspn(out, "\r\n")] = 0;
    return got && out[0] && st == 0 ? 0 : -1;
}

/* "N/D" with N, D > 0. */
static bool good_rate(const char *r)
{
    long n, d;
    int used = 0;
    return sscanf(r, "%ld/%ld%n", &n, &d, &used) == 2 && !r[used] && n > 0 && d > 0;
}

/* The frame rate of the video's first video stream (its average, else its base rate). */
static int probe_rate(vs_run *v)
{
    static const char *const fields[] = {"avg_frame_rate", "r_frame_rate"};
    char q[VS_PATH + 100], cmd[2 * VS_PATH];
    cli_shell_quote(v->video_in, q, sizeof q);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "ffprobe -v error -select_streams v:0 -show_entries stream=%s -of "
                 "default=noprint_wrappers=1:nokey=1 %s </dev/null 2>/dev/null",
                 fields[i], q);
        if (first_line(cmd, v->rate, sizeof v->rate) == 0 && good_rate(v->rate))
            return 0;
    }
    return vqc_set_error(VQC_ERR_FORMAT, "ffmpeg cannot read %s as a video", v->video_in);
}

/* Without -s, a video that is not square is styled at the default square size: said once,
 * with a size of its shape to pass instead (its width 512, sides multiples of 16). */
static void warn_aspect(const vs_run *v)
{
    char q[VS_PATH + 100], cmd[2 * VS_PATH], line[64];
    int w = 0, h = 0;
    if (v->o->size_given)
        return;
    cli_shell_quote(v->video_in, q, sizeof q);
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of "
             "csv=p=0 %s </dev/null 2>/dev/null",
             q);
    if (first_line(cmd, line, sizeof line) != 0 || sscanf(line, "%d,%d", &w, &h) != 2 || w <= 0 ||
        h <= 0 || w == h)
        return;
    int sh = (int)(512.0 * h / w / 16 + 0.5) * 16;
    cli_log(VQC_LOG_WARN,
            "%s is %dx%d and no -s was given: its frames are styled at the default square "
            "size; -s 512 %d keeps its shape",
            v->video_in, w, h, sh > 0 ? sh : 16);
}

/* Whether `dir` holds a marker naming this video (1), another or none (0), or is absent (-1). */
static int marker_matches(const vs_run *v, const char *dir)
{
    char path[VS_PATH + 64], line[PATH_MAX + 2];
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/" VS_MARKER, dir);
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(line, sizeof line, f);
    if (f)
        fclose(f);
    line[ok ? strcspn(line, "\n") : 0] = 0;
    return ok && strcmp(line, v->video_abs) == 0;
}

static int remove_tree(const char *dir)
{
    char q[VS_PATH + 100], cmd[VS_PATH + 200];
    cli_shell_quote(dir, q, sizeof q);
    snprintf(cmd, sizeof cmd, "rm -rf %s", q);
    return system(cmd) == 0 ? 0 : vqc_set_error(VQC_ERR_IO, "cannot remove %s", dir);
}

/* ffmpeg writes the frames (JPEG at quality 2, as generate.py's video_styler.sh) into a
 * .part folder holding the marker, renamed when complete. */
static int extract_into(vs_run *v, const char *part)
{
    char mark[VS_PATH + 64], qv[VS_PATH + 100], qp[VS_PATH + 100], cmd[3 * VS_PATH];
    if (mkdir(part, 0777) != 0)
        return vqc_set_error(VQC_ERR_IO, "cannot create folder %s: %s", part, strerror(errno));
    snprintf(mark, sizeof mark, "%s/" VS_MARKER, part);
    if (write_text(mark, "%s\n", v->video_abs))
        return vqc_set_error(VQC_ERR_IO, "cannot write %s", mark);
    cli_shell_quote(v->video_in, qv, sizeof qv);
    cli_shell_quote(part, qp, sizeof qp);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -y -loglevel error -i %s -map 0:v:0 -q:v 2 %s/%%06d.jpg", qv, qp);
    cli_log(VQC_LOG_INFO, "extracting the frames of %s (%s fps) into %s", v->video_in, v->rate,
            v->src_dir);
    int st = system(cmd);
    if (st != 0) {
        remove_tree(part);
        if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 255)) /* Ctrl-C */
            return vqc_set_error(VQC_ERR_INTERRUPTED, "interrupted while extracting frames");
        return vqc_set_error(VQC_ERR_FORMAT, "ffmpeg could not extract the frames of %s",
                             v->video_in);
    }
    if (rename(part, v->src_dir) != 0)
        return vqc_set_error(VQC_ERR_IO, "cannot rename %s: %s", part, strerror(errno));
    return 0;
}

/* The length of the output's name without its image extension. */
static size_t output_stem(const char *out)
{
    size_t n = strlen(out);
    if (has_ext(out, ".jpeg"))
        return n - 5;
    return has_ext(out, ".png") || has_ext(out, ".jpg") ? n - 4 : n;
}

/* OUTPUT-frames/ (OUTPUT without its extension): reused when a run of this video made it,
 * refused when it is something else, else extracted. */
static int video_frames(vs_run *v)
{
    if (system("command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1") != 0)
        return vqc_set_error(VQC_ERR_USAGE, "-vsd with a video file needs ffmpeg and ffprobe, "
                                            "which are not installed (apt-get install ffmpeg)");
    int rc = probe_rate(v);
    if (rc)
        return rc;
    warn_aspect(v);
    const char *out = v->o->gp.output;
    size_t stem = output_stem(out);
    if (stem + 16 > sizeof v->src_dir)
        return vqc_set_error(VQC_ERR_USAGE, "output name too long");
    snprintf(v->src_dir, sizeof v->src_dir, "%.*s-frames", (int)stem, out);
    int m = marker_matches(v, v->src_dir);
    if (m == 1)
        return 0;
    if (m == 0)
        return vqc_set_error(VQC_ERR_USAGE,
                             "%s exists and holds no frames extracted from %s: move it, or pick "
                             "another -o",
                             v->src_dir, v->video_in);
    char part[VS_PATH + 16];
    snprintf(part, sizeof part, "%s.part", v->src_dir);
    m = marker_matches(v, part);
    if (m == 0)
        return vqc_set_error(VQC_ERR_USAGE, "%s exists and is not this tool's: move it", part);
    if (m == 1 && (rc = remove_tree(part))) /* an interrupted extraction */
        return rc;
    rc = cli_make_parent_dirs(part);
    return rc ? rc : extract_into(v, part);
}

/* A folder's name without trailing slashes ("/" stays), so that frames are DIR/NAME. */
static void folder_name(const char *dir, char *out, size_t len)
{
    snprintf(out, len, "%s", dir);
    for (size_t n = strlen(out); n > 1 && out[n - 1] == '/'; n--)
        out[n - 1] = 0;
}

/* The source: a folder of frames, or a video file (its frames extracted later). */
static int find_source(vs_run *v)
{
    const char *s = v->o->video_style;
    struct stat st;
    if (stat(s, &st) != 0)
        return vqc_set_error(VQC_ERR_IO, "-vsd %s: %s", s, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        folder_name(s, v->src_dir, sizeof v->src_dir);
        return realpath(s, v->source_abs) ? 0
                                          : vqc_set_error(VQC_ERR_IO, "%s: %s", s, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return vqc_set_error(VQC_ERR_USAGE, "-vsd %s: neither a folder nor a video file", s);
    v->video_in = s;
    if (!realpath(s, v->video_abs))
        return vqc_set_error(VQC_ERR_IO, "%s: %s", s, strerror(errno));
    snprintf(v->source_abs, sizeof v->source_abs, "%s", v->video_abs);
    return 0;
}

/* ---- the outputs ----------------------------------------------------------------------------- */

static void frame_path(const vs_run *v, const char *dir, int i, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, v->names[i]);
}

/* The styled folder's record, when it has one: it must name this source; its seed is taken
 * when none is given, so that a resumed run goes on with the seed of the frames before. */
static int read_record(vs_run *v)
{
    char path[VS_PATH + 64], line[PATH_MAX + 32], source[PATH_MAX + 32] = "";
    unsigned long long seed = 0;
    bool seeded = false;
    snprintf(path, sizeof path, "%s/" VS_RECORD, v->out_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "source=", 7) == 0)
            snprintf(source, sizeof source, "%s", line + 7);
        else if (sscanf(line, "seed=%llu", &seed) == 1)
            seeded = true;
    }
    fclose(f);
    if (strcmp(source, v->source_abs) != 0)
        return vqc_set_error(VQC_ERR_USAGE,
                             "%s holds the frames of another source (%s): move it, or pick "
                             "another --save-frames folder",
                             v->out_dir, source);
    v->recorded = true;
    if (seeded && !v->o->seed_given) {
        v->o->gp.seed = seed;
        v->o->seed_given = true;
    }
    return 0;
}

/* Writes the record of the source and the seed (the folder exists). */
static int write_record(const vs_run *v)
{
    char path[VS_PATH + 64];
    snprintf(path, sizeof path, "%s/" VS_RECORD, v->out_dir);
    if (write_text(path, "source=%s\nseed=%llu\n", v->source_abs,
                   (unsigned long long)v->o->gp.seed))
        return vqc_set_error(VQC_ERR_IO, "cannot write %s", path);
    return 0;
}

/* Whether two paths name the same existing folder. */
static bool same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Classes each existing output: finished (its recorded step reaches -i, or it stopped on a
 * plateau), unfinished (vqclip's, made again), or not vqclip's (refused). */
static int classify_outputs(vs_run *v)
{
    if (!(v->done = calloc((size_t)v->n, sizeof *v->done)))
        return vqc_set_error(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < v->n; i++) {
        char out[2 * VS_PATH];
        struct stat st;
        frame_path(v, v->out_dir, i, out, sizeof out);
        if (stat(out, &st) != 0)
            continue;
        int step, rc = vqc_image_step(out, &step);
        if (rc == VQC_ERR_FORMAT || !S_ISREG(st.st_mode))
            return vqc_set_error(VQC_ERR_USAGE,
                                 "%s exists and is not a frame vqclip wrote: move it, or pick "
                                 "another --save-frames folder",
                                 out);
        if (rc)
            return rc;
        if (!v->recorded)
            return vqc_set_error(VQC_ERR_USAGE,
                                 "%s is a frame of another run (%s/" VS_RECORD " does not name "
                                 "%s): move it, or pick another --save-frames folder",
                                 out, v->out_dir, v->o->video_style);
        v->done[i] = step >= v->o->gp.iterations || vqc_image_plateaued(out);
    }
    return 0;
}

/* A video needs one extension for ffmpeg's image sequence. */
static const char *common_ext(const vs_run *v)
{
    const char *e0 = strrchr(v->names[0], '.');
    for (int i = 1; i < v->n; i++)
        if (strcasecmp(strrchr(v->names[i], '.'), e0) != 0)
            return NULL;
    return e0;
}

/* Everything that can be checked before the models load. */
static int plan(vs_run *v)
{
    gen_opts *o = v->o;
    folder_name(o->gp.save_frames ? o->gp.save_frames : "steps", v->out_dir, sizeof v->out_dir);
    if (same_dir(v->out_dir, v->src_dir))
        return vqc_set_error(VQC_ERR_USAGE,
                             "the styled frames would replace the frames of %s: "
                             "pick another --save-frames folder",
                             v->src_dir);
    int rc = read_record(v);
    rc = rc ? rc : classify_outputs(v);
    if (!rc && o->video && !common_ext(v))
        rc = vqc_set_error(VQC_ERR_USAGE, "the frames of %s mix extensions: a video needs one",
                           v->src_dir);
    if (!rc && o->video)
        rc = vqc_check_output(o->video);
    char src[2 * VS_PATH], out[2 * VS_PATH];
    frame_path(v, v->src_dir, 0, src, sizeof src);
    frame_path(v, v->out_dir, 0, out, sizeof out);
    vqc_generate_params gp = o->gp;
    gp.init_image = src;
    gp.output = out;
    gp.save_frames = NULL;
    rc = rc ? rc : vqc_generate_check(&gp);
    rc = rc ? rc : cli_make_parent_dirs(out);
    if (!rc && !o->seed_given)
        o->gp.seed = cli_random_seed();
    return rc ? rc : write_record(v);
}

/* ---- running --------------------------------------------------------------------------------- */

/* Styles frame i: its init image the source frame, blended with the previous styled frame. */
static int style_frame(vs_run *v, vqc_context *ctx, int i, vqc_generate_result *res)
{
    gen_opts *o = v->o;
    char src[2 * VS_PATH], out[2 * VS_PATH], prev[2 * VS_PATH];
    frame_path(v, v->src_dir, i, src, sizeof src);
    frame_path(v, v->out_dir, i, out, sizeof out);
    vqc_generate_params gp = o->gp;
    gp.init_image = src;
    gp.output = out;
    gp.save_frames = NULL;
    gp.peer_frame_names = false;
    gp.init_blend_image = NULL;
    gp.init_blend = 0;
    if (i > 0 && o->video_style_blend > 0) {
        frame_path(v, v->out_dir, i - 1, prev, sizeof prev);
        gp.init_blend_image = prev;
        gp.init_blend = o->video_style_blend;
    }
    if (!o->quiet)
        cli_log(VQC_LOG_INFO, "frame %d of %d: %s", i + 1, v->n, src);
    cli_ui ui = {.quiet = o->quiet, .json = o->json};
    cli_ui_attach(&ui, &gp);
    int rc = vqc_generate(ctx, &gp, res);
    cli_end_progress(&ui);
    return rc ? rc : cli_upscale_output(o, out);
}

/* Runs the frames not yet finished; *n_done gets how many leading frames are finished. */
static int style_all(vs_run *v, vqc_context *ctx, vqc_generate_result *res, int *n_done)
{
    int rc = 0;
    *n_done = 0;
    for (int i = 0; i < v->n && !rc; i++) {
        if (!v->done[i]) {
            if (cli_signal())
                return VQC_ERR_INTERRUPTED;
            rc = style_frame(v, ctx, i, res);
        } else if (!v->o->quiet) {
            cli_log(VQC_LOG_INFO, "frame %d of %d: %s/%s is finished: skipped", i + 1, v->n,
                    v->out_dir, v->names[i]);
        }
        if (!rc)
            *n_done = i + 1;
    }
    return rc;
}

/* ---- the video ------------------------------------------------------------------------------- */

/* Links the first n styled frames as TMP/000001.EXT, ... (ffmpeg's image sequence). */
static int link_frames(const vs_run *v, int n, const char *tmp, const char *ext)
{
    for (int i = 0; i < n; i++) {
        char out[2 * VS_PATH], abs[PATH_MAX], link[VS_PATH + 64];
        frame_path(v, v->out_dir, i, out, sizeof out);
        snprintf(link, sizeof link, "%s/%06d%s", tmp, i + 1, ext);
        if (!realpath(out, abs) || symlink(abs, link) != 0)
            return vqc_set_error(VQC_ERR_IO, "cannot link %s: %s", out, strerror(errno));
    }
    return 0;
}

/* The video's frame rate: a video source's own, else --video-fps. */
static void video_rate(const vs_run *v, char *out, size_t len)
{
    if (v->video_in)
        snprintf(out, len, "%s", v->rate);
    else
        snprintf(out, len, "%d", v->o->video_fps);
}

/* ffmpeg: the frames at the rate, H.264 at crf 17 (as -vid's); a video source's audio copied (or,
 * when the container cannot hold it as it is, made AAC: the copy's attempt fails quietly), cut to
 * the frames' length. */
static int run_ffmpeg(const vs_run *v, const char *tmp, const char *ext, const char *part, bool aac)
{
    char qt[VS_PATH + 100], qp[VS_PATH + 100], qv[VS_PATH + 100], audio[VS_PATH + 200] = "";
    char rate[64], cmd[4 * VS_PATH];
    video_rate(v, rate, sizeof rate);
    cli_shell_quote(tmp, qt, sizeof qt);
    cli_shell_quote(part, qp, sizeof qp);
    if (v->video_in) {
        cli_shell_quote(v->video_in, qv, sizeof qv);
        snprintf(audio, sizeof audio, "-i %s -map 0:v:0 -map '1:a?' -c:a %s -shortest", qv,
                 aac ? "aac" : "copy");
    }
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -y -loglevel error -framerate %s -i %s/%%06d%s %s -c:v libx264 "
             "-crf 17 -pix_fmt yuv420p -r %s -f mp4 %s%s",
             rate, qt, ext, audio, rate, qp, v->video_in && !aac ? " 2>/dev/null" : "");
    return system(cmd);
}

static int encode(const vs_run *v, int n)
{
    const char *video = v->o->video;
    if (!video)
        return 0;
    if (n == 0) {
        cli_log(VQC_LOG_WARN, "no frame was finished: no video written");
        return 0;
    }
    char tmp[VS_PATH], part[VS_PATH + 16];
    snprintf(tmp, sizeof tmp, "%s/vqclip-vsd-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp))
        return vqc_set_error(VQC_ERR_IO, "cannot create a folder for frames: %s", strerror(errno));
    snprintf(part, sizeof part, "%s.part.mp4", video);
    const char *ext = strrchr(v->names[0], '.');
    int rc = link_frames(v, n, tmp, ext);
    int st = rc ? 0 : run_ffmpeg(v, tmp, ext, part, false);
    if (!rc && st != 0 && v->video_in)
        st = run_ffmpeg(v, tmp, ext, part, true);
    if (!rc && (st != 0 || rename(part, video) != 0)) {
        unlink(part);
        rc = vqc_set_error(VQC_ERR_RUNTIME, "ffmpeg could not encode %s (status %d)", video,
                           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    cli_video_cleanup(tmp);
    char rate[64];
    video_rate(v, rate, sizeof rate);
    if (!rc)
        cli_log(VQC_LOG_INFO, "wrote %s (%d frames at %s fps)", video, n, rate);
    return rc;
}

/* ---- the command ----------------------------------------------------------------------------- */

/* Settings that cannot go with -vsd. */
static int check_combination(gen_opts *o)
{
    if (o->batch)
        return vqc_set_error(VQC_ERR_USAGE, "-vsd styles one folder or video per run; it cannot "
                                            "be used with --batch");
    if (o->gp.init_image || o->gp.init_blend_image || o->gp.init_blend)
        return vqc_set_error(VQC_ERR_USAGE, "-vsd makes each frame the init image, blended by "
                                            "--video-style-blend: drop -ii and --init-blend");
    if (o->peer_zoom_video || o->gp.zoom_every)
        return vqc_set_error(VQC_ERR_USAGE, "-vsd cannot make a zoom video");
    if (o->gp.save_state || o->gp.resume)
        return vqc_set_error(VQC_ERR_USAGE, "-vsd resumes by itself (rerun the command): drop "
                                            "--save-state and --resume");
    vqc_generate_params gp = o->gp; /* the settings, before a frame is extracted */
    gp.init_image = gp.output = "frame.png";
    gp.save_frames = NULL;
    return vqc_generate_check(&gp);
}

/* A video source is always encoded: as --video FILE, else OUTPUT.mp4. */
static int name_video(const vs_run *v)
{
    gen_opts *o = v->o;
    if (!v->video_in || o->video)
        return 0;
    const char *out = o->gp.output;
    size_t stem = output_stem(out);
    if (stem + 5 > sizeof o->peer_video_name)
        return vqc_set_error(VQC_ERR_USAGE, "output name too long");
    snprintf(o->peer_video_name, sizeof o->peer_video_name, "%.*s.mp4", (int)stem, out);
    o->video = o->peer_video_name;
    return 0;
}

/* The video written must not be the one read. */
static int check_video_name(const vs_run *v)
{
    struct stat a, b;
    if (v->video_in && v->o->video && stat(v->video_in, &a) == 0 && stat(v->o->video, &b) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return vqc_set_error(VQC_ERR_USAGE,
                             "the styled video %s would replace its source: pick another -o or "
                             "--video",
                             v->o->video);
    return 0;
}

static void summary(const vs_run *v, int rc, int status, int n_done)
{
    if (!v->o->json)
        return;
    char *video = cli_json_string(v->o->video ? v->o->video : "");
    printf("{\"event\":\"done\",\"status\":\"%s\",\"frames\":%d,\"finished\":%d,\"video\":%s",
           rc == 0                     ? "ok"
           : rc == VQC_ERR_INTERRUPTED ? "interrupted"
                                       : "failed",
           v->n, n_done, video ? video : "\"\"");
    if (rc && rc != VQC_ERR_INTERRUPTED)
        printf(",\"exit\":%d", status);
    printf("}\n");
    fflush(stdout);
    free(video);
}

int cli_video_style_run(gen_opts *o)
{
    vs_run v = {.o = o};
    int rc = check_combination(o);
    rc = rc ? rc : find_source(&v);
    rc = rc ? rc : name_video(&v);
    rc = rc ? rc : check_video_name(&v);
    if (!rc && v.video_in)
        rc = video_frames(&v);
    rc = rc ? rc : list_frames(&v);
    rc = rc ? rc : plan(&v);
    if (!rc && !o->quiet)
        cli_log(VQC_LOG_INFO, "seed %llu", (unsigned long long)o->gp.seed);
    rc = rc ? rc : cli_upscale_prepare(o);
    vqc_context *ctx = NULL;
    rc = rc ? rc : vqc_init(&o->cp, &ctx);
    vqc_generate_result res = {0};
    int n_done = 0;
    if (!rc)
        rc = style_all(&v, ctx, &res, &n_done);
    if (!rc || rc == VQC_ERR_INTERRUPTED) { /* Ctrl-C: a video of the frames finished so far */
        int vrc = encode(&v, n_done);
        rc = rc ? rc : vrc;
    }
    int status = cli_status_of(rc, &res);
    summary(&v, rc, status, n_done);
    vqc_free(ctx);
    vs_free(&v);
    return status;
}

/* vqclip -p PROMPT -o OUT.png: the generation command (options in gen_opts.c, batches in
 * batch.c). The work itself is the library's vqc_generate(). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/batch.h"
#include "cli/commands.h"
#include "cli/gen_opts.h"
#include "cli/video.h"
#include "util/error.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void)
{
    return got_signal;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

uint64_t cli_random_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &s, sizeof s) != (ssize_t)sizeof s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (fd >= 0)
        close(fd);
    return s % 4294967296ULL; /* a seed people can type */
}

/* ---- callbacks ------------------------------------------------------------------------- */

static void on_progress(int step, int total, const float *losses, int n, void *user)
{
    cli_ui *ui = user;
    if (ui->quiet || !isatty(2))
        return;
    if (ui->t_first == 0)
        ui->t_first = now() - 1e-9;
    double loss = 0, el = now() - ui->t_first;
    for (int i = 0; i < n; i++)
        loss += losses[i];
    double rate = ui->steps_seen++ > 0 ? ui->steps_seen / el : 0;
    int eta = rate > 0 ? (int)((total - step) / rate) : 0;
    fprintf(stderr, "\rvqclip: step %d/%d  %.2f it/s  ETA %dm%02ds  loss %.4f   ", step, total,
            rate, eta / 60, eta % 60, loss);
    ui->line_open = true;
    if (step == total)
        cli_end_progress(ui);
}

void cli_end_progress(cli_ui *ui)
{
    if (ui->line_open)
        fputc('\n', stderr);
    ui->line_open = false;
}

static bool on_abort(void *user)
{
    cli_ui *ui = user;
    if (got_signal)
        cli_end_progress(ui);
    return got_signal != 0;
}

char *cli_json_string(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            o += sprintf(o, "\\%c", *p);
        else if (*p < 0x20)
            o += sprintf(o, "\\u%04x", *p);
        else
            *o++ = (char)*p;
    }
    *o++ = '"';
    *o = 0;
    return out;
}

static void on_image(const char *path, int step, double loss, void *user)
{
    cli_ui *ui = user;
    if (!ui->json)
        return;
    char *q = cli_json_string(path);
    printf("{\"event\":\"image\",\"path\":%s,\"step\":%d,\"loss\":%.6f}\n", q ? q : "\"\"", step,
           loss);
    free(q);
    fflush(stdout);
}

static char *regeneration_command(const vqc_run_info *info, void *user);

void cli_ui_attach(cli_ui *ui, vqc_generate_params *gp)
{
    gp->progress = on_progress;
    gp->abort = on_abort;
    gp->on_image = on_image;
    gp->describe = regeneration_command;
    gp->user = ui;
    ui->gp = gp;
    ui->t_first = 0;
    ui->steps_seen = 0;
}

/* ---- the PNG's regeneration command ---------------------------------------------------- */

/* Appends to the growing string *s (NULL after a failed allocation, which sticks). */
static void add(char **s, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char **s, size_t *len, const char *fmt, ...)
{
    if (!*s)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = n < 0 ? NULL : realloc(*s, *len + (size_t)n + 1);
    if (!t) {
        free(*s);
        *s = NULL;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(t + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *s = t;
    *len += (size_t)n;
}

/* Appends ' FLAG 'VALUE'' with the value single-quoted for a POSIX shell. */
static void add_arg(char **s, size_t *len, const char *flag, const char *v)
{
    add(s, len, " %s '", flag);
    for (; *v; v++)
        add(s, len, *v == '\'' ? "'\\''" : "%c", *v);
    add(s, len, "'");
}

/* The augmentations as codes in their canonical order joined by commas, or "none". */
static void augments_text(const vqc_generate_params *g, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int a = 0; a < VQC_AUGMENT_COUNT; a++)
        for (int i = 0; i < g->n_augments; i++)
            if (g->augments[i] == (vqc_augment)a) {
                at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "," : "",
                                       vqc_augment_name((vqc_augment)a));
                break;
            }
    if (!at)
        snprintf(buf, len, "none");
}

/* A command line that regenerates the picture (the describe callback). */
static char *regeneration_command(const vqc_run_info *info, void *user)
{
    const vqc_generate_params *g = ((const cli_ui *)user)->gp;
    size_t len = 0;
    char *s = calloc(1, 1), aug[128];
    add(&s, &len, "vqclip");
    if (g->prompts)
        add_arg(&s, &len, "-p", g->prompts);
    for (int i = 0; i < g->n_image_prompts; i++)
        add_arg(&s, &len, "-ip", g->image_prompts[i]);
    for (int i = 0; i < g->n_noise_prompts; i++)
        add_arg(&s, &len, "--noise-prompt", g->noise_prompts[i]);
    if (g->change_prompt_every)
        add(&s, &len, " --change-prompt-every %d", g->change_prompt_every);
    add(&s, &len, " -s %d %d -i %d --seed %" PRIu64, info->width, info->height, g->iterations,
        g->seed);
    add_arg(&s, &len, "--vqgan", info->vqgan_path);
    add_arg(&s, &len, "--clip", info->clip_path);
    augments_text(g, aug, sizeof aug);
    add(&s, &len, " -lr %g -opt %s --cut-method %s --cutn %d --cut-pow %g --cut-noise %g", g->lr,
        vqc_optim_name(g->optimiser), vqc_cut_method_name(g->cut_method), g->cutn, g->cut_pow,
        g->cut_noise);
    add_arg(&s, &len, "--augments", aug);
    if (g->init_image)
        add_arg(&s, &len, "-ii", g->init_image);
    if (g->init_noise != VQC_NOISE_NONE)
        add_arg(&s, &len, "-in", vqc_init_noise_name(g->init_noise));
    if (g->init_weight != 0)
        add(&s, &len, " -iw %g --init-weight-mode %s", g->init_weight,
            vqc_mse_mode_name(g->init_weight_mode));
    if (g->zoom_every)
        add(&s, &len,
            " --zoom-every %d --zoom-start %d --zoom-scale %g --zoom-shift-x %d "
            "--zoom-shift-y %d",
            g->zoom_every, g->zoom_start, g->zoom_scale, g->zoom_shift_x, g->zoom_shift_y);
    return s;
}

static void summary(const gen_opts *o, const vqc_generate_result *res, int rc)
{
    if (!o->json)
        return;
    char *q = cli_json_string(o->gp.output);
    printf("{\"event\":\"done\",\"status\":\"%s\",\"path\":%s,\"seed\":%llu,\"steps\":%d,"
           "\"width\":%d,\"height\":%d,\"loss\":%.6f,\"startup_seconds\":%.3f,"
           "\"seconds\":%.3f,\"peak_device_bytes\":%lld,\"base_device_bytes\":%lld,"
           "\"planned_step_bytes\":%lld}\n",
           rc == 0                     ? "ok"
           : rc == VQC_ERR_INTERRUPTED ? "interrupted"
                                       : "failed",
           q ? q : "\"\"", (unsigned long long)o->gp.seed, res->steps, res->width, res->height,
           res->loss, res->setup_seconds, res->seconds, res->peak_device_bytes,
           res->base_device_bytes, res->planned_step_bytes);
    free(q);
    fflush(stdout);
}

/* Words what would fit after a failure to fit, as the command line spells it. */
static void advice_text(const vqc_memory_advice *a, char *buf, size_t len)
{
    size_t at;
    if (!a->known)
        at = (size_t)snprintf(buf, len, "try a smaller --size or fewer --cutn");
    else if (a->fit_width > 0)
        at = (size_t)snprintf(buf, len, "about %dx%d would fit (--size %d %d%s%s)", a->fit_width,
                              a->fit_height, a->fit_width, a->fit_height,
                              a->fewer_cutn ? ", or fewer --cutn" : "",
                              a->low_memory ? ", or --low-memory" : "");
    else
        at = (size_t)snprintf(buf, len, "not even the smallest size fits%s",
                              a->low_memory ? " without --low-memory" : "");
    if (a->kept && at < len)
        snprintf(buf + at, len - at, "; the last image written is kept in %s", a->kept);
}

int cli_status_of(int rc, const vqc_generate_result *res)
{
    if (rc == VQC_ERR_INTERRUPTED)
        return got_signal == SIGTERM ? 143 : 130;
    if (rc == VQC_ERR_NOMEM && res && res->width > 0) {
        char advice[4400];
        advice_text(&res->advice, advice, sizeof advice);
        fprintf(stderr, "vqclip: error: %s; %s\n", vqc_last_error(), advice);
    } else if (rc) {
        cli_print_error(NULL);
    }
    return cli_exit_status(rc);
}

int cli_status(int rc)
{
    return cli_status_of(rc, NULL);
}

static int run_single(gen_opts *o)
{
    cli_ui ui = {.quiet = o->quiet, .json = o->json};
    if (!o->seed_given)
        o->gp.seed = cli_random_seed();
    if (!o->quiet)
        vqc_log(VQC_LOG_INFO, "seed %llu", (unsigned long long)o->gp.seed);
    char frames[4200];
    int rc = cli_video_prepare(o, frames, sizeof frames);
    vqc_context *ctx = NULL;
    rc = rc ? rc : vqc_init(&o->cp, &ctx);
    vqc_generate_result res = {0};
    if (!rc) {
        cli_ui_attach(&ui, &o->gp);
        rc = vqc_generate(ctx, &o->gp, &res);
        cli_end_progress(&ui);
    }
    if (!rc)
        rc = cli_video_encode(o);
    cli_video_cleanup(frames);
    int status = cli_status_of(rc, &res);
    summary(o, &res, rc);
    vqc_free(ctx);
    return status;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int rc = gen_opts_parse(argc, argv, &o);
    if (rc) {
        gen_opts_free(&o);
        return rc < 0 ? 0 : 1;
    }
    if (vqc_uses_demo_models(&o.cp))
        gen_opts_demo_defaults(&o);
    install_signals();
    int status = o.batch ? cli_run_batch(&o) : run_single(&o);
    gen_opts_free(&o);
    return status;
}

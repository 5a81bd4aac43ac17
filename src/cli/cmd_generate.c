/* vqclip -p PROMPT -o OUT.png: the generation command (options in gen_opts.c, batches in
 * batch.c). The work itself is the library's vqc_generate(). */
#include <fcntl.h>
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
#include "gen/prompts.h"
#include "io/image.h"
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

void cli_ui_attach(cli_ui *ui, vqc_generate_params *gp)
{
    gp->progress = on_progress;
    gp->abort = on_abort;
    gp->on_image = on_image;
    gp->user = ui;
    ui->t_first = 0;
    ui->steps_seen = 0;
}

/* ---- checks before the models load ----------------------------------------------------- */

/* The output can be written, and every input image can be read and decoded. */
int cli_precheck(const vqc_generate_params *gp)
{
    int rc = vqc_check_writable(gp->output);
    vqc_prompt_list l = {0};
    for (int i = 0; !rc && i < gp->n_image_prompts; i++)
        rc = vqc_prompts_parse(gp->image_prompts[i], &l);
    for (int i = 0; !rc && i < l.n; i++) {
        vqc_image img;
        if ((rc = vqc_image_load(l.items[i].text, &img)))
            rc = vqc_error_wrap(rc, "image prompt");
        vqc_image_free(&img);
    }
    vqc_prompt_list_clear(&l);
    if (!rc && gp->prompts) {
        vqc_prompt_list *story;
        int n;
        if (!(rc = vqc_story_parse(gp->prompts, &story, &n)))
            vqc_story_free(story, n);
    }
    if (!rc && gp->init_image) {
        vqc_image img;
        if ((rc = vqc_image_load(gp->init_image, &img)))
            rc = vqc_error_wrap(rc, "init image");
        vqc_image_free(&img);
    }
    return rc;
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

int cli_status(int rc)
{
    if (rc == VQC_ERR_INTERRUPTED)
        return got_signal == SIGTERM ? 143 : 130;
    if (rc)
        cli_print_error(NULL);
    return cli_exit_status(rc);
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
    rc = rc ? rc : cli_precheck(&o->gp);
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
    int status = cli_status(rc);
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

/* The generate command's callbacks (see progress.h). */
#include "cli/progress.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/common.h"
#include "cli/options.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_signal(void)
{
    return got_signal;
}

/* Without a terminal (cron, a log file) a whole line now and then: at most every 10% of the
 * steps or every 30 seconds, and at the last step. */
static bool log_line_due(cli_ui *ui, int step, int total, double t)
{
    int tenth = total / 10 > 0 ? total / 10 : 1;
    if (step != total && step - ui->last_step < tenth && t - ui->last_time < 30)
        return false;
    ui->last_step = step;
    ui->last_time = t;
    return true;
}

/* Several CLIP models: their parts of the loss with `digits` decimals, "BEFOREa, bAFTER"; ""
 * with one. */
static void clip_parts(const cli_ui *ui, int digits, const char *before, const char *after,
                       char *buf, size_t len)
{
    buf[0] = 0;
    if (ui->n_clip_losses == 0)
        return;
    size_t at = (size_t)snprintf(buf, len, "%s", before);
    for (int k = 0; k < ui->n_clip_losses && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, "%s%.*f", k ? ", " : "", digits,
                               ui->clip_losses[k]);
    if (at < len)
        snprintf(buf + at, len - at, "%s", after);
}

static void on_clip_losses(int step, const float *losses, int n, void *user)
{
    (void)step;
    cli_ui *ui = user;
    ui->n_clip_losses = n < VQC_MAX_CLIPS ? n : VQC_MAX_CLIPS;
    memcpy(ui->clip_losses, losses, (size_t)ui->n_clip_losses * sizeof *losses);
}

static void on_progress(int step, int total, const float *losses, int n, void *user)
{
    cli_ui *ui = user;
    if (ui->quiet)
        return;
    double t = vqc_now();
    if (ui->t_first == 0) {
        ui->t_first = t - 1e-9;
        ui->last_time = t;
        ui->last_step = step - 1;
    }
    double loss = 0, el = t - ui->t_first;
    for (int i = 0; i < n; i++)
        loss += losses[i];
    double rate = ui->steps_seen++ > 0 ? ui->steps_seen / el : 0;
    int eta = rate > 0 ? (int)((total - step) / rate) : 0;
    char parts[VQC_MAX_CLIPS * 16 + 16] = "";
    clip_parts(ui, 4, " (CLIP models ", ")", parts, sizeof parts);
    if (!isatty(2)) {
        if (log_line_due(ui, step, total, t))
            fprintf(stderr, "vqclip: step %d/%d (%d%%), %.2f it/s, ETA %dm%02ds, loss %.4f%s\n",
                    step, total, total > 0 ? (int)(100.0 * step / total) : 100, rate, eta / 60,
                    eta % 60, loss, parts);
        return;
    }
    fprintf(stderr, "\rvqclip: step %d/%d  %.2f it/s  ETA %dm%02ds  loss %.4f%s   ", step, total,
            rate, eta / 60, eta % 60, loss, parts);
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

static void on_image(const char *path, int step, double loss, void *user)
{
    cli_ui *ui = user;
    int total = ui->gp ? ui->gp->iterations : step;
    if (!ui->quiet && (step >= total || got_signal)) { /* the final image, not a snapshot */
        cli_end_progress(ui);
        if (step >= total)
            cli_log(VQC_LOG_INFO, "wrote %s", path);
        else
            cli_log(VQC_LOG_INFO, "wrote %s (step %d of %d: interrupted)", path, step, total);
    }
    if (!ui->json)
        return;
    char *q = cli_json_string(path), parts[VQC_MAX_CLIPS * 16 + 32];
    clip_parts(ui, 6, ",\"clip_losses\":[", "]", parts, sizeof parts);
    printf("{\"event\":\"image\",\"path\":%s,\"step\":%d,\"loss\":%.6f%s}\n", q ? q : "\"\"", step,
           loss, parts);
    free(q);
    fflush(stdout);
}

/* --json: one line per frame written (frames are no output image: no log line). */
static void on_frame(const char *path, int step, double loss, void *user)
{
    const cli_ui *ui = user;
    if (!ui->json)
        return;
    char *q = cli_json_string(path), num[64] = "null"; /* frame 0 has no loss yet */
    if (isfinite(loss))
        snprintf(num, sizeof num, "%.6f", loss);
    printf("{\"event\":\"frame\",\"path\":%s,\"step\":%d,\"loss\":%s}\n", q ? q : "\"\"", step,
           num);
    free(q);
    fflush(stdout);
}

static char *describe(const vqc_run_info *info, void *user)
{
    static bool warned;
    if (((const cli_ui *)user)->precision_given && !info->on_cuda && !warned) {
        warned = true;
        cli_log(VQC_LOG_WARN, "--precision chooses the number formats on CUDA; the CPU computes "
                              "in float32: ignored");
    }
    return gen_opts_regeneration(((const cli_ui *)user)->gp, info);
}

void cli_ui_attach(cli_ui *ui, vqc_generate_params *gp)
{
    gp->progress = on_progress;
    gp->abort = on_abort;
    gp->on_image = on_image;
    gp->describe = describe;
    gp->on_frame = on_frame;
    gp->clip_losses = on_clip_losses;
    gp->user = ui;
    ui->gp = gp;
    ui->t_first = 0;
    ui->steps_seen = 0;
    ui->n_clip_losses = 0;
}

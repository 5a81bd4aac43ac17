/* vqclip -p PROMPT -o OUT.png: the generation command (options in options.c, batches in
 * batch.c, the callbacks in progress.c). The work itself is the library's vqc_generate(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/batch.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cli/upscale_after.h"
#include "cli/video.h"
#include "cli/video_style.h"

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
        return cli_signal() == SIGTERM ? 143 : 130;
    if (rc == VQC_ERR_NOMEM && res && res->width > 0) {
        char advice[4400];
        advice_text(&res->advice, advice, sizeof advice);
        fprintf(stderr, "vqclip: error: %s; %s\n", vqc_last_error(), advice);
    } else if (rc) {
        cli_print_error(NULL);
    }
    return cli_exit_status(rc);
}

/* The run's JSON summary line; a failure carries its error and exit status. */
static void summary(const gen_opts *o, const vqc_generate_result *res, int rc, int status)
{
    if (!o->json)
        return;
    char *q = cli_json_string(o->gp.output);
    printf("{\"event\":\"done\",\"status\":\"%s\",\"path\":%s,\"seed\":%llu,\"steps\":%d,"
           "\"width\":%d,\"height\":%d,\"loss\":%.6f,\"startup_seconds\":%.3f,"
           "\"seconds\":%.3f,\"peak_device_bytes\":%lld,\"base_device_bytes\":%lld,"
           "\"planned_step_bytes\":%lld,\"low_memory\":%s",
           rc == 0                     ? "ok"
           : rc == VQC_ERR_INTERRUPTED ? "interrupted"
                                       : "failed",
           q ? q : "\"\"", (unsigned long long)o->gp.seed, res->steps, res->width, res->height,
           res->loss, res->setup_seconds, res->seconds, res->peak_device_bytes,
           res->base_device_bytes, res->planned_step_bytes, res->low_memory ? "true" : "false");
    if (res->plateaued) /* why it ended before the iterations asked for */
        printf(",\"stopped\":\"plateau\"");
    if (rc && rc != VQC_ERR_INTERRUPTED) {
        char *e = cli_json_string(vqc_last_error());
        printf(",\"error\":%s,\"exit\":%d", e ? e : "\"\"", status);
        free(e);
    }
    printf("}\n");
    free(q);
    fflush(stdout);
}

/* The output name of a single run: its placeholders filled in as a batch's first job's would
 * be (into `path`), and its missing folders made once the parameters are known to be good. */
static int single_output(gen_opts *o, char *path, size_t len)
{
    int rc = cli_expand_template(o->gp.output, 0, o->gp.prompts ? o->gp.prompts : "", o->gp.seed,
                                 path, len);
    if (rc)
        return rc;
    o->gp.output = path;
    rc = vqc_generate_check(&o->gp);
    return rc ? rc : cli_make_parent_dirs(path);
}

static int run_single(gen_opts *o)
{
    cli_ui ui = {.quiet = o->quiet, .json = o->json};
    if (!o->seed_given)
        o->gp.seed = cli_random_seed();
    if (!o->quiet)
        cli_log(VQC_LOG_INFO, "seed %llu", (unsigned long long)o->gp.seed);
    char frames[4200] = "", path[4096];
    int rc = single_output(o, path, sizeof path);
    rc = rc ? rc : cli_video_prepare(o, frames, sizeof frames);
    rc = rc ? rc : cli_upscale_prepare(o);
    vqc_context *ctx = NULL;
    rc = rc ? rc : vqc_init(&o->cp, &ctx);
    vqc_generate_result res = {0};
    if (!rc) {
        cli_ui_attach(&ui, &o->gp);
        ui.precision_given = o->precision_given;
        rc = vqc_generate(ctx, &o->gp, &res);
        cli_end_progress(&ui);
    }
    if (!rc)
        rc = cli_upscale_output(o, o->gp.output);
    if (!rc || rc == VQC_ERR_INTERRUPTED) { /* Ctrl-C: a video of the frames made so far */
        int vrc = cli_video_encode(o);
        rc = rc ? rc : vrc;
    }
    cli_video_cleanup(frames);
    int status = cli_status_of(rc, &res);
    summary(o, &res, rc, status);
    vqc_free(ctx);
    return status;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int rc = gen_opts_parse(argc, argv, &o);
    if (rc) {
        gen_opts_free(&o);
        return rc < 0 ? 0 : rc;
    }
    if (vqc_uses_demo_models(&o.cp))
        gen_opts_demo_defaults(&o);
    cli_install_signals();
    int status = o.video_style ? cli_video_style_run(&o)
                 : o.batch     ? cli_run_batch(&o)
                               : run_single(&o);
    gen_opts_free(&o);
    return status;
}

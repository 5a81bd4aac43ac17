/* One generation run (see gen_internal.h): inputs, prompts, the initial z, the steps with
 * snapshots, frames, story switches and resumable state. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen/gen_internal.h"
#include "gen/schedule.h"
#include "gen/memplan.h"
#include "io/fetch.h"
#include "util/env.h"
#include "util/error.h"
#include "util/torch_error.h"

void vqc_gen_run_free(gen_run *r)
{
    if (r->auto_low && r->ctx->vq) /* the context's own setting for its next run */
        vqc_vqgan_set_low_memory(r->ctx->vq, r->ctx->low_memory);
    vqc_writer_free(r->writer); /* only after an early return: the steps free it */
    vqc_loop_free(r->loop);
    vqc_story_free(r->story, r->n_story);
    for (int i = 0; r->image_data && i < r->images.n; i++)
        vqc_image_free(&r->image_data[i]);
    free(r->image_data);
    vqc_prompt_list_clear(&r->images);
    vqc_image_free(&r->init);
    vqc_image_free(&r->blend);
    free(r->losses);
    free(r->stop_hist);
    free(r->params_text);
    free(r->settings);
    vqt_profile_free(r->prof);
}

/* mkdir -p for the folder `dir`. */
static int make_dirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return vqc_error_set(VQC_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
        *p = c;
        if (!c)
            return 0;
    }
}

static int check_outputs(const vqc_generate_params *g)
{
    int rc = vqc_check_writable(g->output);
    if (!rc && g->save_state)
        rc = vqc_check_writable(g->save_state);
    if (!rc && g->save_frames)
        rc = make_dirs(g->save_frames);
    return rc;
}

/* Parses the prompt texts into r (story phrases, image prompts). */
static int parse_prompts(const vqc_generate_params *g, vqc_prompt_list **story, int *n_story,
                         vqc_prompt_list *images)
{
    int rc = 0;
    if (g->prompts) /* "" too: an empty prompt is an error, not the absence of one */
        rc = vqc_story_parse(g->prompts, story, n_story);
    for (int i = 0; !rc && i < g->n_image_prompts; i++)
        rc = vqc_prompts_parse(g->image_prompts[i], images);
    for (int i = 0; !rc && i < g->n_noise_prompts; i++) {
        unsigned long long seed;
        double w;
        rc = vqc_noise_prompt_parse(g->noise_prompts[i], &seed, &w);
    }
    for (int i = 0; !rc && i < images->n; i++)
        rc = vqc_fetch_check(images->items[i].text, g->allow_http);
    if (!rc && g->init_image && (rc = vqc_fetch_check(g->init_image, g->allow_http)))
        rc = vqc_error_wrap(rc, "init image");
    if (!rc && !(g->init_blend >= 0 && g->init_blend <= 1))
        rc = vqc_error_set(VQC_ERR_USAGE, "the init blend must be in [0, 1]");
    if (!rc && g->init_blend > 0 && (!g->init_image || !g->init_blend_image))
        rc = vqc_error_set(VQC_ERR_USAGE, "an init blend needs an init image and a blend image");
    if (!rc && g->init_blend > 0 && (rc = vqc_fetch_check(g->init_blend_image, g->allow_http)))
        rc = vqc_error_wrap(rc, "init blend image");
    if (!rc && *n_story == 0 && images->n == 0 && g->n_noise_prompts == 0)
        rc = vqc_error_set(VQC_ERR_USAGE, "no prompt given");
    return rc;
}

int vqc_gen_check_prompts(const vqc_generate_params *g)
{
    vqc_prompt_list *story = NULL, images = {0};
    int n_story = 0, rc = parse_prompts(g, &story, &n_story, &images);
    vqc_story_free(story, n_story);
    vqc_prompt_list_clear(&images);
    return rc;
}

/* Parses the prompts and decodes every input image (once: they are kept for the run), before
 * the models are loaded. */
static int read_inputs(gen_run *r)
{
    const vqc_generate_params *g = r->g;
    int rc = parse_prompts(g, &r->story, &r->n_story, &r->images);
    r->image_data = rc || !r->images.n ? NULL : calloc((size_t)r->images.n, sizeof *r->image_data);
    if (!rc && r->images.n && !r->image_data)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < r->images.n; i++)
        if ((rc = vqc_image_open(r->images.items[i].text, g->allow_http, &r->image_data[i])))
            rc = vqc_error_wrap(rc, "image prompt");
    if (!rc && g->init_image && (rc = vqc_image_open(g->init_image, g->allow_http, &r->init)))
        rc = vqc_error_wrap(rc, "init image");
    if (!rc && g->init_blend > 0 &&
        (rc = vqc_image_open(g->init_blend_image, g->allow_http, &r->blend)))
        rc = vqc_error_wrap(rc, "init blend image");
    return rc;
}

/* Image and noise prompts (kept for the whole run), then the first text phrase. */
static int add_fixed_prompts(gen_run *r)
{
    const vqc_generate_params *g = r->g;
    int rc = 0;
    for (int i = 0; !rc && i < r->images.n; i++) {
        const vqc_prompt *p = &r->images.items[i];
        rc = vqc_loop_add_image_prompt(r->loop, &r->image_data[i], p->weight, p->stop);
    }
    for (int i = 0; !rc && i < g->n_noise_prompts; i++) {
        unsigned long long seed;
        double w;
        rc = vqc_noise_prompt_parse(g->noise_prompts[i], &seed, &w);
        rc = rc ? rc : vqc_loop_add_noise_prompt(r->loop, seed, w);
    }
    r->n_fixed = vqc_loop_prompt_count(r->loop);
    return rc;
}

/* Replaces the text prompts by phrase `k` of the story. */
static int set_phrase(gen_run *r, int k)
{
    vqc_loop_truncate_prompts(r->loop, r->n_fixed);
    r->phrase = k;
    if (r->n_story == 0)
        return 0;
    const vqc_prompt_list *l = &r->story[k];
    for (int i = 0; i < l->n; i++) {
        int rc = vqc_loop_add_text_prompt(r->loop, r->ctx->tok, l->items[i].text,
                                          l->items[i].weight, l->items[i].stop);
        if (rc)
            return rc;
    }
    r->n_losses = vqc_loop_prompt_count(r->loop) + 1;
    return 0;
}

/* z = w * z_blend + (1 - w) * z_init (vqc_generate_params.init_blend). */
static int init_blended(gen_run *r, double w)
{
    vqt_scope_begin();
    bool grad = vqt_set_grad_enabled(false);
    int rc = vqc_loop_init_image(r->loop, &r->blend);
    vqt_tensor *zb = rc ? NULL : vqt_clone(vqc_loop_z(r->loop));
    rc = rc ? rc : vqc_loop_init_image(r->loop, &r->init);
    vqt_tensor *zi = rc ? NULL : vqt_clone(vqc_loop_z(r->loop));
    vqt_tensor *z = zb && zi ? vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, zb, w),
                                          vqt_binary_s(VQT_MUL, zi, 1.0 - w))
                             : NULL;
    vqt_set_grad_enabled(grad);
    rc = rc ? rc : z ? vqc_loop_set_z(r->loop, z) : vqc_torch_fail("init blend");
    vqt_scope_end();
    return rc;
}

static int init_z(gen_run *r)
{
    const vqc_generate_params *g = r->g;
    if (g->init_image && g->init_blend > 0)
        return init_blended(r, g->init_blend);
    if (g->init_image)
        return vqc_loop_init_image(r->loop, &r->init);
    if (g->init_noise != VQC_NOISE_NONE)
        return vqc_loop_init_noise(r->loop, g->init_noise);
    return vqc_loop_init_random(r->loop);
}

static int alloc_losses(gen_run *r)
{
    int most = 0, w = r->g->stop_window;
    if (w > 0 && !(r->stop_hist = calloc((size_t)w * 2, sizeof *r->stop_hist)))
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->n_story; i++)
        most = r->story[i].n > most ? r->story[i].n : most;
    r->losses = calloc((size_t)(r->n_fixed + most + 1), sizeof *r->losses);
    r->n_losses = vqc_loop_prompt_count(r->loop) + 1;
    return r->losses ? 0 : vqc_error_set(VQC_ERR_NOMEM, "out of memory");
}

static double gib(int64_t b)
{
    return (double)b / (1024.0 * 1024.0 * 1024.0);
}

/* Holds the device's allocator to the context's memory limit (none: lifts an earlier run's). */
static int apply_memory_limit(const vqc_context *c)
{
    if (vqt_set_memory_limit(c->dev, c->p.memory_limit) == 0 || c->p.memory_limit == 0)
        return 0;
    char where[32];
    vqt_device_str(c->dev, where, sizeof where);
    return vqc_error_set(VQC_ERR_RUNTIME, "cannot hold %s to a memory limit: %s", where,
                         vqt_last_error());
}

/* A step that the planner finds too large (rc, VQC_ERR_NOMEM): with auto_low_memory, and when it
 * fits with low memory, the run computes with low memory instead (said once); rc otherwise,
 * with the planner's first message. */
static int fit_with_low_memory(gen_run *r, int rc)
{
    vqc_context *c = r->ctx;
    vqc_memplan_step low = r->plan;
    low.low_memory = true;
    if (rc != VQC_ERR_NOMEM || r->plan.low_memory || !c->p.auto_low_memory)
        return rc;
    char why[512];
    snprintf(why, sizeof why, "%s", vqc_error_get());
    if (vqc_memplan_check(&low, c->dev, r->lp.width, r->lp.height) != 0)
        return vqc_error_set(VQC_ERR_NOMEM, "%s", why);
    vqc_error_set(0, "%s", "");
    vqc_log(VQC_LOG_INFO,
            "%s: computing with low memory instead (the decoder's activations recomputed in the "
            "backward pass: about %.1f GiB, and slower)",
            why, gib(vqc_memplan_step_bytes(&low, r->lp.width, r->lp.height)));
    r->plan = low;
    r->auto_low = true;
    vqc_vqgan_set_low_memory(c->vq, true);
    return 0;
}

int vqc_gen_setup(gen_run *r)
{
    vqc_context *c = r->ctx;
    int rc = vqc_generate_check(r->g);
    rc = rc ? rc : check_outputs(r->g);
    rc = rc ? rc : read_inputs(r);
    rc = rc ? rc : vqc_load(c);
    rc = rc ? rc : apply_memory_limit(c);
    if (rc)
        return rc;
    vqt_reset_peak(c->dev);
    r->base_bytes = vqt_allocated_bytes(c->dev);
    rc = vqc_gen_loop_params(c, r->g, &r->lp);
    r->plan = (vqc_memplan_step){
        .vi = vqc_vqgan_get_info(c->vq),
        .ci = vqc_clip_get_info(c->clips[0]),
        .cutn = r->lp.cut.cutn,
        .cut_size = r->lp.cut.cut_size,
        .low_memory = c->low_memory,
        .decoder_bytes = vqc_vqgan_decoder_dtype(c->vq) == VQC_DTYPE_F32 ? 4 : 2,
        .fused_attention_from = vqc_vqgan_fused_attention_from(c->vq),
        .clip_bytes = c->clip_bytes,
        .on_cpu = c->dev.type == VQT_DEVICE_CPU,
        .own_convs = c->dev.type == VQT_DEVICE_CPU && vqt_cpu_conv_check(NULL) == 1,
        .limited = c->p.memory_limit > 0,
        .limit_left = c->p.memory_limit - r->base_bytes,
    };
    vqc_shape_losses_memory(&r->lp.shape, &r->plan.shape_cut_tensors, &r->plan.shape_img_tensors);
    r->plan.n_more_clips = c->n_clips - 1;
    for (int k = 1; k < c->n_clips; k++)
        r->plan.more_clips[k - 1] = vqc_clip_get_info(c->clips[k]);
    r->plan.clip_fused = true;
    for (int k = 0; k < c->n_clips; k++)
        r->plan.clip_fused = r->plan.clip_fused && vqc_clip_fused_attention(c->clips[k]);
    if (!rc && (rc = vqc_memplan_check(&r->plan, c->dev, r->lp.width, r->lp.height)) &&
        (rc = fit_with_low_memory(r, rc)))
        r->refused = true;
    rc = rc ? rc : vqc_loop_create(&r->lp, c->vq, c->clips[0], &r->loop);
    for (int k = 1; !rc && k < c->n_clips; k++)
        rc = vqc_loop_add_clip(r->loop, c->clips[k], c->clip_list[k].weight);
    rc = rc ? rc : add_fixed_prompts(r);
    rc = rc ? rc : set_phrase(r, 0);
    rc = rc ? rc : init_z(r);
    rc = rc ? rc : alloc_losses(r);
    rc = rc ? rc : vqc_gen_describe(r);
    if (!rc && r->g->resume)
        rc = vqc_gen_load_state(r);
    return rc;
}

/* ---- the steps ------------------------------------------------------------------------- */

/* Writes the current picture to path through the run's writer (off the loop's thread on
 * CUDA: writer.h); done(path, step, loss, user) runs once it is in place. */
static int write_image(gen_run *r, const char *path, int step, vqc_image_callback done)
{
    vqc_image img = {0};
    vqt_tensor *t = vqc_loop_output_image(r->loop);
    int rc = t ? vqc_image_from_tensor(t, &img) : VQC_ERR_RUNTIME;
    vqt_free(t);
    char stepbuf[32];
    snprintf(stepbuf, sizeof stepbuf, "%d", step);
    const char *text = r->g->params_text ? r->g->params_text : r->params_text;
    const char *meta[] = {"parameters",  text,    "Software", "vqclip " VQCLIP_VERSION,
                          "vqclip:step", stepbuf, NULL,       NULL,
                          NULL};
    /* The final image of a run stopped on a plateau says so (vqc_image_plateaued); only that
     * one, so that every other image keeps its bytes. */
    if (r->plateaued) {
        meta[6] = "vqclip:stopped";
        meta[7] = "plateau";
    }
    const char **m = text ? meta : meta + 2; /* no "parameters" chunk without a text */
    if (rc) {
        vqc_image_free(&img);
        return rc;
    }
    return vqc_writer_put(r->writer, path, &img, m, done, r->g->user, step, r->total_loss);
}

/* The state file and the output image at `step` (the state first: the picture may still be
 * being written when the next steps run, and it can be made again from the state). */
static int snapshot(gen_run *r, int step)
{
    int rc = r->g->save_state ? vqc_gen_save_state(r) : 0;
    return rc ? rc : write_image(r, r->g->output, step, r->g->on_image);
}

static int save_frame(gen_run *r, int step)
{
    char path[4200];
    if (r->g->peer_frame_names)
        snprintf(path, sizeof path, "%s/%d.png", r->g->save_frames, step / r->g->frame_every);
    else
        snprintf(path, sizeof path, "%s/%05d.png", r->g->save_frames, step);
    return write_image(r, path, step, r->g->on_frame);
}

/* Story mode: which phrase step `step` (1-based) uses. */
static int phrase_for(const gen_run *r, int step)
{
    int every = r->g->change_prompt_every;
    if (every <= 0 || r->n_story <= 1)
        return 0;
    return ((step - 1) / every) % r->n_story;
}

/* A camera value at zoom frame k: its schedule's, or the constant. */
static double camera(const char *schedule, double constant, double k)
{
    static _Thread_local vqc_schedule s; /* read by vqc_generate_check already */
    if (!schedule || vqc_schedule_parse(schedule, "schedule", &s) != 0)
        return constant;
    return vqc_schedule_at(&s, k);
}

/* The current image zoomed and rotated about its centre and shifted with wrap-around, as the
 * peer's zoom video does between frames: it crops a box of (W, H) / zoom about the centre and
 * scales it back to W x H, so a zoom above 1 zooms in and its default 0.99 out, with black where
 * the box reaches past the picture (PIL's crop). Bilinear here, Lanczos there. The keyframed
 * schedules give zoom, angle and shift per frame k = step / zoom_every. */
static vqt_tensor *zoomed_image(const gen_run *r, const vqt_tensor *img, int step)
{
    const vqc_generate_params *g = r->g;
    int w = r->lp.width, h = r->lp.height;
    double k = (double)(step / g->zoom_every);
    double zoom = camera(g->zoom_schedule, g->zoom_scale, k);
    double a = camera(g->angle_schedule, 0, k) * M_PI / 180;
    /* output pixel -> input pixel about the centre: rotate back by a, divide by the zoom; in
     * affine_grid's coordinates (-1..1 on each axis) the off-diagonal terms carry the aspect */
    double c = cos(a) / zoom, sn = sin(a) / zoom, hw = (double)h / w, wh = (double)w / h;
    float theta[6] = {(float)c, (float)(-sn * hw), 0, (float)(sn * wh), (float)c, 0};
    int64_t ts[3] = {1, 2, 3};
    vqt_tensor *t =
        vqt_from_data(theta, VQC_DTYPE_F32, 3, ts, NULL, vqt_device_of(img), VQC_DTYPE_F32);
    vqt_tensor *grid = vqt_affine_grid(t, 1, 3, h, w, false);
    vqt_tensor *z = vqt_grid_sample(img, grid, VQT_GRID_ZEROS, false);
    int shx = (int)lround(camera(g->shift_x_schedule, g->zoom_shift_x, k));
    int shy = (int)lround(camera(g->shift_y_schedule, g->zoom_shift_y, k));
    int sx = ((shx % w) + w) % w, sy = ((shy % h) + h) % h;
    if (sx) { /* wrap: the last sx columns move to the front */
        vqt_tensor *parts[2] = {vqt_narrow(z, 3, w - sx, sx), vqt_narrow(z, 3, 0, w - sx)};
        z = vqt_cat(parts, 2, 3);
    }
    if (sy) {
        vqt_tensor *parts[2] = {vqt_narrow(z, 2, h - sy, sy), vqt_narrow(z, 2, 0, h - sy)};
        z = vqt_cat(parts, 2, 2);
    }
    return z;
}

static int zoom(gen_run *r, int step)
{
    const vqc_generate_params *g = r->g;
    if (g->zoom_every <= 0 || step % g->zoom_every != 0 || step < g->zoom_start)
        return 0;
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *img = vqc_loop_image(r->loop);
    vqt_tensor *zi = img ? zoomed_image(r, img, step) : NULL;
    int rc = zi ? vqc_loop_reencode(r->loop, zi) : vqc_torch_fail("zoom");
    vqt_free(img);
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    return rc;
}

static const vqt_device host = {VQT_DEVICE_CPU, 0};

/* The random generators a step draws from (the CPU's, and the device's), for taking it again:
 * *cpu and *dev get new handles, or NULL where they are not needed. */
static void save_rng(const gen_run *r, vqt_tensor **cpu, vqt_tensor **dev)
{
    *cpu = vqt_rng_get_state(host);
    *dev = r->ctx->dev.type == VQT_DEVICE_CPU ? NULL : vqt_rng_get_state(r->ctx->dev);
}

/* The loop's next step. With auto_low_memory, a step that fails to allocate before it changed
 * anything is taken again with low memory, from the random state it began with, so that the run
 * goes on as a low-memory run would have (said once; low memory then stays on for the run). */
static int loop_step(gen_run *r)
{
    vqc_context *c = r->ctx;
    bool may_retry = c->p.auto_low_memory && !vqc_vqgan_low_memory(c->vq);
    vqt_tensor *rng_cpu = NULL, *rng_dev = NULL;
    if (may_retry)
        save_rng(r, &rng_cpu, &rng_dev);
    int rc = vqc_loop_step(r->loop, r->losses);
    bool oom = rc == VQC_ERR_NOMEM || vqc_error_code() == VQC_ERR_NOMEM;
    if (rc && oom && may_retry && rng_cpu && (rng_dev || c->dev.type == VQT_DEVICE_CPU) &&
        vqc_loop_step_untouched(r->loop)) {
        char why[512];
        snprintf(why, sizeof why, "%s", vqc_error_get());
        vqc_loop_prepare_retry(r->loop);
        vqt_empty_cache(c->dev); /* the graphs' pools, for the driver (another process?) too */
        vqc_vqgan_set_low_memory(c->vq, true);
        r->plan.low_memory = true;
        r->auto_low = true;
        vqc_log(VQC_LOG_WARN,
                "%s: out of memory at %dx%d; taking the step again with low memory (the "
                "decoder's activations recomputed in the backward pass, slower) for the rest of "
                "the run",
                why, r->lp.width, r->lp.height);
        rc = vqt_rng_set_state(host, rng_cpu) != 0 ||
                     (rng_dev && vqt_rng_set_state(c->dev, rng_dev) != 0)
                 ? vqc_torch_fail("random state")
                 : vqc_loop_step(r->loop, r->losses);
    }
    vqt_free(rng_cpu);
    vqt_free(rng_dev);
    return rc;
}

static int one_step(gen_run *r, int i)
{
    int rc = 0;
    if (phrase_for(r, i) != r->phrase && (rc = set_phrase(r, phrase_for(r, i))))
        return rc;
    if ((rc = loop_step(r)))
        return rc;
    float share[VQC_MAX_CLIPS];
    int n_share = r->g->clip_losses ? vqc_loop_clip_losses(r->loop, share) : 0;
    if (n_share > 0)
        r->g->clip_losses(i, share, n_share, r->g->user);
    r->total_loss = 0;
    for (int k = 0; k < r->n_losses; k++)
        r->total_loss += r->losses[k];
    if (r->g->progress)
        r->g->progress(i, r->g->iterations, r->losses, r->n_losses, r->g->user);
    if (r->g->save_frames && i % r->g->frame_every == 0)
        rc = save_frame(r, i);
    return rc ? rc : zoom(r, i);
}

static int run_steps(gen_run *r, int start, int n, int se)
{
    const vqc_generate_params *g = r->g;
    /* generate.py's -vid and -zvid also write the picture before the first step, as
     * steps/0.png (their videos start at 1.png), and its zoom video zooms it already (when the
     * zoom starts at 0). No loss is known yet: NAN. */
    if (start == 0 && g->save_frames && g->peer_frame_names) {
        r->total_loss = NAN;
        int rc = save_frame(r, 0);
        if (!rc && g->zoom_every > 0)
            rc = zoom(r, 0);
        if (rc)
            return rc;
    }
    if (start > 0 && phrase_for(r, start + 1) != r->phrase) {
        int rc = set_phrase(r, phrase_for(r, start + 1));
        if (rc)
            return rc;
    }
    for (int i = start + 1; i <= n; i++) {
        int rc = one_step(r, i);
        if (rc)
            return rc;
        if (g->stop_window > 0 && vqc_gen_plateau(r, i, r->total_loss))
            return 0; /* the final snapshot is written at this step */
        if (se > 0 && i % se == 0 && i != n && (rc = snapshot(r, i)))
            return rc;
        if ((rc = vqc_writer_poll(r->writer))) /* callbacks of the pictures written meanwhile */
            return rc;
        if (g->abort && g->abort(g->user)) {
            vqc_log(VQC_LOG_INFO, "interrupted at step %d/%d: writing the current image", i, n);
            rc = snapshot(r, i);
            return rc ? rc : vqc_error_set(VQC_ERR_INTERRUPTED, "interrupted at step %d", i);
        }
    }
    return 0;
}

bool vqc_gen_plateau(gen_run *r, int step, double loss)
{
    int w = r->g->stop_window;
    if (r->stop_n == 2 * w) {
        memmove(r->stop_hist, r->stop_hist + 1, (size_t)(2 * w - 1) * sizeof *r->stop_hist);
        r->stop_n--;
    }
    r->stop_hist[r->stop_n++] = loss;
    if (r->stop_n < 2 * w)
        return false;
    double before = 0, recent = 0;
    for (int k = 0; k < w; k++) {
        before += r->stop_hist[k];
        recent += r->stop_hist[w + k];
    }
    before /= w;
    recent /= w;
    if (before - recent >= r->g->stop_fraction * fabs(before))
        return false;
    vqc_log(VQC_LOG_INFO,
            "stopping at step %d of %d: the mean loss of the last %d steps (%.6g) is not %g%% "
            "below that of the %d before (%.6g)",
            step, r->g->iterations, w, recent, 100 * r->g->stop_fraction, w, before);
    r->plateaued = true;
    return true;
}

/* The rows of the operator tables that VQCLIP_PROFILE_KERNELS asks --profile for (0: none), a
 * developer's switch, as gpu-check.sh uses it. */
static int kernel_rows(void)
{
    return (int)vqc_env_count("VQCLIP_PROFILE_KERNELS", 1, 1000, 0);
}

/* Logs the operator tables, one "profile: kernels: " line each (vqt_profile_kernels). */
static void report_kernels(const gen_run *r)
{
    char *text = NULL;
    int steps = vqt_profile_kernels(r->prof, r->kernel_rows, &text);
    if (steps < 0) {
        vqc_log(VQC_LOG_WARN, "profile: no operator tables: %s", vqt_last_error());
        return;
    }
    if (!text)
        return;
    vqc_log(VQC_LOG_INFO, "profile: kernels: operators of %d steps (libtorch's profiler), per step",
            steps);
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        vqc_log(VQC_LOG_INFO, "profile: kernels: %.*s", (int)n, line);
        line += n + (line[n] != 0);
    }
    free(text);
}

/* Logs the profile: per stage, the device and host milliseconds of an average step. */
static void report_profile(const gen_run *r, double wall, long long handles)
{
    double dev, host, dev_sum = 0, host_sum = 0;
    int steps = vqt_profile_get(r->prof, 0, &dev, &host);
    if (steps <= 0) {
        vqc_log(VQC_LOG_INFO, "profile: too few steps (the first two are not counted)");
        return;
    }
    vqc_log(VQC_LOG_INFO,
            "profile of %d steps (%s), per step: stage, device ms, host ms, ATen operators", steps,
            vqt_profile_uses_events(r->prof) ? "device times from CUDA events"
                                             : "device times = host clock");
    long long ops_sum = 0;
    for (int s = 0; s < VQC_LOOP_PROFILE_STAGES; s++) {
        vqt_profile_get(r->prof, s, &dev, &host);
        long long ops = vqt_profile_ops(r->prof, s);
        dev_sum += dev;
        host_sum += host;
        ops_sum += ops;
        vqc_log(VQC_LOG_INFO, "profile: %-24s %8.3f %8.3f %6lld", vqc_loop_profile_stages[s],
                dev * 1e3 / steps, host * 1e3 / steps, ops / steps);
    }
    vqc_log(VQC_LOG_INFO, "profile: %-24s %8.3f %8.3f %6lld", "step (sum)", dev_sum * 1e3 / steps,
            host_sum * 1e3 / steps, ops_sum / steps);
    vqc_log(VQC_LOG_INFO,
            "profile: wall %.3f ms per step over the whole run (snapshots and "
            "the first steps included), %lld tensor handles made per step",
            wall, handles);
    vqc_log(VQC_LOG_INFO, "profile: memory above the step's start (MiB), per stage: held at "
                          "its end, highest within it");
    for (int s = 0; s < VQC_LOOP_PROFILE_STAGES; s++) {
        long long held, high;
        vqt_profile_memory(r->prof, s, &held, &high);
        vqc_log(VQC_LOG_INFO, "profile: memory: %-24s %9.1f %9.1f", vqc_loop_profile_stages[s],
                held / 1048576.0, high / 1048576.0);
    }
    long long replays, eager;
    vqc_loop_graph_counts(r->loop, &replays, &eager);
    vqc_log(VQC_LOG_INFO,
            "profile: codebook search, decoder and CLIP image encoder: %lld calls replayed "
            "recorded graphs, %lld ran eagerly",
            replays, eager);
    report_kernels(r);
}

int vqc_gen_optimise(gen_run *r)
{
    const vqc_generate_params *g = r->g;
    int n = g->iterations, se = g->save_every;
    r->t_first = vqc_now();
    int start = vqc_loop_steps(r->loop);
    long long handles0 = vqt_handles_made();
    bool async = vqc_writer_async_default(r->ctx->dev.type == VQT_DEVICE_CUDA);
    r->writer = vqc_writer_new(async ? VQC_WRITER_AUTO : 0);
    if (!r->writer)
        r->writer = vqc_writer_new(0);
    if (!r->writer)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    if (g->profile) {
        r->prof = vqt_profile_new(r->ctx->dev, VQC_LOOP_PROFILE_STAGES);
        if (!r->prof)
            return vqc_torch_fail("profile");
        r->kernel_rows = kernel_rows();
        if (r->kernel_rows > 0 && vqt_profile_want_kernels(r->prof) != 0)
            vqc_log(VQC_LOG_WARN, "profile: no operator tables: %s", vqt_last_error());
        vqc_loop_set_profile(r->loop, r->prof);
    }
    int rc = run_steps(r, start, n, se);
    if (!rc)
        rc = snapshot(r, vqc_loop_steps(r->loop));
    /* Every picture in place (and its callback run) before the run returns; an earlier error
     * stays the one reported. */
    int wrc = vqc_writer_flush(r->writer);
    rc = rc ? rc : wrc;
    vqc_writer_free(r->writer);
    r->writer = NULL;
    int done = vqc_loop_steps(r->loop) - start;
    if (r->prof && done > 0)
        report_profile(r, (vqc_now() - r->t_first) * 1e3 / done,
                       (vqt_handles_made() - handles0) / done);
    vqc_loop_set_profile(r->loop, NULL);
    return rc;
}

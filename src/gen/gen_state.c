/* A run's description (the settings a state file must match; the PNG "parameters" text from the
 * caller's describe callback) and
 * its resumable state: z, the optimiser's state, the MSE term's state, the step and the random
 * generator, in a safetensors file written atomically. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/gen_internal.h"
#include "io/safetensors.h"
#include "io/tensor_map.h"
#include "util/error.h"
#include "util/strbuf.h"
#include "util/torch_error.h"

/* ---- text building --------------------------------------------------------------------- */

static const char *str_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

/* The shaping losses and schedules, each line only when it is on, so that the settings of a
 * run without them read as before they existed. */
static void shaping_text(const vqc_generate_params *g, vqc_strbuf *b)
{
    if (g->smoothness != 0)
        vqc_strbuf_printf(b, "smoothness=%.17g\nsmoothness_type=%s\n", g->smoothness,
                          vqc_smoothness_type_name(g->smoothness_type));
    if (g->saturation != 0)
        vqc_strbuf_printf(b, "saturation=%.17g\n", g->saturation);
    if (g->symmetry != 0)
        vqc_strbuf_printf(b, "symmetry=%.17g\n", g->symmetry);
    if (g->symmetry_ud != 0)
        vqc_strbuf_printf(b, "symmetry_ud=%.17g\n", g->symmetry_ud);
    if (g->palette)
        vqc_strbuf_printf(b, "palette=%s\npalette_weight=%.17g\n", g->palette, g->palette_weight);
    if (g->lr_schedule == VQC_LR_STEP)
        vqc_strbuf_printf(b, "lr_schedule=step\nlr_step_every=%d\nlr_step_factor=%.17g\n",
                          g->lr_step_every, g->lr_step_factor);
    if (g->lr_schedule == VQC_LR_COSINE)
        vqc_strbuf_printf(b, "lr_schedule=cosine\nlr_floor=%.17g\n", g->lr_floor);
    if (g->stop_window > 0)
        vqc_strbuf_printf(b, "stop_window=%d\nstop_fraction=%.17g\n", g->stop_window,
                          g->stop_fraction);
    if (g->ema > 0)
        vqc_strbuf_printf(b, "ema=%.17g\n", g->ema);
}

/* The settings that determine the picture, one "key=value" line each. */
static char *settings_text(const gen_run *r)
{
    const vqc_generate_params *g = r->g;
    vqc_strbuf b = {0};
    vqc_strbuf_printf(&b, "prompts=%s\n", str_or(g->prompts, ""));
    for (int i = 0; i < g->n_image_prompts; i++)
        vqc_strbuf_printf(&b, "image_prompt=%s\n", g->image_prompts[i]);
    for (int i = 0; i < g->n_noise_prompts; i++)
        vqc_strbuf_printf(&b, "noise_prompt=%s\n", g->noise_prompts[i]);
    vqc_strbuf_printf(&b, "change_prompt_every=%d\nsize=%dx%d\nseed=%" PRIu64 "\n",
                      g->change_prompt_every, r->lp.width, r->lp.height, g->seed);
    vqc_strbuf_printf(&b, "init_image=%s\ninit_noise=%s\ninit_weight=%.17g\ninit_weight_mode=%s\n",
                      str_or(g->init_image, ""),
                      g->init_noise == VQC_NOISE_NONE ? "" : vqc_init_noise_name(g->init_noise),
                      g->init_weight, vqc_mse_mode_name(g->init_weight_mode));
    vqc_strbuf_printf(&b, "mse_decay_every=%d\nmse_epochs=%d\nlr=%.17g\noptimiser=%s\n",
                      g->mse_decay_every, g->mse_epochs, g->lr, vqc_optim_name(r->lp.optimiser));
    char aug[128];
    vqc_augment_list_str(&r->lp.cut.augments, aug, sizeof aug);
    vqc_strbuf_printf(&b, "cut_method=%s\ncutn=%d\ncut_pow=%.17g\ncut_noise=%.17g\naugments=%s\n",
                      vqc_cut_method_name(r->lp.cut.method), g->cutn, g->cut_pow, g->cut_noise,
                      aug);
    vqc_strbuf_printf(&b, "zoom=%d,%d,%.17g,%d,%d\n", g->zoom_every, g->zoom_start, g->zoom_scale,
                      g->zoom_shift_x, g->zoom_shift_y);
    const char *const cam[4] = {g->zoom_schedule, g->angle_schedule, g->shift_x_schedule,
                                g->shift_y_schedule};
    static const char *const cam_keys[4] = {"zoom_schedule", "angle_schedule", "shift_x_schedule",
                                            "shift_y_schedule"};
    for (int i = 0; i < 4; i++) /* only when set: older states stay valid */
        if (cam[i])
            vqc_strbuf_printf(&b, "%s=%s\n", cam_keys[i], cam[i]);
    shaping_text(g, &b);
    vqc_strbuf_printf(&b, "vqgan=%s\nclip=%s\n", r->ctx->vqgan_path, r->ctx->clip_spec);
    if (b.failed)
        vqc_strbuf_free(&b);
    return b.p;
}

int vqc_gen_describe(gen_run *r)
{
    r->settings = settings_text(r);
    if (!r->settings)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    if (r->g->params_text || !r->g->describe)
        return 0;
    const vqc_context *c = r->ctx;
    vqc_run_info info = {r->lp.width,   r->lp.height, vqc_vqgan_get_info(c->vq)->downsample,
                         c->vqgan_path, c->clip_spec, c->dev.type == VQT_DEVICE_CUDA,
                         c->demo,       c->bpe_path};
    r->params_text = r->g->describe(&info, r->g->user);
    return 0;
}

/* ---- saving ---------------------------------------------------------------------------- */

#define MAX_STATE_TENSORS 16

typedef struct {
    vqc_st_tensor t[MAX_STATE_TENSORS];
    int64_t shapes[MAX_STATE_TENSORS][8];
    void *data[MAX_STATE_TENSORS];
    char names[MAX_STATE_TENSORS][64];
    int n;
} state_set;

/* Copies a tensor to the host and adds it under `name`. */
static int state_add(state_set *s, const char *name, const vqt_tensor *t, vqc_dtype dt)
{
    if (s->n == MAX_STATE_TENSORS)
        return vqc_error_set(VQC_ERR_RUNTIME, "too many state tensors");
    int i = s->n;
    int nd = vqt_shape(t, s->shapes[i]);
    int64_t numel = vqt_numel(t);
    s->data[i] = malloc((size_t)(numel > 0 ? numel : 1) * vqc_dtype_size(dt));
    if (nd < 0 || !s->data[i] || vqt_to_host(t, s->data[i], dt, numel) != numel)
        return vqc_torch_fail("state %s", name);
    snprintf(s->names[i], sizeof s->names[i], "%s", name);
    s->t[i] = (vqc_st_tensor){s->names[i], dt, nd, s->shapes[i], s->data[i]};
    s->n++;
    return 0;
}

static void state_free(state_set *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
}

static int collect(const gen_run *r, state_set *s, double *mse_w, int *mse_rounds)
{
    const vqt_tensor *anchor;
    vqc_loop_mse_state(r->loop, &anchor, mse_w, mse_rounds);
    int rc = state_add(s, "z", vqc_loop_z(r->loop), VQC_DTYPE_F32);
    rc = rc ? rc : state_add(s, "anchor", anchor, VQC_DTYPE_F32);
    vqc_optim *opt = vqc_loop_optimiser(r->loop);
    for (int i = 0; !rc && i < vqc_optim_state_count(opt); i++) {
        char name[64];
        snprintf(name, sizeof name, "optim.%s", vqc_optim_state_name(opt, i));
        rc = state_add(s, name, vqc_optim_state_tensor(opt, i), VQC_DTYPE_F32);
    }
    const vqt_tensor *ema;
    double accum;
    vqc_loop_ema_state(r->loop, &ema, &accum);
    if (!rc && ema)
        rc = state_add(s, "ema", ema, VQC_DTYPE_F32);
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    if (!rc && r->g->stop_window > 0) {
        int64_t n = r->stop_n;
        double none = 0;
        vqt_tensor *h =
            vqt_from_data(n ? r->stop_hist : &none, VQC_DTYPE_F64, 1, &n, NULL, cpu, VQC_DTYPE_F64);
        rc = h ? state_add(s, "stop_history", h, VQC_DTYPE_F64) : vqc_torch_fail("stop history");
        vqt_free(h);
    }
    vqt_tensor *rng = rc ? NULL : vqt_rng_get_state(cpu);
    rc = rc ? rc : rng ? state_add(s, "rng.cpu", rng, VQC_DTYPE_U8) : VQC_ERR_RUNTIME;
    vqt_free(rng);
    if (!rc && r->ctx->dev.type == VQT_DEVICE_CUDA) {
        rng = vqt_rng_get_state(r->ctx->dev);
        rc = rng ? state_add(s, "rng.cuda", rng, VQC_DTYPE_U8) : VQC_ERR_RUNTIME;
        vqt_free(rng);
    }
    return rc;
}

int vqc_gen_save_state(const gen_run *r)
{
    state_set s;
    memset(&s, 0, sizeof s);
    double mse_w;
    int rounds;
    int rc = collect(r, &s, &mse_w, &rounds);
    char step[32], optsteps[32], w[40], rnd[16], iters[32], accum[40];
    snprintf(step, sizeof step, "%d", vqc_loop_steps(r->loop));
    snprintf(iters, sizeof iters, "%d", r->g->iterations);
    snprintf(optsteps, sizeof optsteps, "%" PRId64, vqc_optim_steps(vqc_loop_optimiser(r->loop)));
    snprintf(w, sizeof w, "%.17g", mse_w);
    snprintf(rnd, sizeof rnd, "%d", rounds);
    const vqt_tensor *ema;
    double acc;
    vqc_loop_ema_state(r->loop, &ema, &acc);
    snprintf(accum, sizeof accum, "%.17g", acc);
    const char *meta[] = {"format",      "vqclip-state-1", "step",       step, "iterations", iters,
                          "optim_steps", optsteps,         "mse_weight", w,    "mse_rounds", rnd,
                          "settings",    r->settings,      NULL,         NULL, NULL};
    if (ema) { /* only with a moving average: the files of runs without one read as before */
        meta[14] = "ema_accum";
        meta[15] = accum;
        meta[16] = NULL;
    }
    if (!rc)
        rc = vqc_safetensors_write(r->g->save_state, s.t, (size_t)s.n, meta);
    state_free(&s);
    return rc;
}

/* ---- loading --------------------------------------------------------------------------- */

static vqt_tensor *state_tensor(const vqc_tensor_map *m, const char *name, vqt_device dev,
                                vqc_dtype dt)
{
    const vqc_tensor_info *ti = vqc_tmap_get(m, name);
    if (!ti) {
        vqc_error_set(VQC_ERR_FORMAT, "state has no '%s'", name);
        return NULL;
    }
    vqt_tensor *t = vqt_from_data(ti->data, ti->dtype, ti->ndim, ti->shape, ti->strides, dev, dt);
    if (!t)
        vqc_torch_fail("state '%s'", name);
    return t;
}

/* The first line where two settings texts differ, for the error message. */
static void first_difference(const char *a, const char *b, char *out, size_t len)
{
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(out, len, "state has '%.*s', this run '%.*s'", (int)lb, b, (int)la, a);
            return;
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    snprintf(out, len, "the settings differ");
}

static int check_meta(const gen_run *r, const vqc_tensor_map *m, int *step, double *w, int *rounds,
                      int64_t *optsteps)
{
    const char *fmt = vqc_tmap_meta(m, "format"), *settings = vqc_tmap_meta(m, "settings");
    const char *st = vqc_tmap_meta(m, "step"), *os = vqc_tmap_meta(m, "optim_steps");
    const char *mw = vqc_tmap_meta(m, "mse_weight"), *mr = vqc_tmap_meta(m, "mse_rounds");
    if (!fmt || strcmp(fmt, "vqclip-state-1") != 0 || !settings || !st || !os || !mw || !mr)
        return vqc_error_set(VQC_ERR_FORMAT, "not a vqclip state file");
    if (strcmp(settings, r->settings) != 0) {
        char diff[600];
        first_difference(r->settings, settings, diff, sizeof diff);
        return vqc_error_set(VQC_ERR_USAGE, "cannot resume with other settings: %s", diff);
    }
    *step = atoi(st);
    *optsteps = strtoll(os, NULL, 10);
    *w = strtod(mw, NULL);
    *rounds = atoi(mr);
    return *step >= 0 && *optsteps >= 0 ? 0 : vqc_error_set(VQC_ERR_FORMAT, "bad step count");
}

static int restore_optimiser(const gen_run *r, const vqc_tensor_map *m, int64_t steps)
{
    vqc_optim *opt = vqc_loop_optimiser(r->loop);
    int rc = vqc_optim_set_steps(opt, steps);
    for (int i = 0; !rc && i < vqc_optim_state_count(opt); i++) {
        char name[64];
        snprintf(name, sizeof name, "optim.%s", vqc_optim_state_name(opt, i));
        vqt_tensor *t = state_tensor(m, name, r->ctx->dev, VQC_DTYPE_F32);
        rc = t ? vqc_optim_state_set(opt, vqc_optim_state_name(opt, i), t) : VQC_ERR_FORMAT;
        vqt_free(t);
    }
    return rc;
}

static int restore_rng(const gen_run *r, const vqc_tensor_map *m)
{
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    vqt_tensor *t = state_tensor(m, "rng.cpu", cpu, VQC_DTYPE_U8);
    int rc = t && vqt_rng_set_state(cpu, t) == 0 ? 0 : VQC_ERR_FORMAT;
    vqt_free(t);
    if (!rc && r->ctx->dev.type == VQT_DEVICE_CUDA) {
        t = state_tensor(m, "rng.cuda", cpu, VQC_DTYPE_U8);
        rc = t && vqt_rng_set_state(r->ctx->dev, t) == 0 ? 0 : VQC_ERR_FORMAT;
        vqt_free(t);
    }
    if (rc && !vqc_error_get()[0])
        vqc_error_set(rc, "random generator state: %s", vqt_last_error());
    return rc;
}

/* The moving average of z and the stop window's losses, when the run has them. */
static int restore_schedules(gen_run *r, const vqc_tensor_map *m)
{
    const vqt_tensor *ema;
    double accum;
    vqc_loop_ema_state(r->loop, &ema, &accum);
    int rc = 0;
    if (ema) {
        const char *a = vqc_tmap_meta(m, "ema_accum");
        vqt_tensor *t = a ? state_tensor(m, "ema", r->ctx->dev, VQC_DTYPE_F32) : NULL;
        rc = !a  ? vqc_error_set(VQC_ERR_FORMAT, "state has no 'ema_accum'")
             : t ? vqc_loop_set_ema(r->loop, t, strtod(a, NULL))
                 : VQC_ERR_FORMAT;
        vqt_free(t);
    }
    int w = r->g->stop_window;
    if (!rc && w > 0) {
        vqt_device cpu = {VQT_DEVICE_CPU, 0};
        vqt_tensor *t = state_tensor(m, "stop_history", cpu, VQC_DTYPE_F64);
        int64_t n = t ? vqt_numel(t) : -1;
        if (n < 0 || n > 2 * w)
            rc = t ? vqc_error_set(VQC_ERR_FORMAT, "bad stop history") : VQC_ERR_FORMAT;
        else if (n > 0 && vqt_to_host(t, r->stop_hist, VQC_DTYPE_F64, n) != n)
            rc = vqc_torch_fail("stop history");
        r->stop_n = rc ? 0 : (int)n;
        vqt_free(t);
    }
    return rc;
}

int vqc_gen_load_state(gen_run *r)
{
    vqc_tensor_map *m;
    int rc = vqc_tmap_open(r->g->resume, &m);
    if (rc)
        return rc;
    int step, rounds;
    double w;
    int64_t optsteps;
    vqt_tensor *z = NULL, *anchor = NULL;
    rc = check_meta(r, m, &step, &w, &rounds, &optsteps);
    if (!rc && step > r->g->iterations)
        rc = vqc_error_set(VQC_ERR_USAGE,
                           "the state is at step %d, past the %d iterations asked for: ask for at "
                           "least %d",
                           step, r->g->iterations, step);
    if (!rc && !(z = state_tensor(m, "z", r->ctx->dev, VQC_DTYPE_F32)))
        rc = VQC_ERR_FORMAT;
    if (!rc && !(anchor = state_tensor(m, "anchor", r->ctx->dev, VQC_DTYPE_F32)))
        rc = VQC_ERR_FORMAT;
    rc = rc ? rc : vqc_loop_restore(r->loop, z, step, anchor, w, rounds);
    rc = rc ? rc : restore_schedules(r, m);
    rc = rc ? rc : restore_optimiser(r, m, optsteps);
    rc = rc ? rc : restore_rng(r, m);
    vqt_free(z);
    vqt_free(anchor);
    vqc_tmap_free(m);
    if (rc)
        return vqc_error_wrap(rc, "resuming from %s", r->g->resume);
    vqc_log(VQC_LOG_INFO, "resuming from step %d of %d (%s)", step, r->g->iterations, r->g->resume);
    return 0;
}

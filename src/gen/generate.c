/* The public library API (include/vqclip.h): a context that holds the models (found and loaded
 * at the first generation), the parameter checks, and one generation run over the loop (the run
 * itself is in gen_run.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen/cpu_share.h"
#include "gen/gen_internal.h"
#include "gen/memplan.h"
#include "gen/modelpath.h"
#include "gen/schedule.h"
#include "gen/tools.h"
#include "io/image.h"
#include "io/image_text.h"
#include "util/compute_lock.h"
#include "util/env.h"
#include "util/error.h"

const char *vqc_last_error(void)
{
    return vqc_error_get();
}

int vqc_set_error(int code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return vqc_error_set(code, "%s", text);
}

const char *vqc_version(void)
{
    return VQCLIP_VERSION;
}

const char *vqc_torch_version(void)
{
    return vqt_version();
}

int vqc_check_output(const char *path)
{
    return vqc_check_writable(path);
}

int vqc_image_step(const char *path, int *step)
{
    char text[32], *end;
    int rc = vqc_image_text(path, "vqclip:step", text, sizeof text);
    if (rc)
        return rc;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 0 || v > INT32_MAX)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: bad vqclip:step '%s'", path, text);
    *step = (int)v;
    return 0;
}

bool vqc_image_plateaued(const char *path)
{
    char text[32];
    return vqc_image_text(path, "vqclip:stopped", text, sizeof text) == 0 &&
           strcmp(text, "plateau") == 0;
}

/* ---- context --------------------------------------------------------------------------- */

vqc_context_params vqc_context_default_params(void)
{
    vqc_context_params p;
    memset(&p, 0, sizeof p);
    p.auto_low_memory = true;
    return p;
}

/* A copy of s (NULL stays NULL); false when out of memory. */
static bool dup_opt(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

/* A default model that was not found: says why the default was looked up at all (another model
 * was named, which turns the demo set off, or none is installed). */
static int default_looked_up(const vqc_context_params *p, const char *what, int rc)
{
    char demo[4000];
    if (p->vqgan || p->clip || p->bpe)
        return vqc_error_wrap(rc,
                              "no %s was named, so the default is looked up (the demo set "
                              "stands in only when no model at all is named)",
                              what);
    if (vqc_demo_dir(demo, sizeof demo) != 0)
        return vqc_error_wrap(rc, "the demo set is not installed either");
    return rc;
}

/* Whether two paths name one file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return strcmp(a, b) == 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The files of the listed CLIP models, each once, and their list with the weights. */
static int find_clips(vqc_context *c)
{
    const char *paths[VQC_MAX_CLIPS];
    double weights[VQC_MAX_CLIPS];
    for (int k = 0; k < c->n_clips; k++) {
        int rc = vqc_model_find(VQC_MODEL_CLIP, c->clip_list[k].name, c->clip_paths[k],
                                sizeof c->clip_paths[k]);
        if (rc)
            return rc;
        for (int i = 0; i < k; i++)
            if (same_file(c->clip_paths[i], c->clip_paths[k]))
                return vqc_error_set(VQC_ERR_USAGE,
                                     "CLIP models '%s' and '%s' are the same file %s (give it one "
                                     "weight)",
                                     c->clip_list[i].name, c->clip_list[k].name, c->clip_paths[k]);
        paths[k] = c->clip_paths[k];
        weights[k] = c->clip_list[k].weight;
    }
    return vqc_clip_spec_format(paths, weights, c->n_clips, c->clip_spec, sizeof c->clip_spec);
}

static int find_models(vqc_context *c)
{
    const vqc_context_params *p = &c->p;
    char demo[4000]; /* room for "/" and a file name in the 4096-byte paths */
    c->demo = false;
    if (!p->vqgan && !p->clip && !p->bpe && vqc_demo_fallback(demo, sizeof demo)) {
        /* The whole demo set, never mixed with a downloaded model. */
        snprintf(c->vqgan_path, sizeof c->vqgan_path, "%s/%s", demo, VQC_DEMO_VQGAN);
        snprintf(c->clip_paths[0], sizeof c->clip_paths[0], "%s/%s", demo, VQC_DEMO_CLIP);
        snprintf(c->clip_spec, sizeof c->clip_spec, "%s", c->clip_paths[0]);
        snprintf(c->bpe_path, sizeof c->bpe_path, "%s/%s", demo, VQC_DEMO_BPE);
        if (vqc_model_find_yaml(c->vqgan_path, c->yaml_path, sizeof c->yaml_path) != 0)
            c->yaml_path[0] = 0;
        c->demo = true;
        vqc_log(VQC_LOG_WARN,
                "no downloaded models found: using the small demo models in %s (coloured "
                "shapes, 64x64); scripts/download-models.sh fetches the real ones",
                demo);
        return 0;
    }
    int rc = vqc_model_find(VQC_MODEL_VQGAN, p->vqgan ? p->vqgan : VQC_DEFAULT_VQGAN, c->vqgan_path,
                            sizeof c->vqgan_path);
    if (rc)
        return p->vqgan ? rc : default_looked_up(p, "VQGAN", rc);
    rc = find_clips(c);
    if (rc && !p->clip)
        return default_looked_up(p, "CLIP", rc);
    rc = rc ? rc : vqc_model_find_bpe(p->bpe, c->clip_paths[0], c->bpe_path, sizeof c->bpe_path);
    if (rc)
        return rc;
    if (p->vqgan_config)
        snprintf(c->yaml_path, sizeof c->yaml_path, "%s", p->vqgan_config);
    else if (vqc_model_find_yaml(c->vqgan_path, c->yaml_path, sizeof c->yaml_path) != 0)
        c->yaml_path[0] = 0;
    return 0;
}

/* Whether a GPU of this major compute capability (negative: not known) is known to lack
 * cuDNN's bfloat16 convolutions. */
static bool lacks_bf16_convs(int cc_major)
{
    return cc_major >= 0 && cc_major < VQC_BF16_CONV_CC_MAJOR;
}

int vqc_init(const vqc_context_params *p, vqc_context **out)
{
    *out = NULL;
    if ((unsigned)p->precision >= VQC_PRECISION_COUNT || p->n_threads < 0 || p->memory_limit < 0)
        return vqc_error_set(VQC_ERR_USAGE, "context parameters out of range");
    vqc_context *c = calloc(1, sizeof *c);
    if (!c)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    c->p = *p;
    /* set in libtorch when the context computes (apply_process_settings), not here: another
     * context may be computing now */
    c->n_threads = p->n_threads > 0 ? p->n_threads : vqc_cpu_default_threads();
    bool ok = dup_opt(p->vqgan, &c->names[0]) && dup_opt(p->vqgan_config, &c->names[1]) &&
              dup_opt(p->clip, &c->names[2]) && dup_opt(p->bpe, &c->names[3]) &&
              dup_opt(p->device, &c->names[4]);
    c->p.vqgan = c->names[0];
    c->p.vqgan_config = c->names[1];
    c->p.clip = c->names[2];
    c->p.bpe = c->names[3];
    c->p.device = c->names[4];
    int rc = ok ? 0 : vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    if (!rc && c->p.clip)
        rc = vqc_clip_spec_parse(c->p.clip, c->clip_list, &c->n_clips);
    else if (!rc) {
        snprintf(c->clip_list[0].name, sizeof c->clip_list[0].name, "%s", VQC_DEFAULT_CLIP);
        c->clip_list[0].weight = 1;
        c->n_clips = 1;
    }
    rc = rc ? rc : vqc_device_resolve(c->p.device, &c->dev);
    if (rc) {
        vqc_free(c);
        return rc;
    }
    bool cuda = c->dev.type == VQT_DEVICE_CUDA;
    if (!cuda && p->precision != VQC_PRECISION_AUTO && p->precision != VQC_PRECISION_EXACT)
        vqc_log(VQC_LOG_WARN, "the precision setting applies to CUDA devices only: the CPU "
                              "computes in float32");
    int cc_major = -1, cc_minor = 0;
    if (cuda)
        vqt_cuda_capability(c->dev, &cc_major, &cc_minor);
    vqc_precision precision = vqc_gen_resolve_precision(p->precision, cuda, cc_major);
    if (cuda && lacks_bf16_convs(cc_major)) {
        char dev[32];
        vqt_device_str(c->dev, dev, sizeof dev);
        if (p->precision == VQC_PRECISION_AUTO)
            vqc_log(VQC_LOG_INFO,
                    "%s (compute capability %d.%d) has no bfloat16 convolutions: precision "
                    "mixed (the VQGAN in float32, CLIP in float16)",
                    dev, cc_major, cc_minor);
        else if (precision == VQC_PRECISION_FAST)
            vqc_log(VQC_LOG_WARN,
                    "%s (compute capability %d.%d) has no bfloat16 convolutions: the fast "
                    "precision's decoder runs on libtorch's generic kernels there and may be "
                    "slower than the mixed precision",
                    dev, cc_major, cc_minor);
    }
    c->precision = precision;
    c->clip_bytes = precision != VQC_PRECISION_EXACT && !p->clip_fp32 && cuda ? 2 : 4;
    c->low_memory = p->low_memory;
    *out = c;
    return 0;
}

/* Frees the models (not the settings): a failed load leaves none half-made. */
static void unload(vqc_context *c)
{
    vqc_tokenizer_free(c->tok);
    for (int k = 0; k < VQC_MAX_CLIPS; k++) {
        vqc_clip_free(c->clips[k]);
        c->clips[k] = NULL;
    }
    vqc_vqgan_free(c->vq);
    c->tok = NULL;
    c->vq = NULL;
}

vqc_precision vqc_gen_resolve_precision(vqc_precision requested, bool cuda, int cc_major)
{
    if (!cuda)
        return VQC_PRECISION_EXACT;
    if (requested != VQC_PRECISION_AUTO)
        return requested;
    return lacks_bf16_convs(cc_major) ? VQC_PRECISION_MIXED : VQC_PRECISION_FAST;
}

int vqc_gen_apply_precision(vqc_precision prec, bool deterministic, vqt_device dev, vqc_vqgan *vq,
                            vqc_clip *const *clips, int n_clips)
{
    int rc = prec == VQC_PRECISION_FAST ? vqc_vqgan_set_decoder_dtype(vq, VQC_DTYPE_BF16) : 0;
    /* A developer's switch until the GPU figures decide the default (docs/gpu.md). */
    static const char *const off_on[] = {"0", "1", NULL};
    static const char *const sdpa_values[] = {"0", "1", "all", NULL};
    if (!rc && vqc_env_choice("VQCLIP_CHANNELS_LAST", off_on) == 1)
        rc = vqc_vqgan_set_decoder_channels_last(vq, true);
    /* Fused attention, CLIP's and the decoder's over many cells, in the fast precision on CUDA,
     * where libtorch 2.x has kernels for it; not with --deterministic (the fused backward passes
     * add with atomics). VQCLIP_SDPA=0|1|all is a developer's switch for gpu-check's comparison
     * rows (docs/gpu.md): none, as in the fast precision, or also the decoder's at every size. */
    int sdpa = vqc_env_choice("VQCLIP_SDPA", sdpa_values);
    bool all = sdpa == 2;
    bool fused = sdpa >= 0
                     ? sdpa >= 1
                     : prec == VQC_PRECISION_FAST && dev.type == VQT_DEVICE_CUDA && !deterministic;
    int64_t cells = all ? 0 : VQC_VQGAN_FUSED_ATTENTION_CELLS;
    for (int k = 0; !rc && k < n_clips; k++)
        vqc_clip_set_fused_attention(clips[k], fused);
    if (!rc) /* after the type: the check runs in the decoder's */
        vqc_vqgan_set_fused_attention(vq, fused, cells);
    return rc;
}

/* The settings libtorch keeps for the whole process, as this context asked for them: the CPU
 * thread count (a seed gives its picture at one thread count) and, on CUDA, TF32 and
 * deterministic algorithms. Another context may have set its own since this one was made. */
static void apply_process_settings(const vqc_context *c)
{
    vqt_init(c->n_threads);
    if (c->dev.type == VQT_DEVICE_CUDA) {
        vqt_set_tf32(false); /* libtorch would allow it in cuDNN's convolutions */
        vqt_set_deterministic(c->p.deterministic);
    }
}

static int load_locked(vqc_context *c)
{
    apply_process_settings(c);
    if (c->vq)
        return 0;
    vqc_clip_precision prec = c->clip_bytes == 2 ? VQC_CLIP_FP16 : VQC_CLIP_FP32;
    int rc = find_models(c);
    rc = rc ? rc : vqc_tokenizer_load(c->bpe_path, &c->tok);
    rc = rc ? rc
            : vqc_vqgan_load(c->vqgan_path, c->yaml_path[0] ? c->yaml_path : NULL, c->dev, &c->vq);
    for (int k = 0; !rc && k < c->n_clips; k++)
        rc = vqc_clip_load(c->clip_paths[k], c->dev, prec, &c->clips[k]);
    rc = rc ? rc
            : vqc_gen_apply_precision(c->precision, c->p.deterministic, c->dev, c->vq, c->clips,
                                      c->n_clips);
    if (rc) {
        unload(c);
        return rc;
    }
    vqc_vqgan_set_low_memory(c->vq, c->low_memory);
    char dev[32];
    vqt_device_str(c->dev, dev, sizeof dev);
    bool cpu = c->dev.type == VQT_DEVICE_CPU;
    const char *wait = getenv("OMP_WAIT_POLICY"); /* said: it decides speed on a busy machine */
    char prec_text[40] = ""; /* the CPU always computes in float32: said only on a GPU */
    if (!cpu)
        snprintf(prec_text, sizeof prec_text, "precision %s, ", vqc_precision_name(c->precision));
    vqc_log(VQC_LOG_INFO, "models loaded on %s (%s%s%d %sthreads%s%s): %s, %s", dev,
            !c->p.device && cpu ? "no CUDA device found; " : "", prec_text, c->n_threads,
            cpu ? "" : "host ", wait ? ", OpenMP wait policy " : "", wait ? wait : "",
            c->vqgan_path, c->clip_spec);
    return 0;
}

int vqc_load(vqc_context *c)
{
    vqc_compute_begin();
    int rc = load_locked(c);
    vqc_compute_end();
    return rc;
}

void vqc_free(vqc_context *c)
{
    if (!c)
        return;
    vqc_compute_begin();
    unload(c);
    vqc_compute_end();
    for (size_t i = 0; i < sizeof c->names / sizeof c->names[0]; i++)
        free(c->names[i]);
    free(c);
}

/* ---- parameters ------------------------------------------------------------------------ */

vqc_generate_params vqc_generate_default_params(void)
{
    static const vqc_augment default_augments[] = {VQC_AUGMENT_AF, VQC_AUGMENT_PE, VQC_AUGMENT_JI,
                                                   VQC_AUGMENT_ER};
    vqc_generate_params p;
    memset(&p, 0, sizeof p);
    p.iterations = 500;
    p.save_every = 50;
    p.mse_decay_every = 50;
    p.mse_epochs = 5;
    p.lr = 0.1;
    p.cutn = 32;
    p.cut_pow = 1.0;
    p.cut_noise = 0.1;
    p.n_augments = 4;
    memcpy(p.augments, default_augments, sizeof default_augments);
    p.frame_every = 1;
    p.zoom_scale = 0.99;
    p.output = "output.png";
    p.palette_weight = 1.0;
    p.lr_step_every = 100;
    p.lr_step_factor = 0.5;
    p.stop_fraction = 0.01;
    return p;
}

/* The camera schedules read, and the zoom ones positive (a zoom of 0 or below has no picture). */
static int check_schedules(const vqc_generate_params *g)
{
    const char *const texts[4] = {g->zoom_schedule, g->angle_schedule, g->shift_x_schedule,
                                  g->shift_y_schedule};
    static const char *const names[4] = {"zoom schedule", "angle schedule", "shift-x schedule",
                                         "shift-y schedule"};
    static _Thread_local vqc_schedule s; /* 4 KB: not on the stack */
    for (int i = 0; i < 4; i++) {
        if (!texts[i])
            continue;
        int rc = vqc_schedule_parse(texts[i], names[i], &s);
        for (int k = 0; !rc && i == 0 && k < s.n; k++)
            if (!(s.value[k] > 0))
                rc = vqc_error_set(VQC_ERR_USAGE,
                                   "zoom schedule: the zoom at frame %.0f is %g; "
                                   "it must be above 0",
                                   s.frame[k], s.value[k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* The shaping losses' and schedules' settings. */
static int check_shaping(const vqc_generate_params *g)
{
    double w[] = {g->smoothness,     g->saturation,     g->symmetry, g->symmetry_ud,
                  g->palette_weight, g->lr_step_factor, g->lr_floor, g->stop_fraction};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (!isfinite(w[i]))
            return vqc_error_set(VQC_ERR_USAGE, "loss weights and schedule settings must be "
                                                "finite");
    if ((unsigned)g->smoothness_type >= VQC_SMOOTHNESS_COUNT ||
        (unsigned)g->lr_schedule >= VQC_LR_COUNT)
        return vqc_error_set(VQC_ERR_USAGE, "smoothness type or learning-rate schedule out of "
                                            "range");
    if (g->lr_step_every <= 0 || g->lr_step_factor < 0 || g->lr_floor < 0 || g->stop_window < 0 ||
        g->stop_fraction < 0)
        return vqc_error_set(VQC_ERR_USAGE, "schedule settings must be positive (the stop "
                                            "window 0 for off)");
    if (!(g->ema >= 0 && g->ema < 1))
        return vqc_error_set(VQC_ERR_USAGE, "the moving average's decay must be in [0, 1)");
    float rgb[VQC_MAX_PALETTE][3];
    int n;
    return g->palette ? vqc_palette_parse(g->palette, rgb, &n) : 0;
}

int vqc_generate_check(const vqc_generate_params *g)
{
    if (g->width < 0 || g->height < 0 || g->width > VQC_MAX_SIDE || g->height > VQC_MAX_SIDE)
        return vqc_error_set(VQC_ERR_USAGE, "size %dx%d is out of range (1 to %d)", g->width,
                             g->height, VQC_MAX_SIDE);
    if (g->cutn > VQC_MAX_CUTN)
        return vqc_error_set(VQC_ERR_USAGE, "cutn %d is out of range (1 to %d)", g->cutn,
                             VQC_MAX_CUTN);
    if (g->iterations < 0 || g->save_every < 0 || g->cutn <= 0 || g->frame_every <= 0 ||
        g->change_prompt_every < 0 || g->mse_decay_every <= 0 || g->mse_epochs <= 0 ||
        g->zoom_every < 0 || g->zoom_start < 0 || g->n_image_prompts < 0 || g->n_noise_prompts < 0)
        return vqc_error_set(VQC_ERR_USAGE, "iterations, save-every, cutn and similar counts "
                                            "must be positive (or 0 where that means off)");
    if (!isfinite(g->lr) || g->lr < 0 || !isfinite(g->init_weight) || !isfinite(g->cut_pow) ||
        !isfinite(g->cut_noise) || g->cut_noise < 0 || !isfinite(g->zoom_scale) ||
        g->zoom_scale <= 0)
        return vqc_error_set(VQC_ERR_USAGE, "learning rate, init weight, cut-pow and cut-noise "
                                            "must be finite (and not negative)");
    if (check_schedules(g))
        return vqc_error_code();
    if ((unsigned)g->optimiser >= VQC_OPT_COUNT || (unsigned)g->cut_method >= VQC_CUT_COUNT ||
        (unsigned)g->init_weight_mode >= VQC_MSE_COUNT ||
        (unsigned)g->init_noise >= VQC_NOISE_COUNT || g->n_augments < 0 ||
        g->n_augments > VQC_MAX_AUGMENTS)
        return vqc_error_set(VQC_ERR_USAGE, "a choice (optimiser, cut method, init mode, init "
                                            "noise, augmentations) is out of range");
    for (int i = 0; i < g->n_augments; i++)
        if ((unsigned)g->augments[i] >= VQC_AUGMENT_COUNT)
            return vqc_error_set(VQC_ERR_USAGE, "augmentation %d is out of range", i + 1);
    if (!g->output || !*g->output)
        return vqc_error_set(VQC_ERR_USAGE, "no output file");
    int rc = vqc_image_check_name(g->output, "output");
    rc = rc ? rc : check_shaping(g);
    return rc ? rc : vqc_gen_check_prompts(g);
}

/* Size: the device default, rounded down to the VQGAN's factor (with a notice). */
static int pick_size(const vqc_context *c, const vqc_generate_params *g, vqc_loop_params *lp)
{
    int f = vqc_vqgan_get_info(c->vq)->downsample, w = g->width, h = g->height;
    if (w == 0 && h == 0)
        w = h = c->dev.type == VQT_DEVICE_CUDA ? 512 : 256;
    if (w <= 0 || h <= 0 || w > VQC_MAX_SIDE || h > VQC_MAX_SIDE)
        return vqc_error_set(VQC_ERR_USAGE, "size %dx%d is out of range (1 to %d)", w, h,
                             VQC_MAX_SIDE);
    int rw = w / f * f, rh = h / f * f;
    if (rw == 0 || rh == 0)
        return vqc_error_set(VQC_ERR_USAGE, "size %dx%d is smaller than the VQGAN's factor %d", w,
                             h, f);
    if (rw != w || rh != h)
        vqc_log(VQC_LOG_INFO, "size %dx%d rounded down to %dx%d (multiples of %d)", w, h, rw, rh,
                f);
    lp->width = rw;
    lp->height = rh;
    return 0;
}

int vqc_gen_loop_params(const vqc_context *c, const vqc_generate_params *g, vqc_loop_params *lp)
{
    *lp = vqc_loop_default_params();
    int rc = pick_size(c, g, lp);
    if (rc)
        return rc;
    lp->lr = g->lr;
    lp->init_weight = g->init_weight;
    lp->mse_mode = g->init_weight_mode;
    lp->mse_decay_every = g->mse_decay_every;
    lp->mse_epochs = g->mse_epochs;
    lp->seed = g->seed;
    lp->optimiser = g->optimiser;
    lp->cut.method = g->cut_method;
    lp->cut.cutn = g->cutn;
    lp->cut.cut_pow = g->cut_pow;
    lp->cut.cut_noise = g->cut_noise;
    lp->cut.augments.n = g->n_augments;
    memcpy(lp->cut.augments.code, g->augments, (size_t)g->n_augments * sizeof *g->augments);
    lp->shape.smoothness = g->smoothness;
    lp->shape.smoothness_type = g->smoothness_type;
    lp->shape.saturation = g->saturation;
    lp->shape.symmetry_lr = g->symmetry;
    lp->shape.symmetry_ud = g->symmetry_ud;
    lp->shape.palette_weight = g->palette_weight;
    if (g->palette && (rc = vqc_palette_parse(g->palette, lp->shape.palette, &lp->shape.n_palette)))
        return rc;
    lp->lr_schedule = g->lr_schedule;
    lp->lr_step_every = g->lr_step_every;
    lp->lr_step_factor = g->lr_step_factor;
    lp->lr_floor = g->lr_floor;
    lp->iterations = g->iterations;
    lp->ema = g->ema;
    lp->clip_weight = c->clip_list[0].weight;
    return 0;
}

/* ---- one run --------------------------------------------------------------------------- */

/* The result's memory advice for a failure to fit (the error message says why). */
static void fill_advice(const gen_run *r, vqc_generate_result *res)
{
    vqc_memplan_advice a;
    vqc_memplan_advise(&r->plan, r->ctx->dev, r->lp.width, r->lp.height, r->oom, &a);
    res->advice.known = a.known;
    res->advice.fit_width = a.fit_width;
    res->advice.fit_height = a.fit_height;
    res->advice.fewer_cutn = a.fewer_cutn;
    res->advice.low_memory = a.low_memory;
    const char *out = r->g->output;
    snprintf(r->ctx->kept, sizeof r->ctx->kept, "%s", out ? out : "");
    res->advice.kept = r->oom && out && access(out, F_OK) == 0 ? r->ctx->kept : NULL;
}

static int generate_locked(vqc_context *c, const vqc_generate_params *g, vqc_generate_result *res)
{
    apply_process_settings(c);
    gen_run r;
    memset(&r, 0, sizeof r);
    r.ctx = c;
    r.g = g;
    r.t_start = vqc_now();
    vqc_error_set(0, "%s", "");
    int rc = vqc_gen_setup(&r);
    if (!rc)
        rc = vqc_gen_optimise(&r);
    /* An allocation that failed (not a size the planner refused): said once, the same way. */
    if (rc && r.lp.width > 0 && r.plan.vi && !r.refused &&
        (rc == VQC_ERR_NOMEM || vqc_error_code() == VQC_ERR_NOMEM)) {
        r.oom = true;
        rc = vqc_memplan_oom_error(c->dev, r.lp.width, r.lp.height);
    }
    if (res) {
        memset(res, 0, sizeof *res);
        res->steps = r.loop ? vqc_loop_steps(r.loop) : 0;
        res->width = r.lp.width;
        res->height = r.lp.height;
        res->loss = r.total_loss;
        res->setup_seconds = (r.t_first ? r.t_first : vqc_now()) - r.t_start;
        res->seconds = vqc_now() - r.t_start;
        /* a profile resets the device's peak at its marks and keeps the run's */
        int64_t peak = r.prof ? vqt_profile_peak_bytes(r.prof) : vqt_peak_bytes(c->dev);
        res->peak_device_bytes = peak > 0 ? (long long)peak : 0;
        res->base_device_bytes = r.base_bytes > 0 ? (long long)r.base_bytes : 0;
        res->planned_step_bytes =
            r.lp.width > 0 && r.plan.vi
                ? (long long)vqc_memplan_step_bytes(&r.plan, r.lp.width, r.lp.height)
                : 0;
        if (rc == VQC_ERR_NOMEM && r.lp.width > 0 && r.plan.vi)
            fill_advice(&r, res);
        res->plateaued = r.plateaued;
        res->low_memory = c->vq && vqc_vqgan_low_memory(c->vq);
    }
    vqc_gen_run_free(&r);
    return rc;
}

int vqc_generate(vqc_context *c, const vqc_generate_params *g, vqc_generate_result *res)
{
    vqc_compute_begin();
    int rc = generate_locked(c, g, res);
    vqc_compute_end();
    return rc;
}

/* The public library API (include/vqclip.h): a context that holds the models, and one
 * generation run over the loop with snapshots, story mode, frames and resumable state. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen/gen_internal.h"
#include "gen/memplan.h"
#include "gen/modelpath.h"
#include "util/error.h"

const char *vqc_last_error(void)
{
    return vqc_error_get();
}

const char *vqc_version(void)
{
    return VQCLIP_VERSION;
}

double vqc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- context --------------------------------------------------------------------------- */

vqc_context_params vqc_context_default_params(void)
{
    vqc_context_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static int find_models(vqc_context *c, const vqc_context_params *p)
{
    char demo[4000]; /* room for "/" and a file name in the 4096-byte paths */
    if (!p->vqgan && !p->clip && !p->bpe && vqc_demo_fallback(demo, sizeof demo)) {
        /* The whole demo set, never mixed with a downloaded model. */
        snprintf(c->vqgan_path, sizeof c->vqgan_path, "%s/%s", demo, VQC_DEMO_VQGAN);
        snprintf(c->clip_path, sizeof c->clip_path, "%s/%s", demo, VQC_DEMO_CLIP);
        snprintf(c->bpe_path, sizeof c->bpe_path, "%s/%s", demo, VQC_DEMO_BPE);
        if (vqc_model_find_yaml(c->vqgan_path, c->yaml_path, sizeof c->yaml_path) != 0)
            c->yaml_path[0] = 0;
        vqc_log(VQC_LOG_WARN,
                "no downloaded models found: using the small demo models in %s (coloured "
                "shapes, 64x64); scripts/download-models.sh fetches the real ones",
                demo);
        return 0;
    }
    int rc = vqc_model_find(VQC_MODEL_VQGAN, p->vqgan ? p->vqgan : VQC_DEFAULT_VQGAN, c->vqgan_path,
                            sizeof c->vqgan_path);
    rc = rc ? rc
            : vqc_model_find(VQC_MODEL_CLIP, p->clip ? p->clip : VQC_DEFAULT_CLIP, c->clip_path,
                             sizeof c->clip_path);
    rc = rc ? rc : vqc_model_find_bpe(p->bpe, c->clip_path, c->bpe_path, sizeof c->bpe_path);
    if (rc)
        return rc;
    if (p->vqgan_config)
        snprintf(c->yaml_path, sizeof c->yaml_path, "%s", p->vqgan_config);
    else if (vqc_model_find_yaml(c->vqgan_path, c->yaml_path, sizeof c->yaml_path) != 0)
        c->yaml_path[0] = 0;
    return 0;
}

static int pick_device(const char *name, vqt_device *dev)
{
    if (!name) {
        *dev = (vqt_device){vqt_cuda_device_count() > 0 ? VQT_DEVICE_CUDA : VQT_DEVICE_CPU, 0};
        return 0;
    }
    int rc = vqt_device_parse(name, dev);
    if (rc != 0) /* -2: a CUDA device that is not there is a device failure (exit 3) */
        return vqc_error_set(rc == -2 ? VQC_ERR_RUNTIME : VQC_ERR_USAGE, "%s", vqt_last_error());
    return 0;
}

int vqc_init(const vqc_context_params *p, vqc_context **out)
{
    *out = NULL;
    vqt_init(p->n_threads);
    vqc_context *c = calloc(1, sizeof *c);
    if (!c)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    int rc = pick_device(p->device, &c->dev);
    rc = rc ? rc : find_models(c, p);
    bool cuda = c->dev.type == VQT_DEVICE_CUDA;
    vqc_precision precision = p->precision;
    if (!rc && !cuda && precision != VQC_PRECISION_AUTO && precision != VQC_PRECISION_EXACT)
        vqc_log(VQC_LOG_WARN, "the precision setting applies to CUDA devices only: the CPU "
                              "computes in float32");
    if (precision == VQC_PRECISION_AUTO || !cuda)
        precision = cuda ? VQC_PRECISION_FAST : VQC_PRECISION_EXACT;
    c->precision = precision;
    if (cuda) {
        vqt_set_tf32(false); /* libtorch would allow it in cuDNN's convolutions */
        vqt_set_deterministic(p->deterministic);
    }
    vqc_clip_precision prec =
        precision != VQC_PRECISION_EXACT && !p->clip_fp32 ? VQC_CLIP_FP16 : VQC_CLIP_FP32;
    c->clip_bytes = prec == VQC_CLIP_FP16 ? 2 : 4;
    rc = rc ? rc : vqc_tokenizer_load(c->bpe_path, &c->tok);
    rc = rc ? rc
            : vqc_vqgan_load(c->vqgan_path, c->yaml_path[0] ? c->yaml_path : NULL, c->dev, &c->vq);
    if (!rc && precision == VQC_PRECISION_FAST)
        rc = vqc_vqgan_set_decoder_dtype(c->vq, VQC_DTYPE_BF16);
    rc = rc ? rc : vqc_clip_load(c->clip_path, c->dev, prec, &c->clip);
    if (!rc) {
        vqc_vqgan_set_low_memory(c->vq, p->low_memory);
        c->low_memory = p->low_memory;
        char dev[32];
        vqt_device_str(c->dev, dev, sizeof dev);
        vqc_log(VQC_LOG_INFO, "models loaded on %s%s: %s, %s", dev,
                !p->device && c->dev.type == VQT_DEVICE_CPU ? " (no CUDA device found)" : "",
                c->vqgan_path, c->clip_path);
    }
    if (rc) {
        vqc_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void vqc_free(vqc_context *c)
{
    if (!c)
        return;
    vqc_tokenizer_free(c->tok);
    vqc_clip_free(c->clip);
    vqc_vqgan_free(c->vq);
    free(c);
}

int vqc_downsample_factor(const vqc_context *c)
{
    return vqc_vqgan_get_info(c->vq)->downsample;
}

bool vqc_on_cuda(const vqc_context *c)
{
    return c->dev.type == VQT_DEVICE_CUDA;
}

const char *vqc_vqgan_path(const vqc_context *c)
{
    return c->vqgan_path;
}

const char *vqc_clip_path(const vqc_context *c)
{
    return c->clip_path;
}

/* ---- parameters ------------------------------------------------------------------------ */

vqc_generate_params vqc_generate_default_params(void)
{
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
    p.frame_every = 1;
    p.zoom_scale = 0.99;
    p.output = "output.png";
    return p;
}

static int parse_mse_mode(const char *s, vqc_mse_mode *out)
{
    static const char *const modes[] = {"seed", "anchor", "stepped"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, modes[i]) == 0) {
            *out = (vqc_mse_mode)i;
            return 0;
        }
    return vqc_error_set(VQC_ERR_USAGE, "init weight mode '%s': expected seed, anchor or stepped",
                         s);
}

/* Size: the device default, rounded down to the VQGAN's factor (with a notice). */
static int pick_size(const vqc_context *c, const vqc_generate_params *g, vqc_loop_params *lp)
{
    int f = vqc_downsample_factor(c), w = g->width, h = g->height;
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

static int check_numbers(const vqc_generate_params *g)
{
    if (g->iterations < 0 || g->save_every < 0 || g->cutn <= 0 || g->frame_every <= 0 ||
        g->change_prompt_every < 0 || g->mse_decay_every <= 0 || g->mse_epochs <= 0)
        return vqc_error_set(VQC_ERR_USAGE, "iterations, save-every, cutn and similar counts "
                                            "must be positive (or 0 where that means off)");
    if (!isfinite(g->lr) || g->lr < 0 || !isfinite(g->init_weight) || !isfinite(g->cut_pow) ||
        !isfinite(g->cut_noise) || g->cut_noise < 0)
        return vqc_error_set(VQC_ERR_USAGE, "learning rate, init weight, cut-pow and cut-noise "
                                            "must be finite (and not negative)");
    return 0;
}

int vqc_gen_loop_params(const vqc_context *c, const vqc_generate_params *g, vqc_loop_params *lp)
{
    *lp = vqc_loop_default_params();
    int rc = check_numbers(g);
    rc = rc ? rc : pick_size(c, g, lp);
    if (rc)
        return rc;
    lp->lr = g->lr;
    lp->init_weight = g->init_weight;
    lp->mse_decay_every = g->mse_decay_every;
    lp->mse_epochs = g->mse_epochs;
    lp->seed = g->seed;
    lp->cut.cutn = g->cutn;
    lp->cut.cut_pow = g->cut_pow;
    lp->cut.cut_noise = g->cut_noise;
    if (g->optimiser)
        rc = vqc_optim_parse(g->optimiser, &lp->optimiser);
    if (!rc && g->cut_method)
        rc = vqc_cut_method_parse(g->cut_method, &lp->cut.method);
    if (!rc && g->augments)
        rc = vqc_augments_parse(g->augments, &lp->cut.augments);
    if (!rc && g->init_weight_mode)
        rc = parse_mse_mode(g->init_weight_mode, &lp->mse_mode);
    if (!rc && g->init_noise && strcmp(g->init_noise, "pixels") != 0 &&
        strcmp(g->init_noise, "gradient") != 0)
        rc = vqc_error_set(VQC_ERR_USAGE, "init noise '%s': expected pixels or gradient",
                           g->init_noise);
    return rc;
}

/* ---- one run --------------------------------------------------------------------------- */

int vqc_generate(vqc_context *c, const vqc_generate_params *g, vqc_generate_result *res)
{
    gen_run r;
    memset(&r, 0, sizeof r);
    r.ctx = c;
    r.g = g;
    r.t_start = vqc_now();
    vqt_cuda_reset_peak(c->dev);
    int64_t base = vqt_cuda_allocated_bytes(c->dev);
    vqc_error_set(0, "%s", "");
    int rc = vqc_gen_setup(&r);
    if (!rc)
        rc = vqc_gen_optimise(&r);
    if (rc && rc != VQC_ERR_NOMEM && r.lp.width > 0 && vqc_memplan_is_oom(vqc_error_get()))
        rc = vqc_memplan_oom_error(&r.plan, c->dev, r.lp.width, r.lp.height,
                                   g->output && access(g->output, F_OK) == 0 ? g->output : NULL);
    if (res) {
        memset(res, 0, sizeof *res);
        res->steps = r.loop ? vqc_loop_steps(r.loop) : 0;
        res->width = r.lp.width;
        res->height = r.lp.height;
        res->loss = r.total_loss;
        res->setup_seconds = (r.t_first ? r.t_first : vqc_now()) - r.t_start;
        res->seconds = vqc_now() - r.t_start;
        int64_t peak = vqt_cuda_peak_bytes(c->dev);
        res->peak_device_bytes = peak > 0 ? (long long)peak : 0;
        res->base_device_bytes = base > 0 ? (long long)base : 0;
        res->planned_step_bytes =
            r.lp.width > 0 ? (long long)vqc_memplan_step_bytes(&r.plan, r.lp.width, r.lp.height)
                           : 0;
    }
    vqc_gen_run_free(&r);
    return rc;
}

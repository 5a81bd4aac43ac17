/* The optimisation loop (see loop.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen/loop_internal.h"
#include "util/error.h"
#include "util/torch_error.h"

const char *const vqc_loop_profile_stages[VQC_LOOP_PROFILE_STAGES] = {
    "quantise",         "decode forward",  "cutouts + augmentation",
    "CLIP forward",     "losses",          "CLIP backward",
    "cutouts backward", "decode backward", "read back (waits)",
    "optimiser"};

/* The MSE-regularised notebook's decay of its moving average of z (ema_val), which its stepped
 * mode always keeps: used there unless p.ema sets another. */
#define STEPPED_EMA 0.99

/* Steps at the start of a profile that are timed but not counted (cuDNN's first choices,
 * the allocator's first requests). */
#define PROFILE_WARMUP 2

void vqc_loop_set_profile(vqc_loop *L, vqt_profile *prof)
{
    L->prof = prof;
    L->prof_steps = 0;
}

vqc_loop_params vqc_loop_default_params(void)
{
    vqc_loop_params p;
    memset(&p, 0, sizeof p);
    p.width = p.height = 256;
    p.lr = 0.1;
    p.optimiser = VQC_OPT_ADAM;
    p.mse_mode = VQC_MSE_SEED;
    p.mse_decay_every = 50;
    p.mse_epochs = 5;
    p.cut = vqc_cutout_default_params();
    p.cut.cut_size = 0;
    p.clip_weight = 1;
    return p;
}

/* Per-channel min and max over the codebook, as [1, D, 1, 1]. */
static int codebook_range(vqc_loop *L)
{
    const vqt_tensor *cb = vqc_vqgan_codebook(L->vq);
    int64_t zero = 0, shape[4] = {1, L->embed_dim, 1, 1};
    vqt_scope_begin();
    L->z_min = vqt_persist(vqt_reshape(vqt_reduce(VQT_AMIN, cb, 1, &zero, false), 4, shape));
    L->z_max = vqt_persist(vqt_reshape(vqt_reduce(VQT_AMAX, cb, 1, &zero, false), 4, shape));
    vqt_scope_end();
    return L->z_min && L->z_max ? 0 : vqc_torch_fail("codebook range");
}

int vqc_loop_create(const vqc_loop_params *p, const vqc_vqgan *vqgan, const vqc_clip *clip,
                    vqc_loop **out)
{
    *out = NULL;
    const vqc_vqgan_info *vi = vqc_vqgan_get_info(vqgan);
    int f = vi->downsample;
    if (p->width < f || p->height < f || p->width % f || p->height % f)
        return vqc_error_set(VQC_ERR_USAGE, "image size %dx%d must be positive multiples of %d",
                             p->width, p->height, f);
    vqt_device d1 = vqc_vqgan_device(vqgan), d2 = vqc_clip_device(clip);
    if (d1.type != d2.type || d1.index != d2.index)
        return vqc_error_set(VQC_ERR_USAGE, "VQGAN and CLIP are on different devices");
    if (vqc_clip_get_info(clip)->embed_dim <= 0)
        return vqc_error_set(VQC_ERR_MODEL, "CLIP model has no embedding size");
    if (!isfinite(p->clip_weight) || p->clip_weight < 0)
        return vqc_error_set(VQC_ERR_USAGE, "a CLIP model's weight must be a number above 0");
    vqc_loop *L = calloc(1, sizeof *L);
    if (!L)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    L->p = *p;
    L->fixed_cut = p->cut.cut_size > 0 ? p->cut.cut_size : 0;
    if (L->p.cut.cut_size <= 0)
        L->p.cut.cut_size = vqc_clip_get_info(clip)->image_resolution;
    L->vq = vqgan;
    L->clips[0] = (loop_clip){.clip = clip,
                              .weight = p->clip_weight > 0 ? p->clip_weight : 1,
                              .cut_size = L->p.cut.cut_size};
    L->nclips = 1;
    L->dev = d1;
    L->toks_w = p->width / f;
    L->toks_h = p->height / f;
    L->embed_dim = vi->embed_dim;
    L->mse_weight = p->init_weight;
    L->ema_decay = p->ema > 0 ? p->ema : p->mse_mode == VQC_MSE_STEPPED ? STEPPED_EMA : 0;
    vqt_manual_seed(p->seed);
    int rc = codebook_range(L);
    if (rc) {
        vqc_loop_free(L);
        return rc;
    }
    *out = L;
    return 0;
}

void vqc_loop_mse_state(const vqc_loop *L, const vqt_tensor **anchor, double *weight, int *rounds)
{
    *anchor = L->anchor;
    *weight = L->mse_weight;
    *rounds = L->mse_rounds;
}

int vqc_loop_restore(vqc_loop *L, const vqt_tensor *z, int step, const vqt_tensor *anchor,
                     double mse_weight, int mse_rounds)
{
    if (!L->z || step < 0)
        return vqc_error_set(VQC_ERR_USAGE, "restore: the loop has no z yet");
    if (vqt_copy_(L->z, z) != 0 || vqt_copy_(L->anchor, anchor) != 0)
        return vqc_torch_fail("restore z");
    L->step = step;
    L->mse_weight = mse_weight;
    L->mse_rounds = mse_rounds;
    return 0;
}

void vqc_loop_free(vqc_loop *L)
{
    if (!L)
        return;
    vqc_loop_clear_prompts(L);
    vqc_loop_free_graphs(L);
    vqt_free(L->z);
    vqt_free(L->z_min);
    vqt_free(L->z_max);
    vqt_free(L->anchor);
    vqt_free(L->last_grad);
    vqt_free(L->ema);
    vqc_optim_free(L->opt);
    free(L);
}

int vqc_loop_steps(const vqc_loop *L)
{
    return L->step;
}

const vqt_tensor *vqc_loop_z(const vqc_loop *L)
{
    return L->z;
}

const vqt_tensor *vqc_loop_last_grad(const vqc_loop *L)
{
    return L->last_grad;
}

vqc_optim *vqc_loop_optimiser(vqc_loop *L)
{
    return L->opt;
}

/* ---- initial z ------------------------------------------------------------------------- */

/* A persisted copy of z that later in-place updates of z do not change. */
static vqt_tensor *detached_copy(const vqt_tensor *z)
{
    vqt_tensor *d = vqt_detach(z);
    vqt_tensor *c = d ? vqt_clone(d) : NULL;
    vqt_free(d);
    return vqt_persist(c);
}

/* The moving average starts at z: the biased sum after one update from zero. */
static int ema_reset(vqc_loop *L)
{
    vqt_free(L->ema);
    L->ema = NULL;
    if (L->ema_decay <= 0)
        return 0;
    vqt_tensor *d = vqt_detach(L->z);
    L->ema = vqt_persist(vqt_binary_s(VQT_MUL, d, 1.0 - L->ema_decay));
    vqt_free(d);
    L->ema_accum = L->ema_decay;
    return L->ema ? 0 : -1;
}

/* biased = d * biased + (1 - d) * z, in place, after an update of z; with `ok` (see
 * vqc_optim_step_if) biased keeps its value where ok is false, and the caller restores
 * ema_accum. */
static int ema_update(vqc_loop *L, const vqt_tensor *ok)
{
    if (!L->ema)
        return 0;
    vqt_scope_begin();
    vqt_tensor *d = vqt_detach(L->z);
    vqt_tensor *next = vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, L->ema, L->ema_decay),
                                  vqt_binary_s(VQT_MUL, d, 1.0 - L->ema_decay));
    if (next && ok)
        next = vqt_where(ok, next, L->ema);
    int rc = next ? vqt_copy_(L->ema, next) : -1;
    vqt_scope_end();
    L->ema_accum *= L->ema_decay;
    return rc ? vqc_torch_fail("moving average of z") : 0;
}

void vqc_loop_ema_state(const vqc_loop *L, const vqt_tensor **biased, double *accum)
{
    *biased = L->ema;
    *accum = L->ema_accum;
}

int vqc_loop_set_ema(vqc_loop *L, const vqt_tensor *biased, double accum)
{
    if (!L->ema)
        return vqc_error_set(VQC_ERR_USAGE, "the loop keeps no moving average");
    if (vqt_copy_(L->ema, biased) != 0)
        return vqc_torch_fail("restore the moving average");
    L->ema_accum = accum;
    return 0;
}

static int adopt_z(vqc_loop *L, vqt_tensor *z)
{
    if (!z)
        return VQC_ERR_RUNTIME;
    vqt_free(L->z);
    vqt_free(L->anchor);
    vqt_free(L->last_grad);
    vqc_optim_free(L->opt);
    L->last_grad = NULL;
    L->opt = NULL;
    L->z = vqt_persist(z);
    L->anchor = detached_copy(z);
    L->step = 0;
    if (!L->anchor || vqt_set_requires_grad(L->z, true) != 0 || ema_reset(L) != 0)
        return vqc_torch_fail("initial z");
    return vqc_optim_create(L->p.optimiser, L->p.lr, L->z, &L->opt);
}

int vqc_loop_set_z(vqc_loop *L, const vqt_tensor *z)
{
    int64_t s[8];
    if (vqt_shape(z, s) != 4 || s[0] != 1 || s[1] != L->embed_dim || s[2] != L->toks_h ||
        s[3] != L->toks_w)
        return vqc_error_set(VQC_ERR_USAGE, "z must be [1, %d, %d, %d]", L->embed_dim, L->toks_h,
                             L->toks_w);
    vqt_tensor *c = vqt_to(z, L->dev, VQC_DTYPE_F32);
    vqt_tensor *d = c ? vqt_detach(c) : NULL;
    vqt_tensor *own = d ? vqt_clone(d) : NULL;
    vqt_free(c);
    vqt_free(d);
    return own ? adopt_z(L, own) : vqc_torch_fail("set z");
}

/* Stepped mode without an init image pulls towards zero (the notebook's mse_withzeros). */
static int zero_anchor(vqc_loop *L, int rc)
{
    if (rc || L->p.mse_mode != VQC_MSE_STEPPED)
        return rc;
    vqt_tensor *zero = vqt_persist(vqt_binary_s(VQT_MUL, L->anchor, 0.0));
    if (!zero)
        return vqc_torch_fail("zero anchor");
    vqt_free(L->anchor);
    L->anchor = zero;
    return 0;
}

int vqc_loop_init_random(vqc_loop *L)
{
    const vqc_vqgan_info *vi = vqc_vqgan_get_info(L->vq);
    int64_t shape[3] = {1, L->toks_h, L->toks_w};
    vqt_tensor *idx = vqt_randint(0, vi->n_embed, 3, shape, L->dev);
    vqt_tensor *z = idx ? vqc_vqgan_embed(L->vq, idx) : NULL;
    vqt_free(idx);
    return zero_anchor(L, z ? adopt_z(L, z) : vqc_torch_fail("random z"));
}

/* z = quantise(encode(x * 2 - 1)) for an image tensor in [0, 1]. */
static int init_from_tensor(vqc_loop *L, vqt_tensor *x01)
{
    bool grad = vqt_set_grad_enabled(false);
    vqt_tensor *x = x01 ? vqt_affine(x01, 2.0, -1.0) : NULL;
    vqt_tensor *h = x ? vqc_vqgan_encode(L->vq, x) : NULL;
    vqt_tensor *z = h ? vqc_vqgan_quantize(L->vq, h, NULL) : NULL;
    vqt_set_grad_enabled(grad);
    vqt_free(x);
    vqt_free(h);
    if (!z)
        return x01 ? VQC_ERR_RUNTIME : vqc_torch_fail("init image");
    return adopt_z(L, z);
}

int vqc_loop_init_image(vqc_loop *L, const vqc_image *img)
{
    vqt_tensor *x = vqc_loop_fit_image(L, img);
    int rc = init_from_tensor(L, x);
    vqt_free(x);
    return rc;
}

/* A random image: uniform pixels in 1/255 steps, or a gradient between random colours
 * (horizontal in red, vertical in green and blue). */
static vqt_tensor *noise_image(const vqc_loop *L, vqc_init_noise kind)
{
    int64_t shape[4] = {1, 3, L->p.height, L->p.width};
    if (kind == VQC_NOISE_PIXELS)
        return vqt_binary_s(
            VQT_DIV, vqt_unary(VQT_FLOOR, vqt_binary_s(VQT_MUL, vqt_rand(4, shape, L->dev), 256.0)),
            255.0);
    int64_t cshape[4] = {1, 3, 1, 1};
    vqt_tensor *c0 = vqt_rand(4, cshape, L->dev), *c1 = vqt_rand(4, cshape, L->dev);
    int64_t hs[4] = {1, 1, 1, L->p.width}, vs[4] = {1, 1, L->p.height, 1};
    vqt_tensor *tx = vqt_binary_s(VQT_DIV, vqt_arange(L->p.width, VQC_DTYPE_F32, L->dev),
                                  L->p.width > 1 ? L->p.width - 1 : 1);
    vqt_tensor *ty = vqt_binary_s(VQT_DIV, vqt_arange(L->p.height, VQC_DTYPE_F32, L->dev),
                                  L->p.height > 1 ? L->p.height - 1 : 1);
    vqt_tensor *t = vqt_expand(vqt_reshape(tx, 4, hs), 4, shape);
    vqt_tensor *u = vqt_expand(vqt_reshape(ty, 4, vs), 4, shape);
    vqt_tensor *t3[3] = {vqt_narrow(t, 1, 0, 1), vqt_narrow(u, 1, 1, 1), vqt_narrow(u, 1, 2, 1)};
    vqt_tensor *w = vqt_cat(t3, 3, 1);
    return vqt_binary(VQT_ADD, c0, vqt_binary(VQT_MUL, w, vqt_binary(VQT_SUB, c1, c0)));
}

int vqc_loop_reencode(vqc_loop *L, const vqt_tensor *x01)
{
    int step = L->step;
    vqt_tensor *x = vqt_ref(x01);
    int rc = x ? init_from_tensor(L, x) : vqc_torch_fail("re-encode");
    vqt_free(x);
    L->step = step;
    return rc;
}

int vqc_loop_init_noise(vqc_loop *L, vqc_init_noise kind)
{
    vqt_scope_begin();
    vqt_tensor *img = vqt_keep(noise_image(L, kind));
    vqt_scope_end();
    if (!img)
        return vqc_torch_fail("init noise");
    int rc = init_from_tensor(L, img);
    vqt_free(img);
    return zero_anchor(L, rc);
}

/* ---- one step -------------------------------------------------------------------------- */

static vqt_tensor *synth(const vqc_loop *L, const vqt_tensor *z)
{
    vqt_tensor *zq = vqc_vqgan_nearest(L->vq, z, NULL);
    vqt_tensor *y = zq ? vqc_vqgan_decode(L->vq, zq) : NULL;
    return vqt_clamp_with_grad(vqt_affine(y, 0.5, 0.5), 0.0, 1.0);
}

vqt_tensor *vqc_loop_image(const vqc_loop *L)
{
    if (!L->z) {
        vqc_error_set(VQC_ERR_USAGE, "the loop has no z yet");
        return NULL;
    }
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *img = vqt_keep(synth(L, L->z));
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    if (!img)
        vqc_torch_fail("image");
    return img;
}

vqt_tensor *vqc_loop_output_image(const vqc_loop *L)
{
    if (!L->ema)
        return vqc_loop_image(L);
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *avg = vqt_binary_s(VQT_DIV, L->ema, 1.0 - L->ema_accum);
    vqt_tensor *img = vqt_keep(synth(L, avg));
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    if (!img)
        vqc_torch_fail("image of the moving average");
    return img;
}

/* The MSE term of step i (NULL-free: a zero tensor when there is none). */
static vqt_tensor *mse_term(vqc_loop *L)
{
    vqc_loop_params *p = &L->p;
    if (p->init_weight == 0)
        return vqt_full(0, NULL, 0.0, VQC_DTYPE_F32, L->dev);
    if (p->mse_mode == VQC_MSE_SEED) {
        /* (1 / tensor(2i + 1)) * w in float32, as the notebook computes it. */
        float c = (1.0f / (float)(2 * L->step + 1)) * (float)p->init_weight;
        vqt_tensor *zero = vqt_binary_s(VQT_MUL, L->anchor, 0.0);
        return vqt_binary_s(VQT_DIV, vqt_binary_s(VQT_MUL, vqt_mse_loss(L->z, zero), c), 2.0);
    }
    double w = p->mse_mode == VQC_MSE_STEPPED ? L->mse_weight : p->init_weight;
    return vqt_binary_s(VQT_DIV, vqt_binary_s(VQT_MUL, vqt_mse_loss(L->z, L->anchor), w), 2.0);
}

/* ---- the stepped mode's epochs (the MSE-regularised notebook) ---- */

/* Whether step L->step (0-based) ends an epoch: the notebook's i > 0, i % rate == 0,
 * i <= rate * epochs. */
static bool epoch_ends(const vqc_loop *L)
{
    const vqc_loop_params *p = &L->p;
    return p->mse_mode == VQC_MSE_STEPPED && L->step > 0 && L->step % p->mse_decay_every == 0 &&
           L->mse_rounds < p->mse_epochs;
}

/* The bias-corrected moving average of z (scope-owned). */
static vqt_tensor *ema_average(const vqc_loop *L)
{
    return vqt_binary_s(VQT_DIV, L->ema, 1.0 - L->ema_accum);
}

/* After the step's loss, before its update: the anchor becomes the nearest codebook entries of
 * the moving average, and the weight drops by init_weight / epochs (to 0 when less than one
 * such drop would be left), as the notebook (mse_quantize) does. */
static int reanchor(vqc_loop *L)
{
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *q = vqt_persist(vqc_vqgan_nearest(L->vq, ema_average(L), NULL));
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    if (!q)
        return vqc_torch_fail("re-anchor");
    vqt_free(L->anchor);
    L->anchor = q;
    double d = L->p.init_weight / L->p.mse_epochs, w = L->mse_weight;
    L->mse_weight = w - d > 0 && w - d >= d ? w - d : 0;
    return 0;
}

/* After the update: z restarts at the moving average, the average restarts at z, and the
 * optimiser starts afresh (the notebook makes a new EMATensor and a new Adam). */
static int new_epoch(vqc_loop *L)
{
    vqt_scope_begin();
    vqt_tensor *avg = ema_average(L);
    int rc = avg ? vqt_copy_(L->z, avg) : -1;
    vqt_scope_end();
    if (rc || ema_reset(L) != 0)
        return vqc_torch_fail("new epoch");
    L->mse_rounds++;
    vqc_optim_free(L->opt);
    L->opt = NULL;
    return vqc_optim_create(L->p.optimiser, L->p.lr, L->z, &L->opt);
}

/* Builds the total loss; terms[0..nprompts] get the individual terms (scope-owned). synth()
 * written out, with the profile's marks between the stages; the shaping losses see the first
 * CLIP model's cutouts. */
static vqt_tensor *total_loss(vqc_loop *L, vqt_tensor **terms, vqt_tensor **shares)
{
    vqt_tensor *zq = vqc_loop_quantise(L, L->z);
    vqc_loop_mark(L, PROF_QUANTISE);
    vqt_tensor *y = zq ? vqc_loop_decode(L, zq) : NULL;
    vqt_tensor *img = vqt_clamp_with_grad(vqt_affine(y, 0.5, 0.5), 0.0, 1.0);
    vqc_loop_mark(L, PROF_DECODE);
    vqt_tensor *fn[VQC_MAX_CLIPS], *cuts = NULL;
    if (!img || vqc_loop_encode_cutouts(L, img, fn, &cuts) != 0)
        return NULL;
    terms[0] = mse_term(L);
    if (vqc_shape_losses_any(&L->p.shape))
        terms[0] = vqt_binary(VQT_ADD, terms[0], vqc_shape_losses_total(&L->p.shape, img, cuts));
    vqt_tensor *sum = terms[0];
    for (int i = 0; i < L->nprompts; i++) {
        terms[i + 1] = vqc_loop_prompt_term(L, i, fn, L->nclips > 1 ? shares : NULL);
        sum = vqt_binary(VQT_ADD, sum, terms[i + 1]);
    }
    return sum;
}

/* The optimiser's step, the clamp to the codebook's range and the moving average. With `ok` (a
 * boolean scalar on the device, see vqc_optim_step_if) z and every state keep their values
 * where it is false; the host-side counters are the caller's to restore then. */
static int update_z(vqc_loop *L, const vqt_tensor *ok)
{
    vqt_free(L->last_grad);
    L->last_grad = vqt_persist(vqt_grad(L->z));
    vqt_grad_clear(L->z);
    if (!L->last_grad)
        return vqc_error_set(VQC_ERR_RUNTIME, "no gradient reached z");
    int rc = 0;
    if (L->p.lr_schedule != VQC_LR_CONSTANT)
        rc = vqc_optim_set_lr(L->opt, vqc_loop_lr_at(&L->p, L->step));
    rc = rc ? rc : vqc_optim_step_if(L->opt, L->last_grad, ok);
    if (rc)
        return rc;
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *c = vqt_clamp_t(L->z, L->z_min, L->z_max);
    if (c && ok)
        c = vqt_where(ok, c, L->z);
    rc = c ? vqt_copy_(L->z, c) : -1;
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    return rc ? vqc_torch_fail("clamp z") : ema_update(L, ok);
}

double vqc_loop_lr_at(const vqc_loop_params *p, int step)
{
    switch (p->lr_schedule) {
    case VQC_LR_STEP:
        return p->lr * pow(p->lr_step_factor, step / (p->lr_step_every > 0 ? p->lr_step_every : 1));
    case VQC_LR_COSINE: {
        /* A half cosine from lr at the first step to the floor at the last. */
        int last = p->iterations > 1 ? p->iterations - 1 : 1;
        double t = step < last ? (double)step / last : 1.0;
        return p->lr_floor + (p->lr - p->lr_floor) * 0.5 * (1.0 + cos(M_PI * t));
    }
    default: return p->lr;
    }
}

/* The loss terms as one float32 tensor [nprompts + 2] (scope-owned): the terms, then 1 when all
 * of them are finite, else 0. *ok gets that flag as a boolean scalar, computed on the device so
 * that the update can be queued behind it before the host has read anything. */
static vqt_tensor *stack_losses(const vqc_loop *L, vqt_tensor *const *terms, vqt_tensor **ok)
{
    int64_t one = 1;
    vqt_tensor *all = vqt_stack(terms, L->nprompts + 1, 0);
    all = vqt_to(all, vqt_device_of(L->z), VQC_DTYPE_F32);
    /* x - x is 0 for a finite x, NaN for NaN and the infinities */
    vqt_tensor *finite = vqt_binary_s(VQT_EQ, vqt_binary(VQT_SUB, all, all), 0.0);
    vqt_tensor *flag =
        vqt_reduce(VQT_AMIN, vqt_to(finite, vqt_device_of(L->z), VQC_DTYPE_F32), 0, NULL, false);
    *ok = vqt_binary_s(VQT_GT, flag, 0.5);
    vqt_tensor *parts[2] = {all, vqt_reshape(flag, 1, &one)};
    return *ok ? vqt_cat(parts, 2, 0) : NULL;
}

/* Reads stack_losses()'s tensor into losses[0..nprompts]; an error when its flag says a term
 * was not finite, and then *skipped is set (the update queued behind the flag left everything as
 * it was). */
static int read_losses(vqc_loop *L, const vqt_tensor *all, float *losses, bool *skipped)
{
    *skipped = false;
    int n = L->nprompts + 1;
    float *v = malloc((size_t)(n + 1) * sizeof *v);
    if (!v)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    int64_t got = vqt_to_host(all, v, VQC_DTYPE_F32, n + 1);
    float flag = got == n + 1 ? v[n] : 0.0f;
    if (got == n + 1)
        memcpy(losses, v, (size_t)n * sizeof *losses);
    free(v);
    if (got != n + 1)
        return vqc_torch_fail("losses");
    if (flag > 0.5f)
        return 0;
    *skipped = true;
    for (int i = 0; i < n; i++)
        if (!isfinite(losses[i]))
            return vqc_error_set(VQC_ERR_RUNTIME, "the loss became %s at step %d (%s)",
                                 isnan(losses[i]) ? "NaN" : "infinite", L->step + 1,
                                 L->step == 0 ? "before any update: the model weights hold NaN "
                                                "or infinite values"
                                              : "try a lower learning rate");
    return vqc_error_set(VQC_ERR_RUNTIME, "the loss was not finite at step %d", L->step + 1);
}

int vqc_loop_step(vqc_loop *L, float *losses)
{
    if (!L->z || !L->opt)
        return vqc_error_set(VQC_ERR_USAGE, "the loop has no initial z");
    vqt_tensor **terms = calloc((size_t)L->nprompts + 1, sizeof *terms);
    if (!terms)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    vqc_error_set(0, "%s", "");
    L->touched = false;
    if (L->prof)
        vqt_profile_begin(L->prof);
    vqt_scope_begin();
    vqt_tensor *shares[VQC_MAX_CLIPS] = {NULL};
    vqt_tensor *loss = total_loss(L, terms, shares);
    int rc = 0;
    if (!loss && vqc_error_get()[0])
        rc = vqc_error_wrap(VQC_ERR_RUNTIME, "step %d", L->step + 1);
    else if (!loss)
        rc = vqc_torch_fail("step %d", L->step + 1);
    vqc_loop_mark(L, PROF_LOSSES);
    /* Reading the losses waits for the device. The backward pass and the update are queued
     * first, so that the device runs on from one to the other while the host waits; the update
     * is applied on the device only when every loss term is finite (stack_losses's flag), so z
     * still changes only after a finite loss. An epoch's end (the stepped mode) re-anchors from
     * the moving average first: there the losses are read before the update. */
    if (!rc && vqt_backward(loss) != 0)
        rc = vqc_torch_fail("backward");
    vqc_loop_mark(L, PROF_DECODE_BWD);
    bool epoch_end = !rc && epoch_ends(L);
    vqt_tensor *ok = NULL, *all = !rc && losses ? stack_losses(L, terms, &ok) : NULL;
    if (!rc && losses && !all)
        rc = vqc_torch_fail("losses");
    bool queued = !rc && ok && !epoch_end;
    int64_t steps_before = vqc_optim_steps(L->opt);
    double accum_before = L->ema_accum;
    L->touched = queued;
    if (queued) {
        rc = update_z(L, ok);
        vqc_loop_mark(L, PROF_OPTIM);
    }
    bool skipped = false;
    if (!rc && losses)
        rc = read_losses(L, all, losses, &skipped);
    if (skipped && queued) { /* the device kept z and the states; the host's counters go back */
        vqc_optim_set_steps(L->opt, steps_before);
        L->ema_accum = accum_before;
    }
    if (!rc && losses)
        rc = vqc_loop_read_shares(L, shares);
    vqc_loop_mark(L, PROF_READ);
    vqt_scope_end();
    free(terms);
    if (!queued) {
        L->touched = L->touched || !rc;
        if (epoch_end && L->p.init_weight != 0)
            rc = rc ? rc : reanchor(L);
        rc = rc ? rc : update_z(L, NULL);
        if (!rc && epoch_end)
            rc = new_epoch(L);
        vqc_loop_mark(L, PROF_OPTIM);
    }
    if (L->prof && vqt_profile_end(L->prof, !rc && L->prof_steps++ >= PROFILE_WARMUP) != 0 && !rc)
        rc = vqc_torch_fail("profile");
    if (!rc)
        L->step++;
    return rc;
}

bool vqc_loop_step_untouched(const vqc_loop *L)
{
    return !L->touched;
}

void vqc_loop_prepare_retry(vqc_loop *L)
{
    vqt_grad_clear(L->z);
    vqc_loop_free_graphs(L);
}

/* Cutouts (see cutouts.h): the notebook's resample() with its Lanczos prefilter, the pooling and
 * random-square methods, the explicit-box test hook, then augmentation and noise. */
#include "gen/cutouts.h"

#include <math.h>
#include <stdlib.h>
#include <strings.h>

#include "util/error.h"
#include "util/torch_error.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* ---- parameters ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    vqc_cut_method method;
} method_names[] = {
    {"pooling", VQC_CUT_POOLING},        {"latest", VQC_CUT_POOLING},
    {"updatedpooling", VQC_CUT_POOLING}, {"original", VQC_CUT_ORIGINAL},
    {"updated", VQC_CUT_ORIGINAL},       {"nrupdated", VQC_CUT_ORIGINAL},
};

vqc_cutout_params vqc_cutout_default_params(void)
{
    vqc_cutout_params p = {
        .method = VQC_CUT_POOLING,
        .cut_size = 224,
        .cutn = 32,
        .cut_pow = 1.0,
        .cut_noise = 0.1,
        .augments = vqc_augment_list_default(),
        .aug_prob = 0.0,
        .boxes = NULL,
        .nboxes = 0,
    };
    return p;
}

int vqc_cut_method_parse(const char *name, vqc_cut_method *out)
{
    for (size_t i = 0; name && i < sizeof method_names / sizeof method_names[0]; i++)
        if (strcasecmp(name, method_names[i].name) == 0) {
            *out = method_names[i].method;
            return 0;
        }
    return vqc_error_set(VQC_ERR_USAGE,
                         "unknown cut method '%s'; valid: pooling (aliases latest, "
                         "updatedpooling), original (aliases updated, nrupdated)",
                         name ? name : "");
}

const char *vqc_cut_method_name(vqc_cut_method m)
{
    return m == VQC_CUT_POOLING ? "pooling" : m == VQC_CUT_ORIGINAL ? "original" : "?";
}

/* ---- resample -------------------------------------------------------------------------- */

/* The notebook's ramp(ratio, 2): out[i] = i * ratio accumulated in double and stored as
 * float32, mirrored to negative positions and trimmed: [-out[n-2] .. out[n-2]], 2n - 3 values,
 * as a CPU float32 tensor. */
static vqt_tensor *ramp(double ratio)
{
    int64_t n = (int64_t)ceil(2.0 / ratio + 1.0);
    if (n < 2 || n > (1 << 20))
        return NULL;
    int64_t len = 2 * n - 3;
    float *v = malloc((size_t)(n + len) * sizeof *v), *full = v + n;
    if (!v)
        return NULL;
    double cur = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = (float)cur;
        cur += ratio;
    }
    for (int64_t k = 0; k < n - 2; k++)
        full[k] = -v[n - 2 - k];
    for (int64_t i = 0; i < n - 1; i++)
        full[n - 2 + i] = v[i];
    vqt_tensor *t = vqt_from_data(full, VQC_DTYPE_F32, 1, &len, NULL, cpu, VQC_DTYPE_F32);
    free(v);
    return t;
}

/* sinc(x) = sin(pi x) / (pi x), 1 at 0, with the notebook's float32 tensor ops. */
static vqt_tensor *sinc(const vqt_tensor *x)
{
    vqt_tensor *pix = vqt_binary_s(VQT_MUL, x, M_PI);
    vqt_tensor *ratio = vqt_binary(VQT_DIV, vqt_unary(VQT_SIN, pix), pix);
    vqt_tensor *one = vqt_full(0, NULL, 1.0, VQC_DTYPE_F32, cpu);
    return vqt_where(vqt_binary_s(VQT_EQ, x, 0.0), one, ratio);
}

/* lanczos(ramp(ratio, 2), 2) computed on the CPU in float32 like the notebook, then moved. */
static vqt_tensor *lanczos_kernel(double ratio, vqt_device dev, vqc_dtype dt)
{
    vqt_tensor *x = ramp(ratio);
    vqt_tensor *zero = vqt_full(0, NULL, 0.0, VQC_DTYPE_F32, cpu);
    vqt_tensor *out = vqt_binary(VQT_MUL, sinc(x), sinc(vqt_binary_s(VQT_DIV, x, 2.0)));
    out = vqt_where(vqt_binary_s(VQT_LT, x, 2.0), out, zero);
    out = vqt_where(vqt_binary_s(VQT_GT, x, -2.0), out, zero);
    out = vqt_binary(VQT_DIV, out, vqt_reduce(VQT_SUM, out, 0, NULL, false));
    return vqt_to(out, dev, dt);
}

/* Lanczos prefilter of t [M, 1, H, W] along dim 2 (rows) or 3 (columns) for size `in` -> `out`:
 * reflect padding, then a [len, 1] or [1, len] convolution. */
static vqt_tensor *prefilter(const vqt_tensor *t, int64_t out, int64_t in, int dim)
{
    vqt_tensor *k = lanczos_kernel((double)out / (double)in, vqt_device_of(t), vqt_dtype(t));
    int64_t len = vqt_numel(k), pad = (len - 1) / 2;
    int64_t rows_pad[4] = {0, 0, pad, pad}, cols_pad[4] = {pad, pad, 0, 0};
    int64_t rows_k[4] = {1, 1, len, 1}, cols_k[4] = {1, 1, 1, len};
    vqt_tensor *padded = vqt_pad(t, 4, dim == 2 ? rows_pad : cols_pad, VQT_PAD_REFLECT, 0.0);
    vqt_tensor *w = vqt_reshape(k, 4, dim == 2 ? rows_k : cols_k);
    return vqt_conv2d(padded, w, NULL, 1, 1, 0, 0, 1);
}

/* resample() without scope or error text (handles land in the caller's scope). */
static vqt_tensor *resample(const vqt_tensor *x, int64_t oh, int64_t ow)
{
    int64_t s[8];
    if (vqt_shape(x, s) != 4)
        return NULL;
    int64_t flat[4] = {s[0] * s[1], 1, s[2], s[3]};
    vqt_tensor *t = vqt_reshape(x, 4, flat);
    if (oh < s[2])
        t = prefilter(t, oh, s[2], 2);
    if (ow < s[3])
        t = prefilter(t, ow, s[3], 3);
    return vqt_interpolate(vqt_reshape(t, 4, s), oh, ow, VQT_INTERP_BICUBIC, true);
}

vqt_tensor *vqc_resample(const vqt_tensor *x, int oh, int ow)
{
    if (!x || vqt_ndim(x) != 4 || oh < 1 || ow < 1) {
        vqc_error_set(VQC_ERR_USAGE, "resample: need a [N, C, H, W] input and a size >= 1");
        return NULL;
    }
    vqt_scope_begin();
    return vqc_torch_scope_end(resample(x, oh, ow), "resample");
}

/* ---- the methods ----------------------------------------------------------------------- */

/* pooling: cutn copies of (avg_pool + max_pool) / 2 of the whole image. */
static vqt_tensor *pooling_cutouts(const vqc_cutout_params *p, const vqt_tensor *img,
                                   vqt_tensor **parts)
{
    int64_t S = p->cut_size;
    vqt_tensor *avg = vqt_adaptive_avg_pool2d(img, S, S);
    vqt_tensor *pooled =
        vqt_binary_s(VQT_DIV, vqt_binary(VQT_ADD, avg, vqt_adaptive_max_pool2d(img, S, S)), 2.0);
    for (int i = 0; i < p->cutn; i++)
        parts[i] = pooled;
    return vqt_cat(parts, p->cutn, 0);
}

/* Crops img[:, :, y:y+size, x:x+size] and resamples it to S x S. */
static vqt_tensor *crop_resampled(const vqt_tensor *img, int64_t x, int64_t y, int64_t size,
                                  int64_t S)
{
    vqt_tensor *c = vqt_narrow(vqt_narrow(img, 2, y, size), 3, x, size);
    return resample(c, S, S);
}

/* original: random squares, drawn on the CPU generator in the notebook's order. */
static vqt_tensor *original_cutouts(const vqc_cutout_params *p, const vqt_tensor *img, int64_t h,
                                    int64_t w, vqt_tensor **parts)
{
    int64_t S = p->cut_size;
    int64_t max_size = h < w ? h : w, min_size = max_size < S ? max_size : S;
    for (int i = 0; i < p->cutn; i++) {
        vqt_tensor *r = vqt_binary_s(VQT_POW, vqt_rand(0, NULL, cpu), p->cut_pow);
        double sz = vqt_item(vqt_affine(r, (double)(max_size - min_size), (double)min_size));
        if (!(sz >= 1 && sz < (double)max_size + 1))
            return NULL;
        int64_t size = (int64_t)sz;
        double ox = vqt_item(vqt_randint(0, w - size + 1, 0, NULL, cpu));
        double oy = vqt_item(vqt_randint(0, h - size + 1, 0, NULL, cpu));
        if (isnan(ox) || isnan(oy))
            return NULL;
        parts[i] = crop_resampled(img, (int64_t)ox, (int64_t)oy, size, S);
    }
    return vqt_clamp_with_grad(vqt_cat(parts, p->cutn, 0), 0.0, 1.0);
}

/* The explicit boxes (already validated). */
static vqt_tensor *box_cutouts(const vqc_cutout_params *p, const vqt_tensor *img,
                               vqt_tensor **parts)
{
    for (int i = 0; i < p->nboxes; i++) {
        const int *b = p->boxes + 3 * i;
        parts[i] = crop_resampled(img, b[0], b[1], b[2], p->cut_size);
    }
    return vqt_clamp_with_grad(vqt_cat(parts, p->nboxes, 0), 0.0, 1.0);
}

/* Augmentation, then a factor U(0, cut_noise) per cutout times N(0, 1) noise. */
static vqt_tensor *augment_and_noise(const vqc_cutout_params *p, vqt_tensor *batch)
{
    if (batch && p->augments.n)
        batch = vqc_augment_apply(batch, &p->augments, p->aug_prob);
    if (!batch || !(p->cut_noise > 0))
        return batch;
    int64_t s[8], sf[4] = {vqt_size(batch, 0), 1, 1, 1};
    int nd = vqt_shape(batch, s);
    vqt_device dev = vqt_device_of(batch);
    vqt_tensor *facs = vqt_affine(vqt_rand(4, sf, dev), p->cut_noise, 0.0);
    return vqt_binary(VQT_ADD, batch, vqt_binary(VQT_MUL, facs, vqt_randn(nd, s, dev)));
}

/* ---- entry ----------------------------------------------------------------------------- */

static int check_boxes(const vqc_cutout_params *p, int64_t h, int64_t w)
{
    if (p->nboxes < 1)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: boxes given but nboxes = %d", p->nboxes);
    for (int i = 0; i < p->nboxes; i++) {
        const int *b = p->boxes + 3 * i;
        if (b[0] < 0 || b[1] < 0 || b[2] < 1 || b[0] + (int64_t)b[2] > w ||
            b[1] + (int64_t)b[2] > h)
            return vqc_error_set(VQC_ERR_USAGE,
                                 "cutouts: box %d [%d, %d, %d] is not inside the %lldx%lld image",
                                 i, b[0], b[1], b[2], (long long)w, (long long)h);
    }
    return 0;
}

/* Validates p and img; writes img's shape into s. */
static int check_params(const vqc_cutout_params *p, const vqt_tensor *img, int64_t *s)
{
    if (!p || !img)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: no parameters or no image");
    if (vqt_shape(img, s) != 4 || s[0] != 1 || s[2] < 1 || s[3] < 1)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: the image must be [1, C, H, W]");
    if (p->cut_size < 2 || p->cut_size > 16384)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: cut_size %d out of range", p->cut_size);
    if (p->boxes)
        return check_boxes(p, s[2], s[3]);
    if (p->cutn < 1 || p->cutn > 65536)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: cutn %d out of range", p->cutn);
    if (p->method != VQC_CUT_POOLING && p->method != VQC_CUT_ORIGINAL)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: unknown method %d", (int)p->method);
    if (!isfinite(p->cut_pow) || p->cut_pow <= 0 || !(p->cut_noise >= 0) ||
        !(p->aug_prob >= 0 && p->aug_prob <= 1))
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: cut_pow, cut_noise or aug_prob invalid");
    if (p->augments.n < 0 || p->augments.n > VQC_MAX_AUGMENTS)
        return vqc_error_set(VQC_ERR_USAGE, "cutouts: %d augmentations", p->augments.n);
    for (int i = 0; i < p->augments.n; i++) {
        if (p->augments.code[i] < 0 || p->augments.code[i] >= VQC_AUGMENT_COUNT)
            return vqc_error_set(VQC_ERR_USAGE, "cutouts: unknown augmentation %d",
                                 (int)p->augments.code[i]);
        if (p->augments.code[i] == VQC_AUGMENT_JI && s[1] != 3)
            return vqc_error_set(VQC_ERR_USAGE, "cutouts: colour jitter needs 3 channels");
    }
    return 0;
}

vqt_tensor *vqc_make_cutouts(const vqc_cutout_params *p, const vqt_tensor *img)
{
    int64_t s[8];
    if (check_params(p, img, s) != 0)
        return NULL;
    int n = p->boxes ? p->nboxes : p->cutn;
    vqt_tensor **parts = malloc((size_t)n * sizeof *parts);
    if (!parts) {
        vqc_error_set(VQC_ERR_NOMEM, "cutouts: out of memory");
        return NULL;
    }
    vqt_scope_begin();
    vqt_tensor *out;
    if (p->boxes)
        out = box_cutouts(p, img, parts);
    else if (p->method == VQC_CUT_POOLING)
        out = augment_and_noise(p, pooling_cutouts(p, img, parts));
    else
        out = augment_and_noise(p, original_cutouts(p, img, s[2], s[3], parts));
    free(parts);
    return vqc_torch_scope_end(out, "cutouts");
}

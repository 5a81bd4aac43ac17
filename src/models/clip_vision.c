/* CLIP: the image encoders (VisionTransformer, ModifiedResNet) and image preprocessing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/attention.h"
#include "models/clip_internal.h"
#include "util/error.h"
#include "util/torch_error.h"

/* ---- VisionTransformer ------------------------------------------------------------------- */

/* Patches -> tokens with the class token first -> + positions -> ln_pre -> blocks -> ln_post
 * on the class token -> @ proj. Runs inside the caller's scope. */
vqt_tensor *clip_vit_forward(const vqc_clip *m, const vqt_tensor *x)
{
    int p = m->info.vision_patch_size;
    int64_t n = vqt_size(x, 0), w = m->info.vision_width;
    vqt_tensor *t = vqt_conv2d(x, m->patch_w, NULL, p, p, 0, 0, 1); /* [N, W, g, g] */
    t = vqt_permute(vqt_flatten(t, 2, 3), 3, (int64_t[]){0, 2, 1}); /* [N, g*g, W] */
    vqt_tensor *cls =
        vqt_expand(vqt_reshape(m->class_emb, 3, (int64_t[]){1, 1, w}), 3, (int64_t[]){n, 1, w});
    vqt_tensor *parts[2] = {cls, t};
    t = vqt_binary(VQT_ADD, vqt_cat(parts, 2, 1), m->vpos_emb);
    t = clip_layer_norm(t, m->ln_pre_w, m->ln_pre_b);
    t = clip_transformer_forward(&m->vis, t, NULL, m->fused_attention);
    t = clip_layer_norm(vqt_select(t, 1, 0), m->ln_post_w, m->ln_post_b);
    return vqt_matmul(t, m->vproj);
}

/* ---- ModifiedResNet ---------------------------------------------------------------------- */

static vqt_tensor *bn(const vqt_tensor *x, const clip_bn *b, bool relu)
{
    vqt_tensor *y = vqt_batch_norm(x, b->w, b->b, b->mean, b->var, 1e-5);
    return relu ? vqt_unary(VQT_RELU, y) : y;
}

/* conv1/bn1/relu (stride 2), conv2/bn2/relu, conv3/bn3/relu, avgpool 2. */
static vqt_tensor *rn_stem(const vqc_clip *m, const vqt_tensor *x)
{
    const vqt_tensor *t = x;
    for (int i = 0; i < 3; i++) {
        int s = i == 0 ? 2 : 1;
        t = bn(vqt_conv2d(t, m->stem_conv[i], NULL, s, s, 1, 1, 1), &m->stem_bn[i], true);
    }
    return vqt_avg_pool2d(t, 2, 2);
}

static vqt_tensor *bottleneck_forward(const clip_bottleneck *b, const vqt_tensor *x)
{
    vqt_tensor *o = bn(vqt_conv2d(x, b->conv1, NULL, 1, 1, 0, 0, 1), &b->bn1, true);
    o = bn(vqt_conv2d(o, b->conv2, NULL, 1, 1, 1, 1, 1), &b->bn2, true);
    if (b->stride > 1)
        o = vqt_avg_pool2d(o, b->stride, b->stride);
    o = bn(vqt_conv2d(o, b->conv3, NULL, 1, 1, 0, 0, 1), &b->bn3, false);
    const vqt_tensor *id = x;
    if (b->down_conv) {
        if (b->stride > 1)
            id = vqt_avg_pool2d(id, b->stride, b->stride);
        id = bn(vqt_conv2d(id, b->down_conv, NULL, 1, 1, 0, 0, 1), &b->down_bn, false);
    }
    return vqt_unary(VQT_RELU, vqt_binary(VQT_ADD, o, id));
}

/* AttentionPool2d: the mean token (plus positions) attends over all tokens; c_proj. */
static vqt_tensor *attnpool_forward(const vqc_clip *m, const vqt_tensor *x)
{
    vqt_tensor *t = vqt_permute(vqt_flatten(x, 2, 3), 3, (int64_t[]){0, 2, 1}); /* [N,HW,C] */
    vqt_tensor *mean = vqt_reduce(VQT_MEAN, t, 1, (int64_t[]){1}, true);
    vqt_tensor *parts[2] = {mean, t};
    t = vqt_binary(VQT_ADD, vqt_cat(parts, 2, 1), m->ap_pos);
    vqt_tensor *q = vqt_linear(vqt_narrow(t, 1, 0, 1), m->ap_q_w, m->ap_q_b);
    vqt_tensor *k = vqt_linear(t, m->ap_k_w, m->ap_k_b);
    vqt_tensor *v = vqt_linear(t, m->ap_v_w, m->ap_v_b);
    vqt_tensor *o =
        vqc_attention(q, k, v, m->info.vision_heads, NULL, m->fused_attention); /* [N, 1, C] */
    return vqt_select(vqt_linear(o, m->ap_c_w, m->ap_c_b), 1, 0);
}

/* Stem, the four layers of bottlenecks, attention pooling. Runs inside the caller's scope;
 * each block's intermediates are freed as it finishes. */
vqt_tensor *clip_rn_forward(const vqc_clip *m, const vqt_tensor *x)
{
    vqt_tensor *t = rn_stem(m, x);
    for (int i = 0; i < m->n_bottlenecks && t; i++) {
        vqt_scope_begin();
        vqt_tensor *next = vqt_keep(bottleneck_forward(&m->bottlenecks[i], t));
        vqt_scope_end();
        vqt_free(t); /* autograd keeps what backward needs */
        t = next;
    }
    return attnpool_forward(m, t);
}

vqt_tensor *vqc_clip_encode_image(const vqc_clip *m, const vqt_tensor *image)
{
    int64_t r = m->info.image_resolution;
    if (!image || vqt_ndim(image) != 4 || vqt_size(image, 1) != 3 || vqt_size(image, 2) != r ||
        vqt_size(image, 3) != r) {
        vqc_error_set(VQC_ERR_USAGE, "encode_image: expected an [N, 3, %lld, %lld] tensor",
                      (long long)r, (long long)r);
        return NULL;
    }
    vqt_scope_begin();
    vqt_tensor *x = vqt_to(image, m->dev, m->cdt);
    vqt_tensor *f = m->info.is_vit ? clip_vit_forward(m, x) : clip_rn_forward(m, x);
    return vqc_torch_scope_end(vqt_to(f, m->dev, VQC_DTYPE_F32), "encode_image");
}

/* ---- preprocessing ------------------------------------------------------------------------- */

/* Keys' cubic convolution kernel with a = -0.5 (PIL's BICUBIC). */
static double cubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Filter taps for resampling `in` samples to `out`: for output i, ntaps weights starting at
 * input lo[i] (a fixed stride of `ksize` in w). When shrinking, the kernel is stretched by the
 * scale factor, which low-pass filters (antialiases) as PIL does. */
typedef struct taps {
    int ksize;
    int *lo, *n;
    float *w;
} taps;

static void taps_free(taps *t)
{
    free(t->lo);
    free(t->n);
    free(t->w);
}

static int taps_make(int in, int out, taps *t)
{
    double scale = (double)in / out, fs = scale > 1.0 ? scale : 1.0, support = 2.0 * fs;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->lo = malloc((size_t)out * sizeof *t->lo);
    t->n = malloc((size_t)out * sizeof *t->n);
    t->w = calloc((size_t)out * (size_t)t->ksize, sizeof *t->w);
    if (!t->lo || !t->n || !t->w) {
        taps_free(t);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory resizing an image");
    }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale, sum = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        float *w = t->w + (size_t)i * (size_t)t->ksize;
        for (int k = 0; k < hi - lo && k < t->ksize; k++)
            sum += w[k] = (float)cubic((lo + k - center + 0.5) / fs);
        for (int k = 0; sum != 0.0 && k < hi - lo && k < t->ksize; k++)
            w[k] = (float)(w[k] / sum);
        t->lo[i] = lo;
        t->n[i] = hi - lo < t->ksize ? hi - lo : t->ksize;
    }
    return 0;
}

/* Resamples `lines` lines of interleaved RGB along one axis: element j of line l, channel c, is
 * at src[l * ls + j * es + c] (dst likewise with dls, des). Results are clamped to [0, 1] as
 * PIL clamps to the 8-bit range after each pass. */
static void resample_axis(const float *src, size_t ls, size_t es, float *dst, size_t dls,
                          size_t des, int lines, int out, const taps *t)
{
    for (int l = 0; l < lines; l++) {
        for (int i = 0; i < out; i++) {
            const float *w = t->w + (size_t)i * (size_t)t->ksize;
            for (int c = 0; c < 3; c++) {
                double acc = 0.0;
                for (int k = 0; k < t->n[i]; k++)
                    acc += w[k] * src[(size_t)l * ls + (size_t)(t->lo[i] + k) * es + (size_t)c];
                acc = acc < 0.0 ? 0.0 : acc > 1.0 ? 1.0 : acc;
                dst[(size_t)l * dls + (size_t)i * des + (size_t)c] = (float)acc;
            }
        }
    }
}

/* One pass along x (horizontal) or y, from in (iw x ih) to a new buffer of ow x oh. */
static float *resize_pass(const float *in, int iw, int ih, int ow, int oh, bool horizontal)
{
    taps t;
    if (taps_make(horizontal ? iw : ih, horizontal ? ow : oh, &t))
        return NULL;
    float *out = malloc((size_t)ow * (size_t)oh * 3 * sizeof *out);
    if (!out)
        vqc_error_set(VQC_ERR_NOMEM, "out of memory resizing an image");
    else if (horizontal)
        resample_axis(in, (size_t)iw * 3, 3, out, (size_t)ow * 3, 3, ih, ow, &t);
    else
        resample_axis(in, 3, (size_t)iw * 3, out, 3, (size_t)ow * 3, iw, oh, &t);
    taps_free(&t);
    return out;
}

int vqc_clip_resize_bicubic(const vqc_image *in, int w, int h, vqc_image *out)
{
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0 || w > VQC_IMAGE_MAX_SIDE || h > VQC_IMAGE_MAX_SIDE || in->w <= 0 ||
        in->h <= 0)
        return vqc_error_set(VQC_ERR_USAGE, "cannot resize %dx%d to %dx%d", in->w, in->h, w, h);
    float *mid = in->rgb;
    if (w != in->w && !(mid = resize_pass(in->rgb, in->w, in->h, w, in->h, true)))
        return VQC_ERR_NOMEM;
    float *fin = mid;
    if (h != in->h)
        fin = resize_pass(mid, w, in->h, w, h, false);
    else if (mid == in->rgb && (fin = malloc((size_t)w * (size_t)h * 3 * sizeof *fin)))
        memcpy(fin, in->rgb, (size_t)w * (size_t)h * 3 * sizeof *fin);
    if (mid != in->rgb && mid != fin)
        free(mid);
    if (!fin)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory resizing an image");
    out->w = w;
    out->h = h;
    out->rgb = fin;
    return 0;
}

/* Centre crop r x r of img (offsets rounded half to even, as Python's round) as CHW floats. */
static float *crop_chw(const vqc_image *img, int r)
{
    int top = (int)lrint((img->h - r) / 2.0), left = (int)lrint((img->w - r) / 2.0);
    float *chw = malloc((size_t)r * (size_t)r * 3 * sizeof *chw);
    if (!chw)
        return NULL;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < r; y++)
            for (int x = 0; x < r; x++)
                chw[((size_t)c * r + y) * r + x] =
                    img->rgb[((size_t)(y + top) * img->w + (x + left)) * 3 + c];
    return chw;
}

int vqc_clip_preprocess(const vqc_clip *m, const vqc_image *img, vqt_tensor **out)
{
    *out = NULL;
    int r = m->info.image_resolution, w = img->w, h = img->h;
    if (w <= 0 || h <= 0 || !img->rgb)
        return vqc_error_set(VQC_ERR_USAGE, "preprocess: empty image");
    int nw = w <= h ? r : (int)((int64_t)r * w / h), nh = w <= h ? (int)((int64_t)r * h / w) : r;
    vqc_image scaled = *img;
    if ((w <= h ? w : h) != r) {
        int rc = vqc_clip_resize_bicubic(img, nw, nh, &scaled);
        if (rc)
            return rc;
    }
    float *chw = scaled.w >= r && scaled.h >= r ? crop_chw(&scaled, r) : NULL;
    if (scaled.rgb != img->rgb)
        vqc_image_free(&scaled);
    if (!chw)
        return vqc_error_set(VQC_ERR_NOMEM, "preprocess: cannot crop a %dx%d image", w, h);
    const int64_t shape[4] = {1, 3, r, r};
    vqt_tensor *x01 = vqt_from_data(chw, VQC_DTYPE_F32, 4, shape, NULL, m->dev, VQC_DTYPE_F32);
    free(chw);
    if (!x01)
        return vqc_torch_fail("preprocess");
    *out = vqc_clip_normalize(m, x01);
    vqt_free(x01);
    return *out ? 0 : VQC_ERR_RUNTIME;
}

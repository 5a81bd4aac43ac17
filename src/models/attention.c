/* Scaled dot-product attention, composed or fused, and the check that the fused operator works
 * on the device at hand (see attention.h). */
#include "models/attention.h"

#include <math.h>
#include <stdio.h>

/* [N, L, D] -> [N, heads, L, D / heads] */
static vqt_tensor *split_heads(const vqt_tensor *t, int heads)
{
    int64_t n = vqt_size(t, 0), l = vqt_size(t, 1), d = vqt_size(t, 2);
    vqt_tensor *r = vqt_reshape(t, 4, (int64_t[]){n, l, heads, d / heads});
    vqt_tensor *p = vqt_permute(r, 4, (int64_t[]){0, 2, 1, 3});
    vqt_free(r);
    return p;
}

vqt_tensor *vqc_attention(const vqt_tensor *q, const vqt_tensor *k, const vqt_tensor *v, int heads,
                          const vqt_tensor *mask, bool fused)
{
    if (!q || !k || !v)
        return NULL;
    int64_t n = vqt_size(q, 0), lq = vqt_size(q, 1), d = vqt_size(q, 2);
    vqt_scope_begin();
    vqt_tensor *o; /* [N, H, Lq, hd] */
    if (fused) {
        o = vqt_sdpa(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), mask);
    } else { /* the reference's order of operations: q scaled first, then the scores */
        vqt_tensor *qh =
            vqt_binary_s(VQT_MUL, split_heads(q, heads), 1.0 / sqrt((double)(d / heads)));
        vqt_tensor *kt = vqt_transpose(split_heads(k, heads), 2, 3);
        vqt_tensor *s = vqt_matmul(qh, kt); /* [N, H, Lq, Lk] */
        if (mask)
            s = vqt_binary(VQT_ADD, s, mask);
        o = vqt_matmul(vqt_softmax(s, -1), split_heads(v, heads));
    }
    vqt_tensor *out =
        vqt_reshape(vqt_permute(o, 4, (int64_t[]){0, 2, 1, 3}), 3, (int64_t[]){n, lq, d});
    vqt_keep(out);
    vqt_scope_end();
    return out;
}

/* ---- the fused attention's check ------------------------------------------------------------ */

/* Fixed, varied values [1, l, width] in dt on dev (sines of the index: no random numbers are
 * drawn, so the run's generator is left as it was), a leaf that wants a gradient with grad. */
static vqt_tensor *probe_values(int64_t l, int64_t width, double freq, vqt_device dev, vqc_dtype dt,
                                bool grad)
{
    vqt_tensor *a = vqt_arange(l * width, VQC_DTYPE_F32, dev);
    vqt_tensor *x = vqt_to(vqt_unary(VQT_SIN, vqt_binary_s(VQT_MUL, a, freq)), dev, dt);
    x = vqt_reshape(x, 3, (int64_t[]){1, l, width});
    if (x && grad && vqt_set_requires_grad(x, true) != 0)
        return NULL;
    return x;
}

/* The attention's output, then the gradients of q, k and v for a fixed weighting of it, in
 * out[0..3] (scope-owned). False when an operator failed. */
static bool probe_pass(vqt_tensor *const qkv[3], int heads, const vqt_tensor *mask, bool fused,
                       const vqt_tensor *weighting, vqt_tensor *out[4])
{
    for (int i = 0; i < 3; i++)
        vqt_grad_clear(qkv[i]);
    out[0] = vqc_attention(qkv[0], qkv[1], qkv[2], heads, mask, fused);
    vqt_tensor *loss = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, out[0], weighting), 0, NULL, false);
    if (!loss || vqt_backward(loss) != 0)
        return false;
    for (int i = 0; i < 3; i++)
        if (!(out[i + 1] = vqt_grad(qkv[i])))
            return false;
    return true;
}

/* max |a - b| / (1 + max |b|), in float32 on the host. */
static double probe_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_tensor *a32 = vqt_to(a, vqt_device_of(b), VQC_DTYPE_F32);
    vqt_tensor *b32 = vqt_to(b, vqt_device_of(b), VQC_DTYPE_F32);
    vqt_tensor *d = vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, a32, b32));
    double top = vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, b32), 0, NULL, false));
    return vqt_item(vqt_reduce(VQT_AMAX, d, 0, NULL, false)) / (1.0 + top);
}

bool vqc_attention_check(vqt_device dev, vqc_dtype dt, int heads, int64_t width, int64_t lq,
                         int64_t lk, const vqt_tensor *mask, char *why, size_t whylen)
{
    bool grad = vqt_set_grad_enabled(true), ok = false;
    vqt_scope_begin();
    vqt_tensor *qkv[3] = {probe_values(lq, width, 0.37, dev, dt, true),
                          probe_values(lk, width, 0.23, dev, dt, true),
                          probe_values(lk, width, 0.11, dev, dt, true)};
    vqt_tensor *weighting = probe_values(lq, width, 0.05, dev, dt, false);
    vqt_tensor *fused[4], *plain[4];
    static const char *const what[4] = {"output", "q's gradient", "k's gradient", "v's gradient"};
    /* float16 and bfloat16 round each kernel's sums their own way; wrong is far beyond that */
    double tol = dt == VQC_DTYPE_F32 || dt == VQC_DTYPE_F64 ? 1e-4 : 2e-2;
    if (!qkv[0] || !qkv[1] || !qkv[2] || !weighting)
        snprintf(why, whylen, "could not be checked: %s", vqt_last_error());
    else if (!probe_pass(qkv, heads, mask, true, weighting, fused))
        snprintf(why, whylen, "failed: %s", vqt_last_error());
    else if (!probe_pass(qkv, heads, mask, false, weighting, plain))
        snprintf(why, whylen, "could not be checked (the reference failed): %s", vqt_last_error());
    else {
        ok = true;
        for (int i = 0; i < 4 && ok; i++) {
            double d = probe_diff(fused[i], plain[i]);
            if (!(d <= tol)) {
                snprintf(why, whylen, "differs from the reference in its %s by %.3g (bound %g)",
                         what[i], d, tol);
                ok = false;
            }
        }
    }
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    return ok;
}

/* The memory-lean operators of the shim (convolution without a weight gradient, GroupNorm +
 * SiLU, QuickGELU) give the values and input gradients of the plain libtorch operators bit for
 * bit (GroupNorm's CUDA implementations within rounding); zero-copy views release their owner
 * exactly once; weight views of a file read the same numbers as copies, and giving their pages back
 * keeps them valid. */
#include <stdint.h>

#include "models/vqgan.h"
#include "models/weights.h"
#include "testhelp.h"
#include "torch/shim.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* Largest |a - b| over all elements (0 means bit-identical for finite values). */
static double max_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_scope_begin();
    vqt_tensor *d =
        vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, a, b)), 0, NULL, false);
    double v = d ? vqt_item(d) : INFINITY;
    vqt_scope_end();
    return v;
}

/* Fails unless a and b are equal element for element. */
#define ASSERT_SAME(a, b)                                                   \
    do {                                                                    \
        double d_ = max_diff(a, b);                                         \
        if (!(d_ == 0.0))                                                   \
            TEST_FAIL("%s and %s differ: max |difference| %g", #a, #b, d_); \
    } while (0)

/* A leaf with gradient recording, from the default generator. */
static vqt_tensor *leaf(int ndim, const int64_t *shape)
{
    vqt_tensor *x = vqt_randn(ndim, shape, cpu);
    ASSERT(x && vqt_set_requires_grad(x, true) == 0);
    return x;
}

/* The gradient of sum(out * probe) w.r.t. x, taken and cleared. */
static vqt_tensor *grad_of(vqt_tensor *x, const vqt_tensor *out, const vqt_tensor *probe)
{
    vqt_scope_begin();
    ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, out, probe), 0, NULL, false)));
    vqt_scope_end();
    vqt_tensor *g = vqt_grad(x);
    ASSERT(g);
    vqt_grad_clear(x);
    return g;
}

/* Lean convolution (weight without gradient) against libtorch's (weight with one). */
static void test_conv(int stride, int pad, int groups, bool bias)
{
    vqt_manual_seed(1);
    int64_t xs[4] = {2, 8, 11, 9}, ws[4] = {6, 8 / groups, 3, 3}, bs = 6;
    vqt_tensor *x = leaf(4, xs), *w = vqt_randn(4, ws, cpu);
    vqt_tensor *b = bias ? vqt_randn(1, &bs, cpu) : NULL;
    vqt_tensor *lean = vqt_conv2d(x, w, b, stride, stride, pad, pad, groups);
    vqt_tensor *probe =
        vqt_randn(vqt_ndim(lean), (int64_t[]){2, 6, vqt_size(lean, 2), vqt_size(lean, 3)}, cpu);
    vqt_tensor *g_lean = grad_of(x, lean, probe);
    vqt_tensor *w2 = vqt_clone(w);
    ASSERT_OK(vqt_set_requires_grad(w2, true)); /* libtorch's own convolution */
    vqt_tensor *plain = vqt_conv2d(x, w2, b, stride, stride, pad, pad, groups);
    vqt_tensor *g_plain = grad_of(x, plain, probe);
    ASSERT_SAME(lean, plain);
    ASSERT_SAME(g_lean, g_plain);
    vqt_tensor *all[] = {x, w, b, lean, probe, g_lean, w2, plain, g_plain};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vqt_free(all[i]);
}

static void test_group_norm_silu(bool affine)
{
    vqt_manual_seed(2);
    int64_t xs[4] = {2, 64, 5, 7}, cs = 64;
    vqt_tensor *x = leaf(4, xs);
    vqt_tensor *w = affine ? vqt_randn(1, &cs, cpu) : NULL,
               *b = affine ? vqt_randn(1, &cs, cpu) : NULL;
    vqt_tensor *probe = vqt_randn(4, xs, cpu);
    vqt_tensor *lean = vqt_group_norm_silu(x, 32, w, b, 1e-6);
    vqt_tensor *g_lean = grad_of(x, lean, probe);
    vqt_tensor *normed = vqt_group_norm(x, 32, w, b, 1e-6);
    vqt_tensor *plain = vqt_unary(VQT_SILU, normed);
    vqt_tensor *g_plain = grad_of(x, plain, probe);
    ASSERT_SAME(lean, plain);
    ASSERT_SAME(g_lean, g_plain);
    /* Without gradient recording the same values. */
    bool prev = vqt_set_grad_enabled(false);
    vqt_tensor *nograd = vqt_group_norm_silu(x, 32, w, b, 1e-6);
    vqt_set_grad_enabled(prev);
    ASSERT_SAME(nograd, plain);
    vqt_tensor *all[] = {x, w, b, probe, lean, g_lean, normed, plain, g_plain, nograd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vqt_free(all[i]);
}

/* Largest |a - b| relative to max |b|. */
static double rel_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_scope_begin();
    vqt_tensor *m = vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, b), 0, NULL, false);
    double scale = m ? vqt_item(m) : INFINITY;
    vqt_scope_end();
    return max_diff(a, b) / scale;
}

/* The CUDA implementations of GroupNorm + SiLU (vqt_set_group_norm_impl), run here on the CPU:
 * within float32 rounding of libtorch's, values and gradients, also in bfloat16 (within its
 * rounding), with and without the affine parameters, for NCHW and channels-last inputs; each
 * also against a float64 reference (float32 rounding; in bfloat16 a few units of the last
 * place, as libtorch's own bfloat16 kernels); the same values without gradient recording.
 * COMPOSED keeps a channels-last input's layout in its output and gradient. */
static void test_group_norm_silu_impls(void)
{
    static const vqt_gn_impl impls[3] = {VQT_GN_SAVED, VQT_GN_REDUCE, VQT_GN_COMPOSED};
    static const char *names[3] = {"saved", "reduce", "composed"};
    for (int i = 0; i < 3; i++)
        for (int affine = 0; affine < 2; affine++)
            for (int bf16 = 0; bf16 < 2; bf16++)
                for (int cl = 0; cl < 2; cl++) {
                    vqt_manual_seed(5);
                    int64_t xs[4] = {2, 64, 6, 5}, cs = 64;
                    vqc_dtype dt = bf16 ? VQC_DTYPE_BF16 : VQC_DTYPE_F32;
                    /* Every intermediate is a handle of its own, freed at the end: the suite
                     * runs under LeakSanitizer in CI. */
                    vqt_tensor *x0 = vqt_randn(4, xs, cpu);
                    vqt_tensor *x0s = vqt_affine(x0, 2.0, 0.5);
                    vqt_tensor *xd = vqt_to(x0s, cpu, dt);
                    vqt_tensor *x = cl ? vqt_channels_last(xd) : vqt_clone(xd);
                    ASSERT(vqt_is_channels_last(x) == (cl != 0));
                    ASSERT_OK(vqt_set_requires_grad(x, true));
                    vqt_tensor *w0 = affine ? vqt_randn(1, &cs, cpu) : NULL;
                    vqt_tensor *b0 = affine ? vqt_randn(1, &cs, cpu) : NULL;
                    vqt_tensor *w = affine ? vqt_to(w0, cpu, dt) : NULL;
                    vqt_tensor *b = affine ? vqt_to(b0, cpu, dt) : NULL;
                    vqt_tensor *p0 = vqt_randn(4, xs, cpu);
                    vqt_tensor *probe = vqt_to(p0, cpu, dt);
                    vqt_tensor *normed = vqt_group_norm(x, 32, w, b, 1e-6);
                    vqt_tensor *plain = vqt_unary(VQT_SILU, normed);
                    vqt_tensor *g_plain = grad_of(x, plain, probe);
                    vqt_set_group_norm_impl(impls[i]);
                    vqt_tensor *lean = vqt_group_norm_silu(x, 32, w, b, 1e-6);
                    vqt_tensor *g_lean = grad_of(x, lean, probe);
                    bool prev = vqt_set_grad_enabled(false); /* the same values without */
                    vqt_tensor *nograd = vqt_group_norm_silu(x, 32, w, b, 1e-6);
                    vqt_set_grad_enabled(prev);
                    vqt_set_group_norm_impl(VQT_GN_AUTO);
                    ASSERT_SAME(nograd, lean);
                    ASSERT_EQ(vqt_dtype(lean), dt);
                    double tol = bf16 ? 0.1 : 1e-5; /* bfloat16: 8 bits of mantissa, values ~3 */
                    double dv = max_diff(lean, plain), dg = max_diff(g_lean, g_plain);
                    fprintf(stderr, "  group norm %s, %s, %s%s: max |diff| %.3g, gradient %.3g\n",
                            names[i], affine ? "affine" : "plain", bf16 ? "bf16" : "f32",
                            cl ? ", channels last" : "", dv, dg);
                    ASSERT(dv <= tol);
                    ASSERT(dg <= tol);
                    if (impls[i] == VQT_GN_COMPOSED) {
                        ASSERT(vqt_is_channels_last(lean) == (cl != 0));
                        ASSERT(vqt_is_channels_last(g_lean) == (cl != 0));
                    }
                    /* The same inputs in float64 through libtorch's kernels. */
                    vqt_tensor *x64 = vqt_to(xd, cpu, VQC_DTYPE_F64);
                    ASSERT_OK(vqt_set_requires_grad(x64, true));
                    vqt_tensor *w64 = affine ? vqt_to(w, cpu, VQC_DTYPE_F64) : NULL;
                    vqt_tensor *b64 = affine ? vqt_to(b, cpu, VQC_DTYPE_F64) : NULL;
                    vqt_tensor *p64 = vqt_to(probe, cpu, VQC_DTYPE_F64);
                    vqt_tensor *ref_n = vqt_group_norm(x64, 32, w64, b64, 1e-6);
                    vqt_tensor *ref = vqt_unary(VQT_SILU, ref_n);
                    vqt_tensor *g_ref = grad_of(x64, ref, p64);
                    double rv = rel_diff(lean, ref), rg = rel_diff(g_lean, g_ref);
                    fprintf(stderr, "    against float64: relative %.3g, gradient %.3g\n", rv, rg);
                    /* bfloat16 rounds each result to 2^-9 relative: a few of those */
                    double rtol = bf16 ? 1.5e-2 : 2e-6;
                    ASSERT(rv <= rtol);
                    ASSERT(rg <= rtol);
                    vqt_tensor *all[] = {x0,     x0s,   xd,     x,     w0,      b0,   w,      b,
                                         p0,     probe, normed, plain, g_plain, lean, g_lean, x64,
                                         nograd, w64,   b64,    p64,   ref_n,   ref,  g_ref};
                    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
                        vqt_free(all[k]);
                }
}

static void test_quick_gelu(void)
{
    vqt_manual_seed(3);
    int64_t xs[3] = {3, 50, 96};
    vqt_tensor *x = leaf(3, xs), *probe = vqt_randn(3, xs, cpu);
    vqt_tensor *lean = vqt_unary(VQT_QUICK_GELU, x);
    vqt_tensor *g_lean = grad_of(x, lean, probe);
    vqt_scope_begin();
    vqt_tensor *plain =
        vqt_keep(vqt_binary(VQT_MUL, x, vqt_unary(VQT_SIGMOID, vqt_binary_s(VQT_MUL, x, 1.702))));
    vqt_scope_end();
    vqt_tensor *g_plain = grad_of(x, plain, probe);
    ASSERT_SAME(lean, plain);
    ASSERT_SAME(g_lean, g_plain);
    vqt_tensor *all[] = {x, probe, lean, g_lean, plain, g_plain};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vqt_free(all[i]);
}

/* ---- zero-copy -------------------------------------------------------------------------- */

static int released;
static void count_release(void *ctx)
{
    ASSERT(ctx == &released);
    released++;
}

static void test_from_blob(void)
{
    static const float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3}, strides[2] = {1, 2};
    released = 0;
    vqt_tensor *t = vqt_from_blob(data, VQC_DTYPE_F32, 2, shape, strides, count_release, &released);
    ASSERT(t);
    vqt_tensor *view = vqt_transpose(t, 0, 1); /* shares the memory */
    vqt_free(t);
    ASSERT_EQ(released, 0);
    float out[6];
    ASSERT_EQ(vqt_to_host(view, out, VQC_DTYPE_F32, 6), 6);
    ASSERT_NEAR(out[1], 2, 0); /* view[0][1] = t[1][0] = data[1] */
    ASSERT_NEAR(out[2], 3, 0);
    vqt_free(view);
    ASSERT_EQ(released, 1);
    /* Failures release at once: misaligned data, a bad shape. */
    ASSERT(vqt_from_blob((const char *)data + 1, VQC_DTYPE_F32, 2, shape, NULL, count_release,
                         &released) == NULL);
    ASSERT_EQ(released, 2);
    ASSERT(vqt_from_blob(data, VQC_DTYPE_F32, -1, shape, NULL, count_release, &released) == NULL);
    ASSERT_EQ(released, 3);
}

/* Views of a checkpoint equal copies, survive the loader's reference and dropped pages. */
static void test_views(void)
{
    vqc_tensor_map *map;
    ASSERT_OK(vqc_tmap_open(fixture_path("vqgan/tiny_vq.ckpt"), &map));
    vqc_weight_file *f = vqc_weight_file_new(map);
    ASSERT(f);
    const char *name = "decoder.conv_in.weight";
    vqt_tensor *view = vqc_weight_view(f, "state_dict.", name, cpu, VQC_DTYPE_F32, -1, NULL);
    vqt_tensor *copy = vqc_weight(map, "state_dict.", name, cpu, VQC_DTYPE_F32, -1, NULL);
    ASSERT(view && copy);
    ASSERT_EQ(vqc_weight_file_views(f), 1);
    ASSERT(vqc_weight_drop_pages(map) > 0); /* torch zip files are mapped, not read */
    vqc_weight_file_unref(f);               /* the view keeps the map */
    ASSERT_SAME(view, copy);
    /* A type that differs from the stored one is a copy. */
    f = vqc_weight_file_new(NULL);
    ASSERT(f);
    vqc_weight_file_unref(f); /* an empty owner frees nothing else */
    vqt_free(view);
    vqt_free(copy);
}

/* A VQGAN loaded from its path (views) decodes exactly as one loaded from a borrowed map. */
static void test_vqgan_views(void)
{
    const char *path = fixture_path("vqgan/tiny_vq.ckpt");
    vqc_vqgan *a, *b;
    ASSERT_OK(vqc_vqgan_load(path, NULL, cpu, &a));
    vqc_tensor_map *map;
    ASSERT_OK(vqc_tmap_open(path, &map));
    ASSERT_OK(vqc_vqgan_load_map(map, NULL, cpu, &b));
    vqc_tmap_free(map);
    const vqc_vqgan_info *in = vqc_vqgan_get_info(a);
    vqt_manual_seed(4);
    int64_t zs[4] = {1, in->embed_dim, 2, 3};
    vqt_tensor *z = vqt_randn(4, zs, cpu);
    vqt_tensor *ya = vqc_vqgan_decode(a, z), *yb = vqc_vqgan_decode(b, z);
    ASSERT(ya && yb);
    ASSERT_SAME(ya, yb);
    vqt_free(z);
    vqt_free(ya);
    vqt_free(yb);
    vqc_vqgan_free(a);
    vqc_vqgan_free(b);
}

int main(void)
{
    vqt_init(0);
    test_conv(1, 1, 1, true);
    test_conv(2, 0, 1, false);
    test_conv(1, 1, 2, true);
    test_group_norm_silu(true);
    test_group_norm_silu(false);
    test_group_norm_silu_impls();
    test_quick_gelu();
    test_from_blob();
    test_views();
    test_vqgan_views();
    return 0;
}

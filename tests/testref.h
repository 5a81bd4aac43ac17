/* Helpers for tests that compare libtorch tensors with reference tensors from a weight file. */
#ifndef VQC_TESTREF_H
#define VQC_TESTREF_H

#include "io/tensor_map.h"
#include "testhelp.h"
#include "torch/shim.h"
#include "util/error.h"

/* The reference tensor `name` of `ref` as a new float32 tensor on the CPU (fails the test when
 * absent). */
static inline vqt_tensor *ref_tensor(const vqc_tensor_map *ref, const char *name, vqc_dtype dt)
{
    const vqc_tensor_info *ti = vqc_tmap_get(ref, name);
    if (!ti)
        TEST_FAIL("reference tensor '%s' missing", name);
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    vqt_tensor *t = vqt_from_data(ti->data, ti->dtype, ti->ndim, ti->shape, ti->strides, cpu, dt);
    if (!t)
        TEST_FAIL("reference tensor '%s': %s", name, vqt_last_error());
    return t;
}

/* t's values (any device and type) in a new malloc'ed float32 host buffer; *n receives their
 * count. Fails the test on a NULL tensor or a failed copy. */
static inline float *host_copy(const vqt_tensor *t, int64_t *n)
{
    ASSERT(t != NULL);
    *n = vqt_numel(t);
    float *b = malloc(sizeof(float) * (size_t)*n);
    ASSERT(b != NULL);
    ASSERT_EQ(vqt_to_host(t, b, VQC_DTYPE_F32, *n), *n);
    return b;
}

/* max |a - b| over all elements (a and b of one shape, on one device), as a double. */
static inline double max_abs_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    ASSERT(a && b);
    ASSERT_EQ(vqt_numel(a), vqt_numel(b));
    vqt_scope_begin();
    double v = vqt_item(
        vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, a, b)), 0, NULL, false));
    vqt_scope_end();
    return v;
}

/* Fails unless `got` and `want` (any devices) have the same shape and
 * |got - want| <= atol + rtol * |want| everywhere; prints the largest difference under `name`. */
static inline void assert_close(const vqt_tensor *got, const vqt_tensor *want, const char *name,
                                double atol, double rtol)
{
    if (!got || !want)
        TEST_FAIL("%s: no tensor (%s / %s)", name, vqc_error_get(), vqt_last_error());
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    vqt_scope_begin();
    vqt_tensor *g = vqt_to(got, cpu, VQC_DTYPE_F64);
    vqt_tensor *r = vqt_to(want, cpu, VQC_DTYPE_F64);
    int64_t gs[8], rs[8];
    int gn = vqt_shape(g, gs), rn = vqt_shape(r, rs);
    ASSERT_EQ(gn, rn);
    for (int i = 0; i < gn; i++)
        if (gs[i] != rs[i])
            TEST_FAIL("%s: dim %d is %lld, reference %lld", name, i, (long long)gs[i],
                      (long long)rs[i]);
    vqt_tensor *diff = vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, g, r));
    vqt_tensor *lim = vqt_affine(vqt_unary(VQT_ABS, r), rtol, atol);
    double maxd = vqt_item(vqt_reduce(VQT_AMAX, diff, 0, NULL, false));
    double over = vqt_item(vqt_reduce(VQT_AMAX, vqt_binary(VQT_SUB, diff, lim), 0, NULL, false));
    fprintf(stderr, "  %-28s max |diff| %.3g\n", name, maxd);
    if (!(over <= 0))
        TEST_FAIL("%s: max |diff| %.6g exceeds atol %g + rtol %g", name, maxd, atol, rtol);
    vqt_scope_end();
}

/* Fails unless `got` and the reference `name` have the same shape and
 * |got - ref| <= atol + rtol * |ref| everywhere; prints the largest difference. */
static inline void assert_close_ref(const vqt_tensor *got, const vqc_tensor_map *ref,
                                    const char *name, double atol, double rtol)
{
    if (!got)
        TEST_FAIL("%s: no tensor (%s / %s)", name, vqc_error_get(), vqt_last_error());
    vqt_scope_begin();
    assert_close(got, ref_tensor(ref, name, VQC_DTYPE_F64), name, atol, rtol);
    vqt_scope_end();
}

#endif

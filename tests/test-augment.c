/* Augmentations: code parsing, the homography warp (identity, flip), the random homographies'
 * ranges, erasing, jitter, sharpness, noise, gradients, seeds; on CUDA too when present. */
#include <math.h>

#include "gen/augment.h"
#include "testhelp.h"
#include "testref.h"
#include "torch/shim.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* [n, 3, s, s] float32 with x[k, c, i, j] = 0.5 + 0.4 sin(0.3 i + 0.7 j + c + k). */
static vqt_tensor *wave_batch(int n, int s, vqt_device dev)
{
    size_t len = (size_t)n * 3 * (size_t)s * (size_t)s;
    float *v = malloc(sizeof(float) * len);
    for (size_t e = 0; e < len; e++) {
        int j = (int)(e % (size_t)s), i = (int)(e / (size_t)s % (size_t)s);
        int c = (int)(e / ((size_t)s * (size_t)s) % 3), k = (int)(e / (3 * (size_t)s * (size_t)s));
        v[e] = (float)(0.5 + 0.4 * sin(0.3 * i + 0.7 * j + c + k));
    }
    int64_t shape[4] = {n, 3, s, s};
    vqt_tensor *t = vqt_from_data(v, VQC_DTYPE_F32, 4, shape, NULL, dev, VQC_DTYPE_F32);
    free(v);
    ASSERT(t != NULL);
    return t;
}

/* n copies of one 3x3 matrix as [n, 3, 3]. */
static vqt_tensor *homs(const double m[9], int n)
{
    double *v = malloc(sizeof(double) * 9 * (size_t)n);
    for (int k = 0; k < n; k++)
        memcpy(v + 9 * k, m, sizeof(double) * 9);
    int64_t s[3] = {n, 3, 3};
    vqt_tensor *t = vqt_from_data(v, VQC_DTYPE_F64, 3, s, NULL, cpu, VQC_DTYPE_F32);
    free(v);
    return t;
}

/* The list of `codes` (which must parse). */
static vqc_augment_list L(const char *codes)
{
    vqc_augment_list l;
    ASSERT_OK(vqc_augment_list_parse(codes, &l));
    return l;
}

/* x augmented by the list `codes`. */
static vqt_tensor *apply(const vqt_tensor *x, const char *codes, double prob)
{
    vqc_augment_list l = L(codes);
    return vqc_augment_apply(x, &l, prob);
}

static void test_parse(void)
{
    vqc_augment_list l = L("Af,Pe,Ji,Er"), d = vqc_augment_list_default();
    ASSERT_EQ(l.n, 4);
    ASSERT(memcmp(l.code, d.code, sizeof *l.code * 4) == 0 && d.n == 4);
    l = L("  af pe,\tJI ,, ER ");
    ASSERT(l.n == 4 && l.code[0] == VQC_AUGMENT_AF && l.code[3] == VQC_AUGMENT_ER);
    l = L("Ts Sh Gn Ro Hf Cr Re Af Pe Ji Er Hf Et");
    ASSERT(l.n == 13 && l.code[0] == VQC_AUGMENT_TS && l.code[11] == VQC_AUGMENT_HF &&
           l.code[12] == VQC_AUGMENT_ET); /* order kept, repeats kept */
    l = L("None");
    ASSERT_EQ(l.n, 0);
    vqc_augment_list keep = L("Ro");
    ASSERT_EQ(vqc_augment_list_parse("Af,Xy", &keep), VQC_ERR_USAGE);
    ASSERT(keep.n == 1 && keep.code[0] == VQC_AUGMENT_RO); /* untouched on error */
    ASSERT(strstr(vqc_error_get(), "'Xy'") && strstr(vqc_error_get(), "Af, Pe"));
    ASSERT(strstr(vqc_error_get(), "Et, Ts"));
    ASSERT_EQ(vqc_augment_list_parse("Afx", &keep), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_augment_list_parse("", &keep), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_augment_list_parse(" , ", &keep), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_augment_list_parse("none Af", &keep), VQC_ERR_USAGE);
    char buf[80];
    ASSERT_EQ(vqc_augment_list_str(&d, buf, sizeof buf), 11);
    ASSERT_STR_EQ(buf, "Af,Pe,Ji,Er");
    l.n = 0;
    vqc_augment_list_str(&l, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "none");
    l = L("Et Pe Hf Ts Af Pe");
    vqc_augment_list_str(&l, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "Et,Pe,Hf,Ts,Af,Pe");
    ASSERT_NEAR(vqc_augment_default_prob(VQC_AUGMENT_AF), 0.7, 0);
    ASSERT_NEAR(vqc_augment_default_prob(VQC_AUGMENT_HF), 0.5, 0);
    ASSERT_NEAR(vqc_augment_default_prob(VQC_AUGMENT_ET), 0.7, 0);
    ASSERT_NEAR(vqc_augment_default_prob(VQC_AUGMENT_TS), 0.7, 0);
}

/* An empty list leaves the batch untouched; the identity homography gives it back; a mirror
 * homography mirrors it. */
static void test_warp(void)
{
    vqt_tensor *x = wave_batch(3, 9, cpu);
    vqc_augment_list none = {0, {0}};
    vqt_tensor *y = vqc_augment_apply(x, &none, 0);
    ASSERT_NEAR(max_abs_diff(x, y), 0, 0);
    vqt_free(y);
    static const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    static const double mirror[9] = {-1, 0, 0, 0, 1, 0, 0, 0, 1};
    vqt_tensor *h = homs(eye, 3);
    y = vqc_augment_warp(x, h);
    ASSERT_NEAR(max_abs_diff(x, y), 0, 1e-5);
    vqt_free(y);
    vqt_free(h);
    h = homs(mirror, 3);
    y = vqc_augment_warp(x, h);
    int64_t n;
    float *xv = host_copy(x, &n), *yv = host_copy(y, &n);
    for (int64_t e = 0; e < n; e++)
        ASSERT_NEAR(yv[e], xv[e - e % 9 + (8 - e % 9)], 1e-5);
    vqt_free(y);
    /* Hf with probability 1 is the same mirror. */
    y = apply(x, "Hf", 1.0);
    free(yv);
    yv = host_copy(y, &n);
    for (int64_t e = 0; e < n; e++)
        ASSERT_NEAR(yv[e], xv[e - e % 9 + (8 - e % 9)], 1e-5);
    ASSERT(vqc_augment_warp(x, NULL) == NULL);
    free(xv);
    free(yv);
    vqt_free(y);
    vqt_free(h);
    vqt_free(x);
}

/* A strong perspective whose horizon crosses the output: nothing is sampled beyond it. */
static void test_warp_horizon(void)
{
    /* (x', y') = (x, y) / (2x + 1): points at x' >= 1/2 have no genuine preimage (it would lie
     * behind the horizon; x' = 1 naively maps back to x = -1, the left border) and must stay
     * empty; on the middle row (y' = 0) x' <= 1/3 comes from inside the image. */
    static const double horizon[9] = {1, 0, 0, 0, 1, 0, 2, 0, 1};
    int64_t s4[4] = {3, 3, 9, 9};
    vqt_tensor *ones = vqt_full(4, s4, 1.0, VQC_DTYPE_F32, cpu), *hz = homs(horizon, 3);
    vqt_tensor *yz = vqc_augment_warp(ones, hz);
    int64_t n;
    float *zv = host_copy(yz, &n);
    for (int64_t e = 0; e < n; e++) {
        if (e % 9 <= 5 && e / 9 % 9 == 4) /* x' = -1 + 2j/8 <= 1/4, y' = 0 */
            ASSERT_NEAR(zv[e], 1.0, 1e-5);
        if (e % 9 >= 6)
            ASSERT_NEAR(zv[e], 0.0, 0);
    }
    free(zv);
    vqt_free(yz);
    vqt_free(hz);
    vqt_free(ones);
}

/* Maps (x, y) by the 3x3 matrix m (row-major floats). */
static void apply_h(const float *m, double x, double y, double *ox, double *oy)
{
    double w = m[6] * x + m[7] * y + m[8];
    *ox = (m[0] * x + m[1] * y + m[2]) / w;
    *oy = (m[3] * x + m[4] * y + m[5]) / w;
}

/* Pe moves each corner inwards by 0..0.7 per axis; Re's crop window lies inside the image. */
static void test_homography_ranges(void)
{
    const int n = 64;
    static const double cx[4] = {-1, 1, 1, -1}, cy[4] = {-1, -1, 1, 1};
    vqt_manual_seed(11);
    vqc_augment_list lpe = L("Pe"), lre = L("Re"), lid = L("Ji Er");
    vqt_tensor *pe = vqc_augment_homographies(&lpe, 1.0, n, cpu);
    vqt_tensor *re = vqc_augment_homographies(&lre, 1.0, n, cpu);
    vqt_tensor *id = vqc_augment_homographies(&lid, 1.0, n, cpu); /* no homography code */
    int64_t cnt;
    float *pv = host_copy(pe, &cnt), *rv = host_copy(re, &cnt), *iv = host_copy(id, &cnt);
    ASSERT_EQ(cnt, 9 * n);
    for (int k = 0; k < n; k++) {
        for (int c = 0; c < 4; c++) {
            double x, y;
            apply_h(pv + 9 * k, cx[c], cy[c], &x, &y);
            ASSERT(fabs(x) <= 1 + 1e-5 && fabs(x) >= 0.3 - 1e-5 && x * cx[c] > 0);
            ASSERT(fabs(y) <= 1 + 1e-5 && fabs(y) >= 0.3 - 1e-5 && y * cy[c] > 0);
            /* The output's corners come from inside the input: the inverse of a zoom-in. */
            const float *m = rv + 9 * k;
            double sx = (cx[c] - m[2]) / m[0], sy = (cy[c] - m[5]) / m[4];
            ASSERT(fabs(sx) <= 1 + 1e-5 && fabs(sy) <= 1 + 1e-5);
        }
        ASSERT(rv[9 * k] >= 1 - 1e-6 && rv[9 * k + 4] >= 1 - 1e-6);
        for (int e = 0; e < 9; e++)
            ASSERT_NEAR(iv[9 * k + e], e % 4 == 0 ? 1.0 : 0.0, 0);
    }
    free(pv);
    free(rv);
    free(iv);
    vqt_free(pe);
    vqt_free(re);
    vqt_free(id);
}

/* Er with probability 1 zeroes exactly one rectangle per cutout (same in every channel) of
 * area 0.1..0.4 of the cutout, up to rounding. */
static void test_erase(void)
{
    const int n = 16, s = 32;
    int64_t shape[4] = {n, 3, s, s};
    vqt_tensor *ones = vqt_full(4, shape, 1.0, VQC_DTYPE_F32, cpu);
    vqt_manual_seed(5);
    vqt_tensor *y = apply(ones, "Er", 1.0);
    int64_t cnt;
    float *v = host_copy(y, &cnt);
    for (int k = 0; k < n; k++) {
        int r0 = s, r1 = -1, c0 = s, c1 = -1, zeros = 0;
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s; j++)
                if (v[((k * 3) * s + i) * s + j] == 0) {
                    zeros++;
                    r0 = i < r0 ? i : r0, r1 = i > r1 ? i : r1;
                    c0 = j < c0 ? j : c0, c1 = j > c1 ? j : c1;
                }
        ASSERT(zeros > 0);
        ASSERT_EQ(zeros, (r1 - r0 + 1) * (c1 - c0 + 1)); /* a full rectangle */
        double frac = (double)zeros / (s * s);
        if (frac < 0.08 || frac > 0.45)
            TEST_FAIL("cutout %d: erased fraction %g", k, frac);
        for (int e = 0; e < s * s; e++) /* every channel alike, only 0 and 1 */
            for (int c = 1; c < 3; c++)
                ASSERT(v[(k * 3 + c) * s * s + e] == v[k * 3 * s * s + e]);
    }
    free(v);
    vqt_free(y);
    vqt_free(ones);
}

/* Sharpness leaves a constant image alone; jitter keeps values finite and near range and
 * changes the image; Gn adds noise of standard deviation VQC_AUG_GN_STD. */
static void test_photometric(void)
{
    int64_t shape[4] = {4, 3, 16, 16};
    vqt_tensor *k = vqt_full(4, shape, 0.25, VQC_DTYPE_F32, cpu);
    vqt_tensor *y = apply(k, "Sh", 1.0);
    ASSERT_NEAR(max_abs_diff(k, y), 0, 1e-6);
    vqt_free(y);
    vqt_tensor *x = wave_batch(8, 16, cpu);
    vqt_manual_seed(9);
    y = apply(x, "Ji", 1.0);
    double lo = vqt_item(vqt_reduce(VQT_AMIN, y, 0, NULL, false));
    double hi = vqt_item(vqt_reduce(VQT_AMAX, y, 0, NULL, false));
    ASSERT(isfinite(lo) && isfinite(hi) && lo > -0.5 && hi < 1.5);
    ASSERT(max_abs_diff(x, y) > 1e-3);
    vqt_free(y);
    y = apply(k, "Gn", 1.0);
    vqt_tensor *d = vqt_binary(VQT_SUB, y, k);
    double var = vqt_item(vqt_reduce(VQT_MEAN, vqt_unary(VQT_SQUARE, d), 0, NULL, false));
    ASSERT_NEAR(sqrt(var), VQC_AUG_GN_STD, 0.01);
    vqt_free(d);
    vqt_free(y);
    vqt_free(x);
    vqt_free(k);
}

/* The list is applied in its order, repeats included: Hf twice is the identity (a mask would have
 * mirrored once); "Er,Hf" mirrors the erased batch. */
static void test_order(void)
{
    static const double mirror[9] = {-1, 0, 0, 0, 1, 0, 0, 0, 1};
    vqt_tensor *x = wave_batch(4, 12, cpu);
    vqt_tensor *y = apply(x, "Hf,Hf", 1.0);
    ASSERT_NEAR(max_abs_diff(x, y), 0, 1e-5);
    vqt_free(y);
    vqt_manual_seed(5);
    y = apply(x, "Er,Hf", 1.0);
    vqt_manual_seed(5);
    vqt_tensor *e = apply(x, "Er", 1.0), *h = homs(mirror, 4);
    vqt_tensor *m = vqc_augment_warp(e, h);
    ASSERT(max_abs_diff(x, m) > 0.1);
    ASSERT_NEAR(max_abs_diff(y, m), 0, 1e-5);
    vqt_free(m);
    vqt_free(h);
    vqt_free(e);
    vqt_free(y);
    vqt_free(x);
}

/* [n, 1, s, s] with x[..., i, j] = j: a bilinear sample of it at an interior point reads back the
 * point's unnormalised x coordinate. */
static vqt_tensor *ramp(int n, int s)
{
    int64_t shape[4] = {n, 1, s, s};
    vqt_tensor *j = vqt_arange(s, VQC_DTYPE_F32, cpu);
    return vqt_contiguous(vqt_expand(j, 4, shape));
}

/* Et: kornia's sampling (align_corners=False on a linspace grid halves the border pixels) plus a
 * small, smooth displacement: on a ramp, out - (j s/(s-1) - 1/2) = dx s/2 in the interior. */
static void test_elastic(void)
{
    const int n = 3, s = 24;
    vqt_tensor *x = ramp(n, s);
    vqt_tensor *y = apply(x, "Et", 1e-9); /* probability ~0: the batch itself */
    ASSERT_NEAR(max_abs_diff(x, y), 0, 0);
    vqt_free(y);
    vqt_manual_seed(3);
    y = apply(x, "Et", 1.0);
    int64_t cnt;
    float *v = host_copy(y, &cnt);
    double maxd = 0, maxstep = 0, sum2 = 0;
    int m = 0;
    for (int k = 0; k < n; k++)
        for (int i = 2; i < s - 2; i++)
            for (int j = 2; j < s - 2; j++) {
                const float *row = v + ((size_t)k * s + (size_t)i) * s;
                double d = row[j] - (j * (double)s / (s - 1) - 0.5);
                double d1 = row[j + 1] - ((j + 1) * (double)s / (s - 1) - 0.5);
                maxd = fmax(maxd, fabs(d));
                maxstep = fmax(maxstep, fabs(d1 - d));
                sum2 += d * d;
                m++;
            }
    /* The field smoothed by a sigma-32 Gaussian is small, not zero, and varies slowly. */
    ASSERT(maxd < 0.5 && sqrt(sum2 / m) > 1e-4);
    ASSERT(maxstep < 0.25 * maxd + 1e-6);
    free(v);
    vqt_free(y);
    vqt_free(x);
    /* A constant: interior 1, edges about 1/2, corners about 1/4 (zero padding beyond -1). */
    int64_t shape[4] = {2, 3, s, s};
    vqt_tensor *ones = vqt_full(4, shape, 1.0, VQC_DTYPE_F32, cpu);
    y = apply(ones, "Et", 1.0);
    v = host_copy(y, &cnt);
    ASSERT_NEAR(v[(s / 2) * s + s / 2], 1.0, 1e-5);
    ASSERT_NEAR(v[(s / 2) * s], 0.5, 0.1);
    ASSERT_NEAR(v[0], 0.25, 0.1);
    free(v);
    vqt_free(y);
    vqt_free(ones);
}

/* Ts: the spline maps dst_i to src_i and a pure shift to a shift; the batch is sampled where
 * vqc_tps_eval says, one spline for the whole batch, from the documented 11 draws. */
static void test_thin_plate(void)
{
    static const double src[5][2] = {{-1, -1}, {-1, 1}, {1, -1}, {1, 1}, {0, 0}};
    double dst[5][2], w[5][2], a[3][2], ox, oy;
    for (int i = 0; i < 5; i++)
        dst[i][0] = src[i][0] + 0.1, dst[i][1] = src[i][1] - 0.2;
    ASSERT_OK(vqc_tps_solve(dst, w, a));
    vqc_tps_eval(w, a, 0.3, -0.4, &ox, &oy);
    ASSERT_NEAR(ox, 0.2, 1e-9);
    ASSERT_NEAR(oy, -0.2, 1e-9);
    const double moved[5][2] = {{-0.7, -1.3}, {-1.2, 0.5}, {0.9, -0.6}, {1.5, 1.1}, {0.2, -0.1}};
    ASSERT_OK(vqc_tps_solve(moved, w, a));
    for (int i = 0; i < 5; i++) {
        vqc_tps_eval(w, a, moved[i][0], moved[i][1], &ox, &oy);
        ASSERT_NEAR(ox, src[i][0], 1e-9);
        ASSERT_NEAR(oy, src[i][1], 1e-9);
    }
    /* The device path against the host spline, on a ramp (interior points that stay inside). */
    const int n = 2, s = 32;
    vqt_tensor *x = ramp(n, s);
    int64_t eleven = 11, cnt;
    double r[11];
    vqt_manual_seed(8);
    ASSERT_EQ(vqt_to_host(vqt_rand(1, &eleven, cpu), r, VQC_DTYPE_F64, 11), 11);
    ASSERT(r[0] < 0.999);
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 2; c++)
            dst[i][c] = src[i][c] + (2 * r[1 + 2 * i + c] - 1) * 0.8;
    ASSERT_OK(vqc_tps_solve(dst, w, a));
    vqt_manual_seed(8);
    vqt_tensor *y = apply(x, "Ts", 0.999);
    float *v = host_copy(y, &cnt);
    int checked = 0;
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            vqc_tps_eval(w, a, -1 + 2.0 * j / (s - 1), -1 + 2.0 * i / (s - 1), &ox, &oy);
            double ux = ((ox + 1) * s - 1) / 2, uy = ((oy + 1) * s - 1) / 2;
            if (ux < 0.5 || ux > s - 1.5 || uy < 0.5 || uy > s - 1.5)
                continue;
            checked++;
            for (int k = 0; k < n; k++) /* same on batch */
                ASSERT_NEAR(v[((size_t)k * s + (size_t)i) * s + (size_t)j], ux, 2e-3);
        }
    ASSERT(checked > s * s / 8);
    free(v);
    vqt_free(y);
    vqt_free(x);
}

/* All augmentations at probability 1: finite, differentiable, reproducible from a seed. */
static void check_all(vqt_device dev)
{
    vqt_tensor *x = wave_batch(6, 20, dev);
    ASSERT_OK(vqt_set_requires_grad(x, true));
    vqt_manual_seed(21);
    const char *all = "Af Pe Ji Er Sh Gn Ro Hf Cr Re Et Ts";
    vqt_tensor *a = apply(x, all, 1.0);
    vqt_manual_seed(21);
    vqt_tensor *b = apply(x, all, 0.0);
    vqt_manual_seed(21);
    vqt_tensor *c = apply(x, all, 1.0);
    ASSERT(a && b && c);
    ASSERT_NEAR(max_abs_diff(a, c), 0, 0);
    ASSERT(max_abs_diff(a, b) > 1e-4); /* other probabilities, other draws */
    int64_t ws[4] = {6, 3, 20, 20};
    vqt_tensor *w = vqt_randn(4, ws, dev);
    vqt_tensor *loss = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, a, w), 0, NULL, false);
    ASSERT(isfinite(vqt_item(loss)));
    ASSERT_OK(vqt_backward(loss));
    vqt_tensor *g = vqt_grad(x);
    ASSERT(g != NULL);
    double gsum = vqt_item(vqt_reduce(VQT_SUM, g, 0, NULL, false));
    double gmax = vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, g), 0, NULL, false));
    ASSERT(isfinite(gsum) && gmax > 0);
    vqt_free(g);
    vqt_free(loss);
    vqt_free(w);
    vqt_free(a);
    vqt_free(b);
    vqt_free(c);
    vqt_free(x);
}

static void test_bad_input(void)
{
    int64_t s3[3] = {3, 8, 8}, s4[4] = {2, 1, 8, 8};
    vqt_tensor *a = vqt_full(3, s3, 0.5, VQC_DTYPE_F32, cpu);
    vqt_tensor *b = vqt_full(4, s4, 0.5, VQC_DTYPE_F32, cpu);
    ASSERT(apply(a, "Af", 0) == NULL);
    ASSERT(apply(b, "Ji", 0) == NULL);            /* jitter needs RGB */
    vqt_tensor *y = apply(b, "Af Er Et Ts", 1.0); /* others do not */
    ASSERT(y != NULL);
    vqc_augment_list bad = {1, {VQC_AUGMENT_COUNT}}, none = {0, {0}};
    ASSERT(vqc_augment_apply(b, &bad, 0) == NULL);
    bad.n = VQC_MAX_AUGMENTS + 1;
    ASSERT(vqc_augment_apply(b, &bad, 0) == NULL);
    ASSERT(vqc_augment_apply(b, NULL, 0) == NULL);
    ASSERT(vqc_augment_homographies(&none, 0, 0, cpu) == NULL);
    vqt_free(y);
    vqt_free(a);
    vqt_free(b);
}

int main(void)
{
    vqt_init(0);
    vqt_scope_begin();
    test_parse();
    test_warp();
    test_warp_horizon();
    test_homography_ranges();
    test_erase();
    test_photometric();
    test_order();
    test_elastic();
    test_thin_plate();
    check_all(cpu);
    if (vqt_cuda_device_count() > 0) {
        vqt_device cuda = {VQT_DEVICE_CUDA, 0};
        check_all(cuda);
        fprintf(stderr, "  checked on cuda:0 too\n");
    }
    test_bad_input();
    vqt_scope_end();
    printf("test-augment: ok\n");
    return 0;
}

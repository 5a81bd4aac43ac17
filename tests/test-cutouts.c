/* Cutouts: method names, pooling against host-computed pooling, the notebook's resample
 * (invariants and a few reference values), explicit boxes, seeds and gradients. */
#include <math.h>

#include "gen/cutouts.h"
#include "testhelp.h"
#include "testref.h"
#include "torch/shim.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* [1, 3, h, w] float32 with x[c, i, j] = sin(0.3 i + 0.7 j + c) * scale + offset (host copy in
 * `host` when not NULL, h*w*3 floats). */
static vqt_tensor *wave_image(int h, int w, double scale, double offset, float *host)
{
    float *v = malloc(sizeof(float) * 3 * (size_t)h * (size_t)w);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                v[(c * h + i) * w + j] = (float)(sin(0.3 * i + 0.7 * j + c) * scale + offset);
    if (host)
        memcpy(host, v, sizeof(float) * 3 * (size_t)h * (size_t)w);
    int64_t s[4] = {1, 3, h, w};
    vqt_tensor *t = vqt_from_data(v, VQC_DTYPE_F32, 4, s, NULL, cpu, VQC_DTYPE_F32);
    free(v);
    ASSERT(t != NULL);
    return t;
}

static void test_method_parse(void)
{
    vqc_cut_method m = VQC_CUT_ORIGINAL;
    const char *pool[] = {"pooling", "latest", "updatedpooling", "Latest"};
    const char *orig[] = {"original", "updated", "nrupdated", "ORIGINAL"};
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(vqc_cut_method_parse(pool[i], &m));
        ASSERT_EQ(m, VQC_CUT_POOLING);
        ASSERT_OK(vqc_cut_method_parse(orig[i], &m));
        ASSERT_EQ(m, VQC_CUT_ORIGINAL);
    }
    ASSERT_EQ(vqc_cut_method_parse("zoom", &m), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "zoom") && strstr(vqc_error_get(), "pooling") &&
           strstr(vqc_error_get(), "nrupdated"));
    ASSERT_STR_EQ(vqc_cut_method_name(VQC_CUT_POOLING), "pooling");
    ASSERT_STR_EQ(vqc_cut_method_name(VQC_CUT_ORIGINAL), "original");

    vqc_cutout_params p = vqc_cutout_default_params();
    ASSERT_EQ(p.method, VQC_CUT_POOLING);
    ASSERT_EQ(p.cut_size, 224);
    ASSERT_EQ(p.cutn, 32);
    ASSERT_NEAR(p.cut_pow, 1.0, 0);
    ASSERT_NEAR(p.cut_noise, 0.1, 0);
    vqc_augment_list d = vqc_augment_list_default();
    ASSERT(p.augments.n == 4 && memcmp(p.augments.code, d.code, sizeof d.code) == 0);
    ASSERT(p.boxes == NULL && p.nboxes == 0 && p.aug_prob == 0);
}

/* Adaptive pooling bin [floor(i*n/s), ceil((i+1)*n/s)) of output index i. */
static void bin(int i, int n, int s, int *lo, int *hi)
{
    *lo = (i * n) / s;
    *hi = ((i + 1) * n + s - 1) / s;
}

/* Pooling cutouts equal (avg + max) / 2 of the adaptive bins, computed on the host. */
static void test_pooling(void)
{
    const int h = 10, w = 7, S = 4;
    float img[3 * 10 * 7];
    vqt_tensor *x = wave_image(h, w, 1.0, 0.0, img);
    vqc_cutout_params p = vqc_cutout_default_params();
    p.cut_size = S;
    p.cutn = 3;
    p.augments.n = 0;
    p.cut_noise = 0;
    vqt_tensor *y = vqc_make_cutouts(&p, x);
    ASSERT(y != NULL);
    ASSERT_EQ(vqt_size(y, 0), 3);
    int64_t n;
    float *got = host_copy(y, &n);
    ASSERT_EQ(n, 3 * 3 * S * S);
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < S; i++)
                for (int j = 0; j < S; j++) {
                    int r0, r1, c0, c1;
                    bin(i, h, S, &r0, &r1);
                    bin(j, w, S, &c0, &c1);
                    double sum = 0, mx = -1e30;
                    for (int r = r0; r < r1; r++)
                        for (int q = c0; q < c1; q++) {
                            double v = img[(c * h + r) * w + q];
                            sum += v;
                            mx = v > mx ? v : mx;
                        }
                    double want = (sum / ((r1 - r0) * (c1 - c0)) + mx) / 2;
                    ASSERT_NEAR(got[((k * 3 + c) * S + i) * S + j], want, 1e-6);
                }
    free(got);
    vqt_free(y);
    vqt_free(x);
}

static void test_resample_invariants(void)
{
    int64_t s[4] = {2, 3, 20, 30};
    vqt_tensor *k = vqt_full(4, s, 0.375, VQC_DTYPE_F32, cpu);
    const int sizes[][2] = {{7, 11}, {40, 50}, {3, 30}, {20, 9}};
    for (int i = 0; i < 4; i++) {
        vqt_tensor *r = vqc_resample(k, sizes[i][0], sizes[i][1]);
        ASSERT(r != NULL);
        ASSERT_EQ(vqt_size(r, 0), 2);
        ASSERT_EQ(vqt_size(r, 2), sizes[i][0]);
        ASSERT_EQ(vqt_size(r, 3), sizes[i][1]);
        vqt_tensor *c =
            vqt_full(4, (int64_t[]){2, 3, sizes[i][0], sizes[i][1]}, 0.375, VQC_DTYPE_F32, cpu);
        ASSERT_NEAR(max_abs_diff(r, c), 0, 2e-6); /* the kernel sums to 1 */
        vqt_free(r);
        vqt_free(c);
    }
    /* Same size: no prefilter, bicubic at the sample points = identity. */
    vqt_tensor *x = wave_image(9, 13, 1.0, 0.0, NULL);
    vqt_tensor *r = vqc_resample(x, 9, 13);
    ASSERT_NEAR(max_abs_diff(r, x), 0, 1e-6);
    vqt_free(r);
    ASSERT(vqc_resample(x, 0, 4) == NULL);
    ASSERT(vqc_resample(NULL, 4, 4) == NULL);
    vqt_free(x);
    vqt_free(k);
}

/* Reference values: from the notebook's resample() under torch 1.13, run on this formula's
 * image (float32 of the double-precision sine). */
static void test_resample_golden(void)
{
    vqt_tensor *x = wave_image(12, 10, 1.0, 0.0, NULL);
    vqt_tensor *a = vqc_resample(x, 5, 7);  /* shrinks both axes (Lanczos on both) */
    vqt_tensor *b = vqc_resample(x, 16, 4); /* grows the rows, shrinks the columns */
    int64_t n;
    float *av = host_copy(a, &n), *bv = host_copy(b, &n);
    ASSERT_NEAR(av[(0 * 5 + 0) * 7 + 0], 0.310983658, 1e-5);
    ASSERT_NEAR(av[(1 * 5 + 2) * 7 + 3], -0.473543614, 1e-5);
    ASSERT_NEAR(av[(2 * 5 + 4) * 7 + 6], -0.972765326, 1e-5);
    ASSERT_NEAR(av[(1 * 5 + 3) * 7 + 5], 0.576477468, 1e-5);
    ASSERT_NEAR(bv[(2 * 16 + 15) * 4 + 3], -0.998374879, 1e-5);
    ASSERT_NEAR(bv[(0 * 16 + 7) * 4 + 1], -0.447421163, 1e-5);
    ASSERT_NEAR(bv[(1 * 16 + 0) * 4 + 2], -0.795214295, 1e-5);
    free(av);
    free(bv);
    vqt_free(a);
    vqt_free(b);
    vqt_free(x);
}

static void test_boxes(void)
{
    static const int boxes[] = {0, 0, 32, 16, 0, 32, 8, 4, 24, 30, 14, 18, 2, 20, 12};
    vqt_tensor *x = wave_image(32, 48, 0.7, 0.5, NULL); /* some values outside [0, 1] */
    vqc_cutout_params p = vqc_cutout_default_params();
    p.cut_size = 32;
    p.boxes = boxes;
    p.nboxes = 5;
    vqt_tensor *y = vqc_make_cutouts(&p, x);
    ASSERT(y != NULL);
    int64_t s[8];
    ASSERT_EQ(vqt_shape(y, s), 4);
    ASSERT(s[0] == 5 && s[1] == 3 && s[2] == 32 && s[3] == 32);
    /* Box 1 is the plain crop x[:, :, 0:32, 16:48], clamped. */
    vqt_tensor *crop = vqt_clamp(vqt_narrow(x, 3, 16, 32), 0.0, 1.0);
    vqt_tensor *y1 = vqt_narrow(y, 0, 1, 1);
    ASSERT_NEAR(max_abs_diff(y1, crop), 0, 1e-6);
    ASSERT_NEAR(vqt_item(vqt_reduce(VQT_AMIN, y, 0, NULL, false)), 0.0, 0);
    ASSERT_NEAR(vqt_item(vqt_reduce(VQT_AMAX, y, 0, NULL, false)), 1.0, 0);
    /* A box outside the image is a usage error. */
    static const int bad[] = {40, 0, 10};
    p.boxes = bad;
    p.nboxes = 1;
    ASSERT(vqc_make_cutouts(&p, x) == NULL);
    ASSERT(strstr(vqc_error_get(), "box 0") != NULL);
    vqt_free(crop);
    vqt_free(y1);
    vqt_free(y);
    vqt_free(x);
}

static vqt_tensor *cutouts_seeded(const vqc_cutout_params *p, const vqt_tensor *x, uint64_t seed)
{
    vqt_manual_seed(seed);
    vqt_tensor *y = vqc_make_cutouts(p, x);
    if (!y)
        TEST_FAIL("make_cutouts: %s", vqc_error_get());
    return y;
}

static void test_original_and_seeds(void)
{
    vqt_tensor *x = wave_image(30, 40, 0.5, 0.5, NULL);
    vqc_cutout_params p = vqc_cutout_default_params();
    p.cut_size = 16;
    p.cutn = 5;
    for (int m = 0; m < 2; m++) {
        p.method = m ? VQC_CUT_ORIGINAL : VQC_CUT_POOLING;
        vqt_tensor *a = cutouts_seeded(&p, x, 7), *b = cutouts_seeded(&p, x, 7);
        vqt_tensor *c = cutouts_seeded(&p, x, 8);
        ASSERT_EQ(vqt_size(a, 0), 5);
        ASSERT_EQ(vqt_size(a, 2), 16);
        ASSERT_NEAR(max_abs_diff(a, b), 0, 0);
        ASSERT(max_abs_diff(a, c) > 1e-3);
        vqt_free(a);
        vqt_free(b);
        vqt_free(c);
    }
    /* Without augmentation and noise, original cutouts stay in [0, 1]; an image smaller than
     * the cutout is upsampled whole. */
    p.augments.n = 0;
    p.cut_noise = 0;
    vqt_tensor *small = wave_image(10, 12, 0.5, 0.5, NULL);
    vqt_tensor *y = cutouts_seeded(&p, small, 1);
    ASSERT_EQ(vqt_size(y, 3), 16);
    ASSERT(vqt_item(vqt_reduce(VQT_AMIN, y, 0, NULL, false)) >= 0);
    ASSERT(vqt_item(vqt_reduce(VQT_AMAX, y, 0, NULL, false)) <= 1);
    vqt_free(y);
    vqt_free(small);
    vqt_free(x);
}

/* backward gives a finite, non-zero gradient to the image for both methods with the default
 * augmentations and noise. */
static void test_gradients(void)
{
    for (int m = 0; m < 2; m++) {
        vqt_tensor *x = wave_image(24, 28, 0.5, 0.5, NULL);
        ASSERT_OK(vqt_set_requires_grad(x, true));
        vqc_cutout_params p = vqc_cutout_default_params();
        p.method = m ? VQC_CUT_ORIGINAL : VQC_CUT_POOLING;
        p.cut_size = 12;
        p.cutn = 4;
        p.aug_prob = 1.0;
        vqt_tensor *y = cutouts_seeded(&p, x, 3);
        vqt_tensor *w = vqt_randn(4, (int64_t[]){4, 3, 12, 12}, cpu);
        vqt_tensor *loss = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, w), 0, NULL, false);
        ASSERT_OK(vqt_backward(loss));
        vqt_tensor *g = vqt_grad(x);
        ASSERT(g != NULL);
        double gmax = vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, g), 0, NULL, false));
        double gsum = vqt_item(vqt_reduce(VQT_SUM, g, 0, NULL, false));
        ASSERT(isfinite(gsum) && gmax > 0);
        vqt_free(g);
        vqt_free(loss);
        vqt_free(w);
        vqt_free(y);
        vqt_free(x);
    }
}

static void test_bad_params(void)
{
    vqt_tensor *x = wave_image(8, 8, 0.5, 0.5, NULL);
    vqc_cutout_params p = vqc_cutout_default_params();
    p.cut_size = 1;
    ASSERT(vqc_make_cutouts(&p, x) == NULL);
    p = vqc_cutout_default_params();
    p.cutn = 0;
    ASSERT(vqc_make_cutouts(&p, x) == NULL);
    p = vqc_cutout_default_params();
    ASSERT(vqc_make_cutouts(&p, NULL) == NULL);
    vqt_free(x);
}

int main(void)
{
    vqt_init(0);
    vqt_scope_begin(); /* catches anything the checks above leave behind */
    test_method_parse();
    test_pooling();
    test_resample_invariants();
    test_resample_golden();
    test_boxes();
    test_original_and_seeds();
    test_gradients();
    test_bad_params();
    vqt_scope_end();
    printf("test-cutouts: ok\n");
    return 0;
}

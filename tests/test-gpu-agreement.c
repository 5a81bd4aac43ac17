/* CUDA against the CPU and the reference fixtures (ctest label "gpu"; exits 77, skipped, when
 * libtorch sees no CUDA device, so CI never runs it; scripts/gpu-check.sh does).
 *
 * Tolerances, |cuda - other| <= atol + rtol * |other| unless said otherwise:
 *   shim transfers (host <-> device, dtype casts, strides)    exact
 *   VQGAN encoder / encode / decode, float32, every fixture    1e-4 / 1e-4, indices exact
 *   kind (tiny_vq, its legacy-format file, tiny_gumbel, and
 *   tiny_transformer's attention at two resolutions), also
 *   channels last and with fused attention
 *   VQGAN gradient of a decode, cuda vs cpu (the same ways)    1e-3 / 1e-3
 *   CLIP float32 features (ViT and ResNet), vs ref and cpu     max |diff| <= 1e-4
 *   CLIP float16 (VQC_CLIP_FP16) features vs cpu float32       ||d|| / ||cpu|| <= 2e-2 and
 *                                                              cosine >= 0.999 for every row
 *   CLIP float16 gradient w.r.t. the image vs cpu float32      finite, cosine >= 0.99
 *   loop fixture (8 Adam steps, pooling cutouts), vs ref       losses and image_final 1e-3 /
 *                                                              1e-3, image_step0 1e-4 / 1e-4
 * Float32 comparisons need TF32 off: libtorch lets cuDNN convolutions use TF32 by default (about
 * 1e-3 relative), so main() sets NVIDIA_TF32_OVERRIDE=0 (honoured by cuBLAS and cuDNN) before
 * the first CUDA call, unless the environment already sets it.
 *
 *   two CLIP models (-m A,B:W), one step over fixed boxes,     losses and dL/dz 1e-4 relative;
 *   cuda vs cpu                                                float16 ViT: losses 2e-2,
 *                                                              dL/dz cosine >= 0.99
 * Also: `--device cuda:N` with N out of range is a clear error (vqt_device_parse and the CLI,
 * exit status 3), vqc_cuda_device_check (doctor's rows) on the device, an impossible allocation
 * fails with a message instead of aborting, peak memory statistics, and a smoke run of the
 * production loop path on CUDA (float16 CLIP, every augmentation, both cutout methods, noise and
 * image prompts, noise init), once in the fast precision as the CLI sets it up (bfloat16 decoder,
 * fused attention) and once in mixed, every step replaying the codebook search's, the decoder's and
 * CLIP's recorded graphs.
 *
 * Environment: VQCLIP_GPU_INDEX=N tests cuda:N (default 0); VQCLIP_GPU_TEST_ON_CPU=1 runs the
 * checks that need no GPU on the CPU, with or without a device (see main). The reduced precisions
 * (`--precision fast` and `mixed`) are compared with `exact` by test-gpu-precision. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "gen/gen_internal.h"
#include "gen/loop.h"
#include "testgpu.h"
#include "testloop.h"
#include "testprofile.h"
#include "testref.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* ---- helpers ------------------------------------------------------------------------------- */

/* Fails unless t lives on dev. */
static void assert_on(const vqt_tensor *t, vqt_device dev, const char *what)
{
    ASSERT(t != NULL);
    vqt_device d = vqt_device_of(t);
    if (d.type != dev.type || d.index != dev.index)
        TEST_FAIL("%s is on %s:%d, expected %s:%d", what, d.type ? "cuda" : "cpu", d.index,
                  dev.type ? "cuda" : "cpu", dev.index);
}

/* Row-wise agreement of half-precision features with float32 ones ([N, D] each): the relative
 * L2 error of the whole batch and the smallest cosine similarity over rows. */
static void assert_rows_agree(const vqt_tensor *half, const vqt_tensor *full, const char *name,
                              double max_rel, double min_cos)
{
    if (!half || !full)
        TEST_FAIL("%s: no tensor (%s / %s)", name, vqc_error_get(), vqt_last_error());
    vqt_scope_begin();
    vqt_tensor *h = vqt_to(half, cpu, VQC_DTYPE_F64), *f = vqt_to(full, cpu, VQC_DTYPE_F64);
    vqt_tensor *d = vqt_binary(VQT_SUB, h, f);
    double nd = sqrt(vqt_item(vqt_reduce(VQT_SUM, vqt_unary(VQT_SQUARE, d), 0, NULL, false)));
    double nf = sqrt(vqt_item(vqt_reduce(VQT_SUM, vqt_unary(VQT_SQUARE, f), 0, NULL, false)));
    int last = vqt_ndim(f) - 1;
    vqt_tensor *cosine = vqt_reduce(
        VQT_SUM, vqt_binary(VQT_MUL, vqt_normalize(h, last, 1e-30), vqt_normalize(f, last, 1e-30)),
        1, (int64_t[]){last}, false);
    double worst = vqt_item(vqt_reduce(VQT_AMIN, cosine, 0, NULL, false));
    double rel = nd / (nf > 0 ? nf : 1e-300);
    fprintf(stderr, "  %-28s relative L2 %.3g, min cosine %.6f\n", name, rel, worst);
    if (!(rel <= max_rel) || !(worst >= min_cos))
        TEST_FAIL("%s: relative error %.4g (limit %g), min cosine %.6f (limit %g)", name, rel,
                  max_rel, worst, min_cos);
    vqt_scope_end();
}

/* ---- shim: transfers, devices, seeds, memory ---------------------------------------------- */

/* Host data with strides and other element types into CUDA, and back, bit for bit. */
static void check_transfers(vqt_device dev)
{
    fprintf(stderr, "transfers\n");
    vqt_scope_begin();
    double src[2][3] = {{1.5, -2.25, 3.0}, {0.125, 1e-3, -7.0}};
    int64_t shape[2] = {3, 2}, strides[2] = {1, 3}; /* the transpose of src */
    vqt_tensor *t = vqt_from_data(src, VQC_DTYPE_F64, 2, shape, strides, dev, VQC_DTYPE_F32);
    assert_on(t, dev, "from_data result");
    ASSERT_EQ(vqt_dtype(t), VQC_DTYPE_F32);
    float back[6];
    ASSERT_EQ(vqt_to_host(t, back, VQC_DTYPE_F32, 6), 6);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            ASSERT_NEAR(back[i * 2 + j], (float)src[j][i], 0);
    /* float16 in, float64 out: exact for these values. */
    uint16_t h[4] = {0x3c00, 0xc000, 0x3800, 0x0000}; /* 1, -2, 0.5, 0 */
    int64_t n4 = 4;
    vqt_tensor *th = vqt_from_data(h, VQC_DTYPE_F16, 1, &n4, NULL, dev, VQC_DTYPE_F16);
    double hd[4];
    ASSERT_EQ(vqt_to_host(th, hd, VQC_DTYPE_F64, 4), 4);
    ASSERT(hd[0] == 1.0 && hd[1] == -2.0 && hd[2] == 0.5 && hd[3] == 0.0);
    /* A non-contiguous CUDA view copies out in logical order. */
    float v[6];
    ASSERT_EQ(vqt_to_host(vqt_transpose(t, 0, 1), v, VQC_DTYPE_F32, 6), 6);
    ASSERT(v[0] == 1.5f && v[1] == -2.25f && v[3] == 0.125f);
    /* Booleans, and CUDA -> CPU -> CUDA. */
    vqt_tensor *b = vqt_binary_s(VQT_GT, t, 0.0);
    uint8_t bb[6];
    ASSERT_EQ(vqt_to_host(b, bb, VQC_DTYPE_BOOL, 6), 6);
    ASSERT(bb[0] == 1 && bb[1] == 1 && bb[2] == 0);
    vqt_tensor *round = vqt_to(vqt_to(t, cpu, VQC_DTYPE_F32), dev, VQC_DTYPE_F32);
    assert_close(round, t, "cuda -> cpu -> cuda", 0, 0);
    ASSERT_NEAR(vqt_item(vqt_reduce(VQT_SUM, t, 0, NULL, false)), -4.624, 1e-5);
    vqt_scope_end();
}

/* Random tensors land on the device asked for, and seeding reproduces them. */
static void check_random(vqt_device dev)
{
    fprintf(stderr, "random\n");
    vqt_scope_begin();
    int64_t s[2] = {64, 64};
    vqt_manual_seed(123);
    vqt_tensor *a = vqt_randn(2, s, dev);
    vqt_tensor *u = vqt_rand(2, s, dev);
    vqt_tensor *k = vqt_randint(0, 10, 2, s, dev);
    assert_on(a, dev, "randn");
    assert_on(u, dev, "rand");
    assert_on(k, dev, "randint");
    vqt_manual_seed(123);
    vqt_tensor *b = vqt_randn(2, s, dev);
    assert_close(a, b, "randn reseeded", 0, 0);
    double mean = vqt_item(vqt_reduce(VQT_MEAN, a, 0, NULL, false));
    ASSERT(fabs(mean) < 0.1);
    vqt_scope_end();
}

/* The allocator's peak statistics (VQT_WITH_CUDA_HEADERS, set by cmake/cuda.cmake). */
static void check_peak(vqt_device dev)
{
    fprintf(stderr, "peak memory\n");
    vqt_synchronize(dev);
    vqt_reset_peak(dev);
    int64_t n = 16 << 20; /* 64 MiB of float32 */
    vqt_tensor *t = vqt_full(1, &n, 1.0, VQC_DTYPE_F32, dev);
    ASSERT(t != NULL);
    vqt_synchronize(dev);
    int64_t peak = vqt_peak_bytes(dev);
    vqt_free(t);
    fprintf(stderr, "  peak after a 64 MiB tensor: %lld bytes\n", (long long)peak);
    if (peak == 0) {
        fprintf(stderr, "  WARN: peak statistics unavailable (built without "
                        "VQT_WITH_CUDA_HEADERS: see cmake/cuda.cmake's message)\n");
        return;
    }
    ASSERT(peak >= (int64_t)n * 4);
    /* --profile's memory per stage on CUDA: a stage that keeps 4 MiB and one that also makes
     * 64 MiB for a while (the allocator's figures, not the device's progress) */
    vqt_profile *p = check_profile_memory(dev, (int64_t)1 << 20, n);
    ASSERT(vqt_profile_peak_bytes(p) >= (long long)n * 4);
    vqt_profile_free(p);
}

/* An allocation far beyond the card fails with a message; the device stays usable. */
static void check_oom(vqt_device dev)
{
    fprintf(stderr, "out of memory\n");
    int64_t n = (int64_t)1 << 42; /* 16 TiB of float32: no card has it */
    vqt_tensor *t = vqt_full(1, &n, 0.0, VQC_DTYPE_F32, dev);
    ASSERT(t == NULL);
    fprintf(stderr, "  error: %s\n", vqt_last_error());
    ASSERT(strlen(vqt_last_error()) > 0);
    int64_t one = 1;
    vqt_tensor *ok = vqt_full(1, &one, 2.0, VQC_DTYPE_F32, dev);
    ASSERT_NEAR(vqt_item(ok), 2.0, 0);
    vqt_free(ok);
}

/* `--device` parsing, in the shim and through the CLI (exit status 3, device named). */
static void check_device_option(int count)
{
    fprintf(stderr, "device option (%d device(s))\n", count);
    vqt_device d;
    ASSERT_OK(vqt_device_parse("cuda", &d));
    ASSERT(d.type == VQT_DEVICE_CUDA && d.index == 0);
    char name[32];
    snprintf(name, sizeof name, "cuda:%d", count - 1);
    ASSERT_OK(vqt_device_parse(name, &d));
    ASSERT_EQ(d.index, count - 1);
    snprintf(name, sizeof name, "cuda:%d", count);
    ASSERT(vqt_device_parse(name, &d) < 0);
    fprintf(stderr, "  %s: %s\n", name, vqt_last_error());
    ASSERT(strstr(vqt_last_error(), name) != NULL);
    ASSERT(vqt_device_parse("cuda:-1", &d) < 0);
    ASSERT(vqt_device_parse("cuda:0x", &d) < 0);

    const char *bin = getenv("VQCLIP_BIN");
    if (!bin) {
        fprintf(stderr, "  VQCLIP_BIN not set: CLI check skipped\n");
        return;
    }
    const char *dir = test_tmpdir("gpu-agreement");
    char cmd[16384], err[4200];
    snprintf(err, sizeof err, "%s/device-err.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' -p 'a test' --device %s -i 1 -o '%s/out.png' 2>'%s'", bin, name,
             dir, err);
    int st = system(cmd);
    ASSERT(st != -1 && WIFEXITED(st));
    FILE *f = fopen(err, "r");
    char line[1024] = "";
    ASSERT(f != NULL);
    while (fgets(line, sizeof line, f) && strncmp(line, "vqclip: error:", 14) != 0)
        ; /* notices (the seed) come first; the error is one line */
    fclose(f);
    fprintf(stderr, "  vqclip --device %s: exit %d, %s", name, WEXITSTATUS(st), line);
    ASSERT(strncmp(line, "vqclip: error:", 14) == 0 && strstr(line, name) != NULL);
    ASSERT_EQ(WEXITSTATUS(st), 3); /* README: 3 = runtime or device failure */
}

/* CUDA_MODULE_LOADING as the process started, from /proc/self/environ (which setenv leaves
 * alone): NULL when it was not set. */
static char *initial_module_loading(void)
{
    static char buf[1 << 16];
    FILE *f = fopen("/proc/self/environ", "rb");
    ASSERT(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    static const char key[] = "CUDA_MODULE_LOADING=";
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, key, sizeof key - 1) == 0)
            return buf + i + sizeof key - 1;
    return NULL;
}

/* The CUDA build asks for lazy kernel loading before CUDA starts, as PyTorch's Python does, and
 * keeps a value the environment gave. */
static void check_module_loading(void)
{
    const char *was = initial_module_loading(), *now = getenv("CUDA_MODULE_LOADING");
    fprintf(stderr, "  CUDA_MODULE_LOADING: %s at start, %s now\n", was ? was : "unset",
            now ? now : "unset");
    ASSERT(now != NULL);
    ASSERT_STR_EQ(now, was ? was : "LAZY");
}

/* vqc_cuda_device_check (the doctor's rows) on the device under test: its name, capability
 * and free memory known in a CUDA build with the runtime's headers, the default precision
 * following the capability, small computations right in that precision's element types; one past
 * the last device refused. */
static void check_device_info(vqt_device dev, int count)
{
    vqc_cuda_device_info d;
    ASSERT_OK(vqc_cuda_device_check(dev.index, &d));
    fprintf(stderr,
            "device check: cuda:%d %s, compute capability %d.%d, %.1f GiB free, "
            "precision %s, computes: %s%s; CUDA graphs built: %s\n",
            dev.index, d.name, d.cc_major, d.cc_minor, (double)d.free_bytes / (1 << 30),
            vqc_precision_name(d.precision), d.compute_ok ? "ok" : "FAILS ",
            d.compute_ok ? "" : d.compute_error, vqc_cuda_graphs_built() ? "yes" : "no");
    ASSERT(d.compute_ok);
    ASSERT(d.name[0] != 0 && d.cc_major >= 3 && d.free_bytes > 0);
    ASSERT_EQ(d.precision, d.cc_major >= 8 ? VQC_PRECISION_FAST : VQC_PRECISION_MIXED);
    ASSERT_EQ(vqc_cuda_device_check(count, &d), VQC_ERR_USAGE);
    fprintf(stderr, "  cuda:%d: %s\n", count, vqc_last_error());
    ASSERT(strstr(vqc_last_error(), "no CUDA device") != NULL);
}

/* ---- VQGAN -------------------------------------------------------------------------------- */

/* Gradient of sum(decode(z)^2) with respect to z, on z's device. */
static vqt_tensor *decode_grad(const vqc_vqgan *m, const vqt_tensor *z0)
{
    vqt_tensor *z = vqt_clone(z0);
    ASSERT_OK(vqt_set_requires_grad(z, true));
    vqt_tensor *y = vqc_vqgan_decode(m, z);
    ASSERT(y != NULL);
    ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, vqt_unary(VQT_SQUARE, y), 0, NULL, false)));
    vqt_tensor *g = vqt_grad(z);
    ASSERT(g != NULL);
    return g;
}

/* A fixture model "dir/name.ext" (its path into model) and its reference outputs
 * "dir/name_ref.safetensors", opened; logs what is checked. */
static vqc_tensor_map *open_fixture(const char *what, const char *dir, const char *name,
                                    const char *ext, char *model, size_t len)
{
    char refp[128];
    snprintf(model, len, "%s/%s.%s", dir, name, ext);
    snprintf(refp, sizeof refp, "%s/%s_ref.safetensors", dir, name);
    fprintf(stderr, "%s %s\n", what, name);
    vqc_tensor_map *ref;
    ASSERT_OK(vqc_tmap_open(fixture_path(refp), &ref));
    return ref;
}

static void check_vqgan(const char *name, vqt_device dev)
{
    char ckpt[128];
    vqc_tensor_map *ref = open_fixture("vqgan", "vqgan", name, "ckpt", ckpt, sizeof ckpt);
    vqc_vqgan *mc, *mg;
    ASSERT_OK(vqc_vqgan_load(fixture_path(ckpt), NULL, cpu, &mc));
    ASSERT_OK(vqc_vqgan_load(fixture_path(ckpt), NULL, dev, &mg));
    assert_on(vqc_vqgan_codebook(mg), dev, "codebook");

    vqt_scope_begin();
    vqt_tensor *x = ref_tensor(ref, "x", VQC_DTYPE_F32); /* the VQGAN does not move inputs */
    vqt_tensor *xg = vqt_to(x, dev, VQC_DTYPE_F32);
    vqt_tensor *enc = vqc_vqgan_encoder(mg, xg);
    assert_on(enc, dev, "encoder output");
    assert_close_ref(enc, ref, "encoder_out", 1e-4, 1e-4);
    vqt_tensor *h = vqc_vqgan_encode(mg, xg);
    assert_close_ref(h, ref, "prequant", 1e-4, 1e-4);
    assert_close(h, vqc_vqgan_encode(mc, x), "prequant cuda vs cpu", 1e-4, 1e-4);
    vqt_tensor *idx;
    vqt_tensor *zq = vqc_vqgan_quantize(mg, h, &idx);
    assert_close_ref(idx, ref, "indices", 0, 0);
    assert_close_ref(zq, ref, "z_q", 1e-5, 1e-5);
    vqt_tensor *zq_ref = vqt_to(ref_tensor(ref, "z_q", VQC_DTYPE_F32), dev, VQC_DTYPE_F32);
    vqt_tensor *y = vqc_vqgan_decode(mg, zq_ref);
    assert_on(y, dev, "decoded");
    assert_close_ref(y, ref, "decoded", 1e-4, 1e-4);
    vqt_tensor *zc = ref_tensor(ref, "z_q", VQC_DTYPE_F32); /* on the CPU, for mc */
    assert_close(y, vqc_vqgan_decode(mc, zc), "decoded cuda vs cpu", 1e-4, 1e-4);
    vqt_tensor *zr = vqt_to(ref_tensor(ref, "z_rect", VQC_DTYPE_F32), dev, VQC_DTYPE_F32);
    assert_close_ref(vqc_vqgan_decode(mg, zr), ref, "decoded_rect", 1e-4, 1e-4);
    vqt_tensor *g_plain = decode_grad(mg, zq_ref);
    assert_close(g_plain, decode_grad(mc, zc), "d|decode|^2/dz cuda vs cpu", 1e-3, 1e-3);
    /* low-memory decoding: the recomputation runs on CUDA's autograd thread. Bit-exact on the
     * CPU (test-vqgan); on CUDA the plain and recomputed backward passes need not add in the
     * same order (atomics in cuDNN's and the upsampling's backward kernels), so the bound is
     * an order below the CUDA-vs-CPU one. */
    vqc_vqgan_set_low_memory(mg, true);
    assert_close(decode_grad(mg, zq_ref), g_plain, "low-memory gradient on cuda", 1e-4, 1e-4);
    /* Channels last (GroupNorm then takes its COMPOSED path on CUDA): within the bounds of
     * CUDA against the CPU. */
    vqc_vqgan_set_low_memory(mg, false);
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(mg, true));
    assert_close_ref(vqc_vqgan_decode(mg, zq_ref), ref, "decoded", 1e-4, 1e-4);
    assert_close(decode_grad(mg, zq_ref), g_plain, "gradient, channels last", 1e-3, 1e-3);
    /* Fused attention (the fast precision's): its check must let it on, in both layouts, and
     * the results stay within the bounds of CUDA against the CPU. */
    ASSERT(vqc_vqgan_set_fused_attention(mg, true, 0));
    assert_close_ref(vqc_vqgan_decode(mg, zq_ref), ref, "decoded", 1e-4, 1e-4);
    assert_close(decode_grad(mg, zq_ref), g_plain, "gradient, fused, channels last", 1e-3, 1e-3);
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(mg, false));
    assert_close_ref(vqc_vqgan_decode(mg, zq_ref), ref, "decoded", 1e-4, 1e-4);
    assert_close(decode_grad(mg, zq_ref), g_plain, "gradient, fused attention", 1e-3, 1e-3);
    vqt_scope_end();
    vqc_vqgan_free(mg);
    vqc_vqgan_free(mc);
    vqc_tmap_free(ref);
}

/* ---- CLIP --------------------------------------------------------------------------------- */

/* The reference token rows as a malloc'ed int64 array; *n gets the row count. */
static int64_t *ref_tokens(const vqc_tensor_map *ref, int *n)
{
    const vqc_tensor_info *ti = vqc_tmap_get(ref, "tokens");
    ASSERT(ti && ti->ndim == 2);
    vqt_tensor *t = ref_tensor(ref, "tokens", VQC_DTYPE_I64);
    int64_t *buf = malloc((size_t)ti->numel * sizeof *buf);
    ASSERT(buf);
    ASSERT_EQ(vqt_to_host(t, buf, VQC_DTYPE_I64, ti->numel), ti->numel);
    vqt_free(t);
    *n = (int)ti->shape[0];
    return buf;
}

/* Gradient of sum(encode_image(x)) with respect to x (x's device and float32). */
static vqt_tensor *image_grad(const vqc_clip *m, const vqt_tensor *x0)
{
    vqt_tensor *x = vqt_clone(x0);
    ASSERT_OK(vqt_set_requires_grad(x, true));
    vqt_tensor *f = vqc_clip_encode_image(m, x);
    ASSERT(f != NULL);
    ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, f, 0, NULL, false)));
    vqt_tensor *g = vqt_grad(x);
    ASSERT(g != NULL);
    return g;
}

static void check_clip(const char *name, vqt_device dev)
{
    char rel[128];
    vqc_tensor_map *ref = open_fixture("clip", "clip", name, "pt", rel, sizeof rel);
    vqc_clip *mc, *m32, *m16;
    ASSERT_OK(vqc_clip_load(fixture_path(rel), cpu, VQC_CLIP_FP32, &mc));
    ASSERT_OK(vqc_clip_load(fixture_path(rel), dev, VQC_CLIP_FP32, &m32));
    ASSERT_OK(vqc_clip_load(fixture_path(rel), dev, VQC_CLIP_FP16, &m16));
    ASSERT_NEAR(vqc_clip_logit_scale(m32), vqc_clip_logit_scale(mc), 0);

    vqt_scope_begin();
    vqt_tensor *img = ref_tensor(ref, "image", VQC_DTYPE_F32);
    int n;
    int64_t *tok = ref_tokens(ref, &n);
    vqt_tensor *fi_c = vqc_clip_encode_image(mc, img), *ft_c = vqc_clip_encode_text(mc, tok, n);
    vqt_tensor *fi = vqc_clip_encode_image(m32, img), *ft = vqc_clip_encode_text(m32, tok, n);
    assert_on(fi, dev, "image features");
    assert_on(ft, dev, "text features");
    ASSERT_EQ(vqt_dtype(fi), VQC_DTYPE_F32);
    assert_close_ref(fi, ref, "image_features", 1e-4, 0);
    assert_close_ref(ft, ref, "text_features", 1e-4, 0);
    assert_close(fi, fi_c, "image features cuda vs cpu", 1e-4, 0);
    assert_close(ft, ft_c, "text features cuda vs cpu", 1e-4, 0);

    vqt_tensor *hi = vqc_clip_encode_image(m16, img), *ht = vqc_clip_encode_text(m16, tok, n);
    assert_on(hi, dev, "fp16 image features");
    ASSERT_EQ(vqt_dtype(hi), VQC_DTYPE_F32); /* computed in float16, returned as float32 */
    assert_rows_agree(hi, fi_c, "fp16 image features", 2e-2, 0.999);
    assert_rows_agree(ht, ft_c, "fp16 text features", 2e-2, 0.999);

    vqt_tensor *g16 = image_grad(m16, vqt_to(img, dev, VQC_DTYPE_F32));
    vqt_tensor *g32 = image_grad(mc, img);
    ASSERT(vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, g16), 0, NULL, false)) < INFINITY);
    int64_t flat[2] = {1, -1};
    assert_rows_agree(vqt_reshape(g16, 2, flat), vqt_reshape(g32, 2, flat), "fp16 d(sum f)/dx", 1.0,
                      0.99);

    /* Fused attention (vqt_sdpa, the fast precision's): on CUDA with libtorch 2.x a flash or
     * memory-efficient kernel, held to the same bars as the composed operators. Its own check
     * must let it on: a refusal (warned with its reason) is a finding here, not a pass. */
    ASSERT(vqc_clip_set_fused_attention(m32, true));
    ASSERT(vqc_clip_set_fused_attention(m16, true));
    assert_close(vqc_clip_encode_image(m32, img), fi_c, "fused image features", 1e-4, 0);
    assert_close(vqc_clip_encode_text(m32, tok, n), ft_c, "text features (not fused)", 1e-4, 0);
    assert_rows_agree(vqc_clip_encode_image(m16, img), fi_c, "fp16 fused image", 2e-2, 0.999);
    assert_rows_agree(vqc_clip_encode_text(m16, tok, n), ft_c, "fp16 text (not fused)", 2e-2,
                      0.999);
    vqt_tensor *u16 = image_grad(m16, vqt_to(img, dev, VQC_DTYPE_F32));
    assert_rows_agree(vqt_reshape(u16, 2, flat), vqt_reshape(g32, 2, flat), "fp16 fused d/dx", 1.0,
                      0.99);
    free(tok);
    vqt_scope_end();
    vqc_clip_free(m16);
    vqc_clip_free(m32);
    vqc_clip_free(mc);
    vqc_tmap_free(ref);
}

/* ---- deterministic input gradients ---------------------------------------------------------- */

/* d(sum(op(x) * w))/dx for the cutouts' warps and pools on dev: op 0 grid sampling (overlapping
 * taps), 1 adaptive max pooling to a larger size (overlapping windows), 2 bicubic resampling. */
static vqt_tensor *op_grad(vqt_device dev, int op)
{
    int64_t xs[4] = {8, 3, 60, 50}, gs[4] = {8, 112, 112, 2};
    vqt_manual_seed(21);
    vqt_tensor *x = vqt_to(vqt_randn(4, xs, cpu), dev, VQC_DTYPE_F32);
    vqt_tensor *grid =
        vqt_to(vqt_binary_s(VQT_MUL, vqt_randn(4, gs, cpu), 0.5), dev, VQC_DTYPE_F32);
    ASSERT_OK(vqt_set_requires_grad(x, true));
    vqt_tensor *y = op == 0   ? vqt_grid_sample(x, grid, VQT_GRID_ZEROS, true)
                    : op == 1 ? vqt_adaptive_max_pool2d(x, 112, 112)
                              : vqt_interpolate(x, 112, 112, VQT_INTERP_BICUBIC, true);
    int64_t ys[4];
    ASSERT_EQ(vqt_shape(y, ys), 4);
    vqt_tensor *w = vqt_to(vqt_randn(4, ys, cpu), dev, VQC_DTYPE_F32);
    ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, w), 0, NULL, false)));
    return vqt_to(vqt_grad(x), cpu, VQC_DTYPE_F32);
}

/* --deterministic's CPU input gradients (vqt_set_host_grad): two runs give the same bits, and
 * they agree with the device's own (atomic) gradients within rounding. The dry run forces the
 * CPU path with ALL. */
static void check_host_grad(vqt_device dev, bool dry)
{
    vqt_scope_begin();
    for (int op = 0; op < 3; op++) {
        vqt_set_host_grad(VQT_HOSTGRAD_OFF);
        vqt_tensor *native = op_grad(dev, op);
        vqt_set_host_grad(dry ? VQT_HOSTGRAD_ALL : VQT_HOSTGRAD_CUDA);
        long long before = vqt_host_grads_done();
        vqt_tensor *a = op_grad(dev, op), *b = op_grad(dev, op);
        ASSERT_EQ(vqt_host_grads_done() - before, 2);
        int64_t n = vqt_numel(a);
        float *va = malloc((size_t)n * sizeof *va), *vb = malloc((size_t)n * sizeof *vb);
        ASSERT(va && vb);
        ASSERT_EQ(vqt_to_host(a, va, VQC_DTYPE_F32, n), n);
        ASSERT_EQ(vqt_to_host(b, vb, VQC_DTYPE_F32, n), n);
        ASSERT(memcmp(va, vb, (size_t)n * sizeof *va) == 0);
        free(va);
        free(vb);
        const char *name[3] = {"grid_sample d/dx cpu path vs device",
                               "adaptive max pool d/dx cpu path vs device",
                               "bicubic d/dx cpu path vs device"};
        assert_close(a, native, name[op], 1e-4, 1e-4);
    }
    vqt_set_host_grad(VQT_HOSTGRAD_OFF);
    vqt_scope_end();
}

/* ---- CLIP's image encoder from recorded CUDA graphs ---------------------------------------- */

static vqt_tensor *encode_body(void *arg, const vqt_tensor *x)
{
    return vqc_clip_encode_image((const vqc_clip *)arg, x);
}

/* The loop's recorded encoder (vqt_graphed) on the device: it must record (no reason to run
 * eagerly), and each replay's features and input gradient must be the plain pass's, for several
 * inputs through the same buffers, in float32, float16, and float16 with fused attention (the
 * fast precision's encoder). The dry run emulates the recording. */
static void check_graphed_clip(const char *name, vqt_device dev, bool dry)
{
    static const char *const kinds[3] = {"fp32", "fp16", "fp16 fused"};
    char rel[128], what[2][64];
    vqc_tensor_map *ref = open_fixture("graphed clip", "clip", name, "pt", rel, sizeof rel);
    vqt_set_graphs_mode(dry ? VQT_GRAPHS_EMULATE : VQT_GRAPHS_AUTO);
    for (int kind = 0; kind < 3; kind++) {
        vqc_clip *m;
        ASSERT_OK(vqc_clip_load(fixture_path(rel), dev, kind ? VQC_CLIP_FP16 : VQC_CLIP_FP32, &m));
        ASSERT(vqc_clip_set_fused_attention(m, kind == 2) == (kind == 2));
        snprintf(what[0], sizeof what[0], "%s graphed features", kinds[kind]);
        snprintf(what[1], sizeof what[1], "%s graphed d(sum f)/dx", kinds[kind]);
        vqt_graphed *g = vqt_graphed_new(encode_body, m);
        ASSERT(g != NULL);
        vqt_scope_begin();
        vqt_tensor *img = vqt_to(ref_tensor(ref, "image", VQC_DTYPE_F32), dev, VQC_DTYPE_F32);
        for (int round = 0; round < 3; round++) {
            vqt_tensor *x = vqt_binary_s(VQT_ADD, img, 0.05 * round);
            vqt_tensor *g_plain = image_grad(m, x);
            vqt_tensor *f_plain = vqc_clip_encode_image(m, x);
            vqt_tensor *xg = vqt_clone(x);
            ASSERT_OK(vqt_set_requires_grad(xg, true));
            vqt_tensor *f = vqt_graphed_call(g, xg);
            ASSERT(f != NULL);
            const char *why = vqt_graphed_why(g);
            if (why)
                fprintf(stderr, "  not recorded: %s\n", why);
            ASSERT(why == NULL);
            ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, f, 0, NULL, false)));
            assert_close(f, f_plain, what[0], 1e-4, 1e-3);
            assert_close(vqt_grad(xg), g_plain, what[1], 1e-4, 1e-3);
        }
        long long replays, eager;
        vqt_graphed_counts(g, &replays, &eager);
        fprintf(stderr, "  %s: %lld replays, %lld plain calls\n", kinds[kind], replays, eager);
        ASSERT_EQ(replays, 3);
        vqt_scope_end();
        vqt_graphed_free(g);
        vqc_clip_free(m);
    }
    vqt_set_graphs_mode(VQT_GRAPHS_AUTO);
    vqc_tmap_free(ref);
}

/* A function that uploads a small constant at every call (through pinned memory on CUDA,
 * without waiting) must not be recorded: a captured copy would read that pinned block as it is
 * at each replay. Nor one that reads a value back. Both run plainly, with the plain values,
 * each call's own constant included. */
struct host_call_body {
    vqt_device dev;
    float k;
    bool read_back;
};

static vqt_tensor *host_call_body(void *arg, const vqt_tensor *x)
{
    struct host_call_body *b = arg;
    if (b->read_back && !isfinite(vqt_item(vqt_reduce(VQT_SUM, x, 0, NULL, false))))
        return NULL;
    vqt_tensor *k = vqt_from_data(&b->k, VQC_DTYPE_F32, 0, NULL, NULL, b->dev, VQC_DTYPE_F32);
    return vqt_binary(VQT_MUL, vqt_unary(VQT_TANH, x), k);
}

static void check_graphed_host_calls(vqt_device dev, bool dry)
{
    vqt_set_graphs_mode(dry ? VQT_GRAPHS_EMULATE : VQT_GRAPHS_AUTO);
    for (int read_back = 0; read_back < 2; read_back++) {
        struct host_call_body b = {dev, 1.0f, read_back == 1};
        vqt_graphed *g = vqt_graphed_new(host_call_body, &b);
        vqt_scope_begin();
        for (int round = 0; round < 3; round++) {
            b.k = 1.0f + (float)round;
            int64_t shape[2] = {4, 8};
            vqt_tensor *x = vqt_binary_s(
                VQT_MUL, vqt_to(vqt_arange(32, VQC_DTYPE_F32, cpu), dev, VQC_DTYPE_F32), 0.05);
            x = vqt_reshape(x, 2, shape);
            ASSERT_OK(vqt_set_requires_grad(x, true));
            vqt_tensor *y = vqt_graphed_call(g, x);
            ASSERT(y != NULL);
            ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, y, 0, NULL, false)));
            vqt_tensor *want = vqt_binary_s(VQT_MUL, vqt_unary(VQT_TANH, vqt_detach(x)), b.k);
            assert_close(y, want, "host call: output", 0, 1e-6);
        }
        const char *why = vqt_graphed_why(g);
        fprintf(stderr, "  %s: not recorded: %s\n", read_back ? "read back" : "upload",
                why ? why : "(recorded!)");
        ASSERT(why != NULL);
        ASSERT(read_back || strstr(why, "vqt_from_data"));
        long long replays, eager;
        vqt_graphed_counts(g, &replays, &eager);
        ASSERT_EQ(replays, 0);
        vqt_scope_end();
        vqt_graphed_free(g);
    }
    vqt_set_graphs_mode(VQT_GRAPHS_AUTO);
}

/* ---- several CLIP models ------------------------------------------------------------------ */

/* One step of a two-model loop on dev (-m ViT:1.5,RN:0.5; the ResNet in float32, the ViT in
 * `prec`) from *z0 over fixed boxes, so nothing random: losses gets 1 + 2 values, share each
 * model's part; returns dL/dz on the CPU. A NULL *z0 gets the loop's seeded random start. */
static vqt_tensor *multiclip_step(vqt_device dev, vqc_clip_precision prec, vqt_tensor **z0,
                                  float *losses, float *share)
{
    static const int boxes[] = {0, 0, 32, 16, 0, 32, 8, 4, 24, 30, 14, 18};
    vqc_vqgan *vq;
    vqc_clip *vit, *rn;
    vqc_tokenizer *tok;
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, dev, &vq));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_vit.pt"), dev, prec, &vit));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_rn.pt"), dev, VQC_CLIP_FP32, &rn));
    ASSERT_OK(vqc_tokenizer_load(fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    vqc_loop_params p = vqc_loop_default_params();
    p.width = 48;
    p.height = 32;
    p.cut.cut_size = 0; /* each model's own input resolution (32 and 64) */
    p.cut.boxes = boxes;
    p.cut.nboxes = 4;
    p.clip_weight = 1.5;
    p.seed = 11;
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, vq, vit, &L));
    ASSERT_OK(vqc_loop_add_clip(L, rn, 0.5));
    ASSERT_OK(vqc_loop_add_text_prompt(L, tok, "a red circle on blue", 1, -INFINITY));
    ASSERT_OK(vqc_loop_add_text_prompt(L, tok, "blurry", -0.5, -2));
    if (*z0) {
        ASSERT_OK(vqc_loop_set_z(L, *z0));
    } else {
        ASSERT_OK(vqc_loop_init_random(L));
        *z0 = vqt_clone(vqc_loop_z(L));
    }
    ASSERT_OK(vqc_loop_step(L, losses));
    ASSERT_EQ(vqc_loop_clip_losses(L, share), 2);
    assert_on(vqc_loop_last_grad(L), dev, "two-model gradient");
    vqt_tensor *g = vqt_to(vqc_loop_last_grad(L), cpu, VQC_DTYPE_F32);
    vqc_loop_free(L);
    vqc_tokenizer_free(tok);
    vqc_clip_free(rn);
    vqc_clip_free(vit);
    vqc_vqgan_free(vq);
    return g;
}

/* Both models on dev against both on the CPU: float32 losses and dL/dz within 1e-4 relative;
 * with the ViT in float16, the losses within 2e-2 and dL/dz at cosine >= 0.99. */
static void check_multiclip(vqt_device dev)
{
    fprintf(stderr, "two CLIP models\n");
    vqt_scope_begin();
    vqt_tensor *z0 = NULL;
    float lc[3], l32[3], l16[3], sc[2], s32[2], s16[2];
    vqt_tensor *gc = multiclip_step(cpu, VQC_CLIP_FP32, &z0, lc, sc);
    vqt_tensor *g32 = multiclip_step(dev, VQC_CLIP_FP32, &z0, l32, s32);
    vqt_tensor *g16 = multiclip_step(dev, VQC_CLIP_FP16, &z0, l16, s16);
    for (int i = 1; i < 3; i++) {
        fprintf(stderr, "  loss %d: cpu %.6f, float32 %.6f, float16 ViT %.6f\n", i, lc[i], l32[i],
                l16[i]);
        ASSERT_NEAR(l32[i], lc[i], 1e-4 * fabs(lc[i]) + 1e-6);
        ASSERT_NEAR(l16[i], lc[i], 2e-2 * fabs(lc[i]) + 1e-4);
    }
    for (int k = 0; k < 2; k++)
        ASSERT_NEAR(s32[k], sc[k], 1e-4 * fabs(sc[k]) + 1e-6);
    int64_t flat[2] = {1, -1};
    vqt_tensor *fc = vqt_reshape(gc, 2, flat);
    assert_rows_agree(vqt_reshape(g32, 2, flat), fc, "two-model dL/dz, float32", 1e-4, 0.9999);
    assert_rows_agree(vqt_reshape(g16, 2, flat), fc, "two-model dL/dz, fp16 ViT", 0.2, 0.99);
    vqt_scope_end();
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* test-loop.c's run_fixture for loop_pooling, with the models on dev (float32, TF32 off). */
static void check_loop_fixture(vqt_device dev)
{
    fprintf(stderr, "loop fixture\n");
    vqc_tensor_map *ref;
    ASSERT_OK(vqc_tmap_open(fixture_path("loop/loop_pooling.safetensors"), &ref));
    vqc_vqgan *vq;
    vqc_clip *clip;
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, dev, &vq));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_vit.pt"), dev, VQC_CLIP_FP32, &clip));
    vqc_loop_params p = fixture_loop_params();
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, vq, clip, &L));

    vqt_scope_begin();
    vqt_tensor *embeds = ref_tensor(ref, "text_embeds", VQC_DTYPE_F32);
    cJSON *prompts = cJSON_Parse(vqc_tmap_meta(ref, "prompts"));
    ASSERT(prompts && cJSON_IsArray(prompts));
    for (int i = 0; i < cJSON_GetArraySize(prompts); i++) {
        cJSON *pr = cJSON_GetArrayItem(prompts, i);
        cJSON *stop = cJSON_GetArrayItem(pr, 2);
        ASSERT_OK(vqc_loop_add_embed_prompt(L, vqt_select(embeds, 0, i),
                                            cJSON_GetArrayItem(pr, 1)->valuedouble,
                                            cJSON_IsNumber(stop) ? stop->valuedouble : -INFINITY));
    }
    cJSON_Delete(prompts);
    ASSERT_OK(vqc_loop_set_z(L, ref_tensor(ref, "z_init", VQC_DTYPE_F32)));
    assert_on(vqc_loop_z(L), dev, "loop z");
    assert_close_ref(vqc_loop_image(L), ref, "image_step0", 1e-4, 1e-4);
    int np = vqc_loop_prompt_count(L);
    ASSERT(np + 1 <= 4);
    float losses[8][4] = {{0}};
    for (int i = 0; i < 8; i++)
        ASSERT_OK(vqc_loop_step(L, losses[i]));
    assert_on(vqc_loop_last_grad(L), dev, "loop gradient");
    int64_t shape[2] = {8, np + 1};
    float packed[8 * 4];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j <= np; j++)
            packed[i * (np + 1) + j] = losses[i][j];
    vqt_tensor *lt = vqt_from_data(packed, VQC_DTYPE_F32, 2, shape, NULL, cpu, VQC_DTYPE_F32);
    assert_close_ref(lt, ref, "losses", 1e-3, 1e-3);
    assert_close_ref(vqc_loop_image(L), ref, "image_final", 1e-3, 1e-3);
    vqt_scope_end();
    vqc_loop_free(L);
    vqc_clip_free(clip);
    vqc_vqgan_free(vq);
    vqc_tmap_free(ref);
}

/* The production path on CUDA: float16 CLIP, every augmentation, noise, both cutout methods,
 * text + noise + image prompts, noise init. Every step must succeed with finite losses. */
static void smoke_loop(vqt_device dev, vqc_cut_method method, vqc_precision prec)
{
    vqc_vqgan *vq;
    vqc_clip *clip;
    vqc_tokenizer *tok;
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, dev, &vq));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_vit.pt"), dev, VQC_CLIP_FP16, &clip));
    ASSERT_OK(vqc_gen_apply_precision(prec, false, dev, vq, &clip, 1)); /* as the CLI does */
    fprintf(stderr, "loop smoke (%s cutouts, fp16 CLIP%s, %s decoder)\n",
            vqc_cut_method_name(method), vqc_clip_fused_attention(clip) ? " fused" : "",
            vqc_dtype_name(vqc_vqgan_decoder_dtype(vq)));
    ASSERT_OK(vqc_tokenizer_load(fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    vqc_loop_params p = vqc_loop_default_params();
    p.width = 64;
    p.height = 48;
    p.seed = 7;
    p.cut.cutn = 8;
    p.cut.method = method;
    ASSERT_OK(vqc_augment_list_parse("Re Cr Af Ro Pe Hf Et Ts Ji Sh Gn Er", &p.cut.augments));
    p.cut.cut_noise = 0.1;
    bool emulate = dev.type != VQT_DEVICE_CUDA;   /* the dry run: the graphs' rules on the CPU */
    vqt_graphs_mode mode = vqt_get_graphs_mode(); /* VQCLIP_CUDA_GRAPH's, as vqt_init read it */
    if (emulate)
        vqt_set_graphs_mode(VQT_GRAPHS_EMULATE);
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, vq, clip, &L));
    ASSERT_OK(vqc_loop_add_text_prompt(L, tok, "a red circle", 1.0, -INFINITY));
    ASSERT_OK(vqc_loop_add_noise_prompt(L, 3, 0.5));
    ASSERT_OK(vqc_loop_init_noise(L, VQC_NOISE_GRADIENT));
    vqt_tensor *first = vqc_loop_image(L);
    vqc_image im = {0};
    ASSERT_OK(vqc_image_from_tensor(first, &im));
    ASSERT_OK(vqc_loop_add_image_prompt(L, &im, 0.2, -INFINITY));
    ASSERT_OK(vqc_loop_init_noise(L, VQC_NOISE_PIXELS));
    float losses[4];
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(vqc_loop_step(L, losses));
        for (int j = 0; j <= vqc_loop_prompt_count(L); j++)
            ASSERT(isfinite(losses[j]));
    }
    vqt_tensor *img = vqc_loop_image(L);
    assert_on(img, dev, "loop image");
    vqt_tensor *top = vqt_reduce(VQT_AMAX, img, 0, NULL, false);
    ASSERT(vqt_item(top) <= 1.0);
    vqt_free(top);
    fprintf(stderr, "  10 steps, last losses %.4f %.4f %.4f %.4f\n", losses[0], losses[1],
            losses[2], losses[3]);
    /* On CUDA every step replays the codebook search's, the decoder's and CLIP's recorded
     * graphs: a recording that failed (logged as a warning) would leave the loop on plain
     * launches, which the figures would then measure without saying so. */
    long long replays, eager;
    vqc_loop_graph_counts(L, &replays, &eager);
    fprintf(stderr, "  recorded graphs: %lld replays, %lld plain calls\n", replays, eager);
    if (emulate || (mode == VQT_GRAPHS_AUTO && vqt_cuda_graphs_built()))
        ASSERT(replays == 30 && eager == 0);
    vqt_set_graphs_mode(mode);
    vqt_free(img);
    vqt_free(first);
    vqc_image_free(&im);
    vqc_loop_free(L);
    vqc_tokenizer_free(tok);
    vqc_clip_free(clip);
    vqc_vqgan_free(vq);
}

int main(void)
{
    setenv("NVIDIA_TF32_OVERRIDE", "0", 0); /* before cuBLAS / cuDNN start */
    vqt_init(0);
    int count = vqt_cuda_device_count();
    /* The dry run checks what needs no CUDA device with "cuda" = the CPU (testgpu.h; also
     * gpu-check.sh --cpu-dry-run): the agreement it shows there is trivially exact. */
    bool dry;
    vqt_device dev = gpu_test_device(&dry);
    if (dry) /* CUDA's GroupNorm for the NCHW decoder (AUTO picks NATIVE on the CPU): its path */
        vqt_set_group_norm_impl(VQT_GN_SAVED);
    fprintf(stderr, "libtorch %s, %d CUDA device(s), testing %s:%d, NVIDIA_TF32_OVERRIDE=%s\n",
            vqt_version(), count, dry ? "cpu (dry run)" : "cuda", dev.index,
            getenv("NVIDIA_TF32_OVERRIDE"));

    check_transfers(dev);
    check_random(dev);
    check_host_grad(dev, dry);
    if (!dry) {
        check_module_loading();
        check_peak(dev);
        check_oom(dev);
        check_device_option(count);
        check_device_info(dev, count);
    }
    check_vqgan("tiny_vq", dev);
    check_vqgan("tiny_vq_legacy", dev);
    check_vqgan("tiny_gumbel", dev);
    check_vqgan("tiny_transformer", dev);
    check_clip("tiny_vit", dev);
    check_clip("tiny_rn", dev);
    check_graphed_clip("tiny_vit", dev, dry);
    check_graphed_clip("tiny_rn", dev, dry);
    check_graphed_host_calls(dev, dry);
    check_multiclip(dev);
    check_loop_fixture(dev);
    smoke_loop(dev, VQC_CUT_POOLING, VQC_PRECISION_FAST);
    smoke_loop(dev, VQC_CUT_ORIGINAL, VQC_PRECISION_MIXED);
    fprintf(stderr, "test-gpu-agreement: ok%s\n", dry ? " (dry run on the CPU)" : "");
    return 0;
}

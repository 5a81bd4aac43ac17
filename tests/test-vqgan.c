/* VQGAN parity with taming-transformers on every fixture in shared/fixtures/vqgan. */
#include <math.h>

#include "models/vqgan.h"
#include "testref.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

static void check_fixture(const char *name, vqc_vqgan_kind kind, bool from_transformer)
{
    char ckpt[128], yaml[128], refp[128];
    snprintf(ckpt, sizeof ckpt, "vqgan/%s.ckpt", name);
    snprintf(yaml, sizeof yaml, "vqgan/%s.yaml", name);
    snprintf(refp, sizeof refp, "vqgan/%s_ref.safetensors", name);
    fprintf(stderr, "%s\n", name);
    vqc_tensor_map *ref;
    ASSERT_OK(vqc_tmap_open(fixture_path(refp), &ref));
    vqc_vqgan *m;
    ASSERT_OK(vqc_vqgan_load(fixture_path(ckpt), fixture_path(yaml), cpu, &m));
    const vqc_vqgan_info *in = vqc_vqgan_get_info(m);
    ASSERT_EQ(in->kind, kind);
    ASSERT_EQ(in->from_transformer, from_transformer);

    vqt_scope_begin();
    vqt_tensor *x = ref_tensor(ref, "x", VQC_DTYPE_F32);
    assert_close_ref(vqc_vqgan_encoder(m, x), ref, "encoder_out", 1e-4, 1e-4);
    vqt_tensor *h = vqc_vqgan_encode(m, x);
    assert_close_ref(h, ref, "prequant", 1e-4, 1e-4);
    vqt_tensor *idx;
    vqt_tensor *zq = vqc_vqgan_quantize(m, h, &idx);
    assert_close_ref(idx, ref, "indices", 0, 0);
    assert_close_ref(zq, ref, "z_q", 1e-5, 1e-5);
    /* Decode the reference z_q so that this check does not depend on the ones above. */
    assert_close_ref(vqc_vqgan_decode(m, ref_tensor(ref, "z_q", VQC_DTYPE_F32)), ref, "decoded",
                     1e-4, 1e-4);
    assert_close_ref(vqc_vqgan_decode(m, ref_tensor(ref, "z_rect", VQC_DTYPE_F32)), ref,
                     "decoded_rect", 1e-4, 1e-4);
    assert_close_ref(vqc_vqgan_codebook(m), ref, "codebook", 0, 0);
    /* Straight-through nearest: same values as quantize for a VQ model, gradient of identity. */
    if (kind == VQC_VQGAN_VQ) {
        vqt_tensor *z = vqt_clone(h);
        ASSERT_OK(vqt_set_requires_grad(z, true));
        vqt_tensor *st = vqc_vqgan_nearest(m, z, NULL);
        assert_close_ref(st, ref, "z_q", 1e-6, 1e-6); /* taming adds (z_q - z) to z */
        ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, st, 0, NULL, false)));
        vqt_tensor *g = vqt_grad(z);
        ASSERT(g != NULL);
        ASSERT_NEAR(vqt_item(vqt_reduce(VQT_MEAN, g, 0, NULL, false)), 1.0, 0);
    }
    vqt_scope_end();
    vqc_vqgan_free(m);
    vqc_tmap_free(ref);
}

/* Decodes z (a copy that requires a gradient) and back-propagates sum(decoded * w); returns the
 * decoded image and writes the gradient of z into *grad. */
static vqt_tensor *decode_with_grad(vqc_vqgan *m, const vqt_tensor *z0, const vqt_tensor *w,
                                    vqt_tensor **grad)
{
    vqt_tensor *z = vqt_clone(z0);
    ASSERT_OK(vqt_set_requires_grad(z, true));
    vqt_tensor *y = vqc_vqgan_decode(m, z);
    ASSERT(y != NULL);
    ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, w), 0, NULL, false)));
    *grad = vqt_grad(z);
    ASSERT(*grad != NULL);
    return y;
}

/* A fixture decoder with its reference's z_rect and a random weighting w of its image (from
 * seed), inside a vqt scope that close_case ends. */
typedef struct {
    vqc_tensor_map *ref;
    vqc_vqgan *m;
    vqt_tensor *z, *w;
} decode_case;

static decode_case open_case(const char *name, const char *what, uint64_t seed)
{
    char ckpt[128], refp[128];
    snprintf(ckpt, sizeof ckpt, "vqgan/%s.ckpt", name);
    snprintf(refp, sizeof refp, "vqgan/%s_ref.safetensors", name);
    fprintf(stderr, "%s, %s\n", name, what);
    decode_case dc;
    ASSERT_OK(vqc_tmap_open(fixture_path(refp), &dc.ref));
    ASSERT_OK(vqc_vqgan_load(fixture_path(ckpt), NULL, cpu, &dc.m));
    vqt_scope_begin();
    dc.z = ref_tensor(dc.ref, "z_rect", VQC_DTYPE_F32);
    vqt_manual_seed(seed);
    int64_t s[4];
    ASSERT_EQ(vqt_shape(vqc_vqgan_decode(dc.m, dc.z), s), 4);
    dc.w = vqt_randn(4, s, cpu);
    return dc;
}

static void close_case(decode_case *dc)
{
    vqt_scope_end();
    vqc_vqgan_free(dc->m);
    vqc_tmap_free(dc->ref);
}

/* Low-memory decoding (checkpointed segments) gives the same image and the same gradient. */
static void check_low_memory(const char *name)
{
    decode_case dc = open_case(name, "low-memory decoder", 7);
    vqc_vqgan *m = dc.m;
    const vqt_tensor *z = dc.z, *w = dc.w;
    vqt_tensor *g_plain, *g_low;
    vqt_tensor *y_plain = decode_with_grad(m, z, w, &g_plain);
    vqc_vqgan_set_low_memory(m, true);
    vqt_tensor *y_low = decode_with_grad(m, z, w, &g_low);
    assert_close(y_low, y_plain, "low-memory decode", 0, 0);
    assert_close(g_low, g_plain, "low-memory gradient", 0, 0);
    ASSERT(vqt_item(vqt_reduce(VQT_MEAN, vqt_unary(VQT_ABS, g_plain), 0, NULL, false)) > 0);
    bool was = vqt_set_grad_enabled(false); /* without a gradient it simply decodes */
    assert_close(vqc_vqgan_decode(m, z), y_plain, "low-memory decode, no grad", 0, 0);
    vqt_set_grad_enabled(was);
    close_case(&dc);
}

/* Low-memory decoding (checkpointed segments) of m as it is set up gives y and g bit for bit;
 * m is left without low memory. */
static void low_memory_matches(vqc_vqgan *m, const vqt_tensor *z, const vqt_tensor *w,
                               const vqt_tensor *y, const vqt_tensor *g, const char *what)
{
    vqt_tensor *glow;
    vqc_vqgan_set_low_memory(m, true);
    vqt_tensor *ylow = decode_with_grad(m, z, w, &glow);
    vqc_vqgan_set_low_memory(m, false);
    char name[96];
    snprintf(name, sizeof name, "%s low-memory decode", what);
    assert_close(ylow, y, name, 0, 0);
    snprintf(name, sizeof name, "%s low-memory gradient", what);
    assert_close(glow, g, name, 0, 0);
}

/* sum(a * b) / (|a| |b|) over all elements, in float64. */
static double cosine(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_scope_begin();
    vqt_tensor *x = vqt_to(a, cpu, VQC_DTYPE_F64), *y = vqt_to(b, cpu, VQC_DTYPE_F64);
    double xy = vqt_item(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, x, y), 0, NULL, false));
    double xx = vqt_item(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, x, x), 0, NULL, false));
    double yy = vqt_item(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, y), 0, NULL, false));
    vqt_scope_end();
    return xy / sqrt(xx * yy);
}

/* |a - b| / |b| over all elements (L2). */
static double rel_err(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_scope_begin();
    vqt_tensor *x = vqt_to(a, cpu, VQC_DTYPE_F64), *y = vqt_to(b, cpu, VQC_DTYPE_F64);
    vqt_tensor *d = vqt_binary(VQT_SUB, x, y);
    double dd = vqt_item(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, d, d), 0, NULL, false));
    double yy = vqt_item(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, y), 0, NULL, false));
    vqt_scope_end();
    return sqrt(dd / yy);
}

/* A bfloat16 decoder (the fast CUDA mode's) through libtorch's CPU kernels: float32 in and
 * out, the image within bfloat16's rounding of the float32 one, the gradient pointing the same
 * way; low-memory decoding is still exact against the plain bfloat16 pass. */
static void check_reduced_decoder(const char *name)
{
    decode_case dc = open_case(name, "bfloat16 decoder", 11);
    vqc_vqgan *m = dc.m;
    const vqt_tensor *z = dc.z, *w = dc.w;
    vqt_tensor *g32, *gbf;
    vqt_tensor *y32 = decode_with_grad(m, z, w, &g32);
    ASSERT_OK(vqc_vqgan_set_decoder_dtype(m, VQC_DTYPE_BF16));
    ASSERT_EQ(vqc_vqgan_decoder_dtype(m), VQC_DTYPE_BF16);
    vqt_tensor *ybf = decode_with_grad(m, z, w, &gbf);
    ASSERT_EQ(vqt_dtype(ybf), VQC_DTYPE_F32);
    ASSERT_EQ(vqt_dtype(gbf), VQC_DTYPE_F32);
    double ey = rel_err(ybf, y32), cg = cosine(gbf, g32);
    fprintf(stderr, "  image relative error %.3g, gradient cosine %.6f\n", ey, cg);
    ASSERT(ey < 6e-2); /* about 3.5e-2 on the tiny fixtures: 8-bit mantissas over ~20 layers */
    ASSERT(cg > 0.995);
    low_memory_matches(m, z, w, ybf, gbf, "bfloat16");
    /* One-way, and only float types. */
    ASSERT_EQ(vqc_vqgan_set_decoder_dtype(m, VQC_DTYPE_F32), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_vqgan_set_decoder_dtype(m, VQC_DTYPE_I64), VQC_ERR_USAGE);
    ASSERT_OK(vqc_vqgan_set_decoder_dtype(m, VQC_DTYPE_BF16)); /* already: nothing to do */
    close_case(&dc);
}

/* A channels-last decoder (vqc_vqgan_set_decoder_channels_last) through libtorch's CPU kernels:
 * the image comes back NCHW, image and gradient within float32 rounding of the NCHW decoder,
 * with GroupNorm's COMPOSED implementation (AUTO's choice for that layout) and with libtorch's
 * own kernel (NATIVE), and in bfloat16 at least as close to the float32 image as the NCHW
 * bfloat16 decoder; low-memory decoding is exact against it; turned off, the decoder gives the
 * NCHW results bit for bit again. */
static void check_channels_last(const char *name)
{
    decode_case dc = open_case(name, "channels-last decoder", 12);
    vqc_vqgan *m = dc.m;
    const vqt_tensor *z = dc.z, *w = dc.w;
    vqt_tensor *g, *gcl, *gnat, *goff, *gbf, *gbfcl;
    vqt_tensor *y = decode_with_grad(m, z, w, &g);
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(m, true));
    ASSERT(vqc_vqgan_decoder_channels_last(m));
    vqt_tensor *ycl = decode_with_grad(m, z, w, &gcl);
    ASSERT(!vqt_is_channels_last(ycl));
    double ey = rel_err(ycl, y), eg = rel_err(gcl, g);
    fprintf(stderr, "  float32: image relative error %.3g, gradient %.3g\n", ey, eg);
    ASSERT(ey < 1e-5 && eg < 1e-5);
    vqt_set_group_norm_impl(VQT_GN_NATIVE);
    vqt_tensor *ynat = decode_with_grad(m, z, w, &gnat);
    vqt_set_group_norm_impl(VQT_GN_AUTO);
    ey = rel_err(ynat, y), eg = rel_err(gnat, g);
    fprintf(stderr, "  float32, libtorch's GroupNorm: image %.3g, gradient %.3g\n", ey, eg);
    ASSERT(ey < 1e-5 && eg < 1e-5);
    low_memory_matches(m, z, w, ycl, gcl, "channels-last");
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(m, false));
    vqt_tensor *yoff = decode_with_grad(m, z, w, &goff);
    assert_close(yoff, y, "NCHW again", 0, 0);
    assert_close(goff, g, "NCHW gradient again", 0, 0);
    /* bfloat16: both layouts as close to float32 as each other (8-bit mantissas) */
    ASSERT_OK(vqc_vqgan_set_decoder_dtype(m, VQC_DTYPE_BF16));
    vqt_tensor *ybf = decode_with_grad(m, z, w, &gbf);
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(m, true));
    vqt_tensor *ybfcl = decode_with_grad(m, z, w, &gbfcl);
    double e_nchw = rel_err(ybf, y), e_cl = rel_err(ybfcl, y), c_cl = cosine(gbfcl, g);
    fprintf(stderr, "  bfloat16: image %.3g (NCHW %.3g), gradient cosine %.6f (NCHW %.6f)\n", e_cl,
            e_nchw, c_cl, cosine(gbf, g));
    /* Within a tenth of the NCHW decoder's error, not strictly closer: the two layouts'
     * bfloat16 convolutions round differently from one libtorch to the next (docs/gpu.md), while
     * a GroupNorm that loses accuracy is far off (as libtorch 1.13's own channels-last one). */
    ASSERT(e_cl < 6e-2 && e_cl <= 1.1 * e_nchw);
    ASSERT(c_cl > 0.995);
    close_case(&dc);
}

/* Fused attention (vqc_vqgan_set_fused_attention; on the CPU libtorch's composed operator behind
 * vqt_sdpa): on after its check, the image and gradient within float32 rounding of the
 * reference's, in both layouts; in bfloat16 within that type's rounding of the bfloat16
 * reference; low-memory decoding exact against it; turned off, or on only from more cells than
 * these decoders attend over, the reference's results bit for bit again; on from fewer, its
 * check deferred to the first decode, the fused results again. On tiny_vq (attention at
 * one resolution), tiny_transformer (two) and tiny_gumbel (only the middle block's, which every
 * taming decoder has). */
static void check_fused_attention(const char *name)
{
    decode_case dc = open_case(name, "fused attention", 13);
    vqc_vqgan *m = dc.m;
    const vqt_tensor *z = dc.z, *w = dc.w;
    vqt_tensor *g, *gf, *gcl, *goff, *gbf, *gbff;
    vqt_tensor *y = decode_with_grad(m, z, w, &g);
    ASSERT_EQ(vqc_vqgan_fused_attention_from(m), -1);
    ASSERT(vqc_vqgan_set_fused_attention(m, true, 0));
    ASSERT_EQ(vqc_vqgan_fused_attention_from(m), 0);
    vqt_tensor *yf = decode_with_grad(m, z, w, &gf);
    double ey = rel_err(yf, y), eg = rel_err(gf, g);
    fprintf(stderr, "  float32: image relative error %.3g, gradient %.3g\n", ey, eg);
    ASSERT(ey < 1e-5 && eg < 1e-5);
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(m, true));
    vqt_tensor *ycl = decode_with_grad(m, z, w, &gcl);
    ASSERT_OK(vqc_vqgan_set_decoder_channels_last(m, false));
    ey = rel_err(ycl, y), eg = rel_err(gcl, g);
    fprintf(stderr, "  float32 channels last: image %.3g, gradient %.3g\n", ey, eg);
    ASSERT(ey < 1e-5 && eg < 1e-5);
    low_memory_matches(m, z, w, yf, gf, "fused");
    ASSERT(!vqc_vqgan_set_fused_attention(m, false, 0));
    ASSERT_EQ(vqc_vqgan_fused_attention_from(m), -1);
    vqt_tensor *yoff = decode_with_grad(m, z, w, &goff);
    assert_close(yoff, y, "unfused again", 0, 0);
    assert_close(goff, g, "unfused gradient again", 0, 0);
    /* on, from more cells than any block here attends over: every block stays unfused */
    ASSERT(vqc_vqgan_set_fused_attention(m, true, VQC_VQGAN_FUSED_ATTENTION_CELLS));
    ASSERT_EQ(vqc_vqgan_fused_attention_from(m), VQC_VQGAN_FUSED_ATTENTION_CELLS);
    vqt_tensor *gbig, *ybig = decode_with_grad(m, z, w, &gbig);
    assert_close(ybig, y, "fused from 8192 cells", 0, 0);
    assert_close(gbig, g, "fused from 8192 cells, gradient", 0, 0);
    /* from one cell: the check waits for the first decode, which then runs every block fused */
    ASSERT(vqc_vqgan_set_fused_attention(m, true, 1));
    ASSERT_EQ(vqc_vqgan_fused_attention_from(m), 1);
    vqt_tensor *g1, *y1 = decode_with_grad(m, z, w, &g1);
    ASSERT_EQ(vqc_vqgan_fused_attention_from(m), 1);
    assert_close(y1, yf, "fused after the first decode's check", 0, 0);
    assert_close(g1, gf, "fused after the first decode's check, gradient", 0, 0);
    ASSERT(!vqc_vqgan_set_fused_attention(m, false, 0));
    /* bfloat16: the check runs in the decoder's type at the time of the call */
    ASSERT_OK(vqc_vqgan_set_decoder_dtype(m, VQC_DTYPE_BF16));
    vqt_tensor *ybf = decode_with_grad(m, z, w, &gbf);
    ASSERT(vqc_vqgan_set_fused_attention(m, true, 0));
    vqt_tensor *ybff = decode_with_grad(m, z, w, &gbff);
    ey = rel_err(ybff, ybf);
    double cg = cosine(gbff, gbf);
    fprintf(stderr, "  bfloat16: image %.3g off the unfused one, gradient cosine %.6f\n", ey, cg);
    ASSERT(ey < 3e-2 && cg > 0.995);
    close_case(&dc);
}

static void check_errors(void)
{
    vqc_vqgan *m = NULL;
    ASSERT(vqc_vqgan_load("/nonexistent/model.ckpt", NULL, cpu, &m) < 0);
    ASSERT(m == NULL && strlen(vqc_error_get()) > 0);
    /* A CLIP archive is not a VQGAN. */
    int rc = vqc_vqgan_load(fixture_path("clip/tiny_vit.pt"), NULL, cpu, &m);
    ASSERT_EQ(rc, VQC_ERR_MODEL);
    ASSERT(strstr(vqc_error_get(), "CLIP") != NULL);
    /* A config that disagrees with the weights. */
    rc = vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), fixture_path("vqgan/tiny_gumbel.yaml"),
                        cpu, &m);
    ASSERT_EQ(rc, VQC_ERR_MODEL);
    fprintf(stderr, "  mismatched yaml: %s\n", vqc_error_get());
    /* Input sizes that are not a multiple of the downsampling factor. */
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, cpu, &m));
    int64_t shape[4] = {1, 3, 30, 32};
    vqt_tensor *x = vqt_full(4, shape, 0.0, VQC_DTYPE_F32, cpu);
    ASSERT(vqc_vqgan_encode(m, x) == NULL);
    ASSERT(strstr(vqc_error_get(), "multiple of 4") != NULL);
    vqt_free(x);
    vqc_vqgan_free(m);
}

int main(void)
{
    vqt_init(0);
    check_fixture("tiny_vq", VQC_VQGAN_VQ, false);
    check_fixture("tiny_vq_legacy", VQC_VQGAN_VQ, false);
    check_fixture("tiny_gumbel", VQC_VQGAN_GUMBEL, false);
    check_fixture("tiny_transformer", VQC_VQGAN_VQ, true);
    check_low_memory("tiny_vq");
    check_low_memory("tiny_transformer");
    check_reduced_decoder("tiny_vq");
    check_reduced_decoder("tiny_gumbel");
    check_channels_last("tiny_vq");
    check_channels_last("tiny_transformer");
    check_fused_attention("tiny_vq");
    check_fused_attention("tiny_transformer");
    check_fused_attention("tiny_gumbel");
    check_errors();
    fprintf(stderr, "test-vqgan: ok\n");
    return 0;
}

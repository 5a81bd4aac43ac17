/* The CUDA precisions against `exact` (ctest label "gpu"): issue 17's bar for the fast default.
 * The same loop (seed, prompt, cutouts, augmentations) runs with
 *   exact  float32 VQGAN and CLIP, TF32 off (the reference path)
 *   mixed  float16 CLIP, float32 VQGAN
 *   fast   float16 CLIP with fused attention on CUDA, bfloat16 decoder (the CUDA default)
 *   fast-cl  fast with the decoder channels last (VQCLIP_CHANNELS_LAST=1; GroupNorm COMPOSED)
 *   fast-gn-composed, fast-gn-reduce  fast with the NCHW decoder's GroupNorm COMPOSED or REDUCE
 *            (VQCLIP_GROUPNORM; the CUDA default is SAVED), so that one device call decides
 *            whether gpu-check's faster GroupNorm rows may become the default
 *   fast-attn-all  fast with the decoder's attention fused at every size (VQCLIP_SDPA=all; by
 *            default only from VQC_VQGAN_FUSED_ATTENTION_CELLS, above 512x512's): the fused
 *            kernel's numbers in the bfloat16 decoder, which large pictures use
 * each configured by vqc_gen_apply_precision(), as the CLI configures them (so the developers'
 * switches VQCLIP_SDPA and VQCLIP_CHANNELS_LAST apply here too),
 * and each reduced precision must give, against exact,
 *   the gradient dL/dz of the first step                 cosine >= 0.99
 *   the total prompt loss of step STEPS (50)             within 3 %
 *
 * Models: the full-size random-weight VQGAN (f16-16384) and ViT-B/32 that
 * scripts/make-bench-models.py writes, found in $VQCLIP_BENCH_MODELS (gpu-check.sh sets it);
 * 512x512, cutn 32, the default augmentations. Without a CUDA device it exits 77 (skipped);
 * VQCLIP_GPU_TEST_ON_CPU=1 (ctest's test-gpu-precision-on-cpu, with or without a device) runs
 * the same comparison on the CPU with the tiny fixture models at 64x64 (bfloat16 decoder through
 * libtorch's CPU kernels, with CUDA's GroupNorm choices: SAVED for the NCHW decoder; CLIP stays
 * float32 there), to check this test's own logic. Environment:
 * VQCLIP_GPU_INDEX (0), VQCLIP_PRECISION_SIZE, VQCLIP_PRECISION_STEPS. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen/gen_internal.h"
#include "gen/loop.h"
#include "testgpu.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

typedef struct {
    const char *vqgan, *clip, *bpe;
    vqt_device dev;
    int size, steps, cutn;
} setup_t;

typedef struct {
    vqt_tensor *grad0; /* dL/dz of step 1, on the CPU in float32 */
    double loss;       /* the prompt loss of the last step */
} outcome_t;

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

typedef struct {
    const char *name;
    vqc_precision prec;
    bool channels_last;
    vqt_gn_impl gn;        /* VQT_GN_AUTO: as vqt_init left it */
    bool decoder_sdpa_all; /* the decoder's attention fused at every size */
} variant_t;

/* Runs the loop with the models loaded in one precision. */
static outcome_t run(const setup_t *s, const variant_t *v)
{
    vqc_precision prec = v->prec;
    const char *name = v->name;
    vqc_vqgan *vq;
    vqc_clip *clip;
    vqc_tokenizer *tok;
    ASSERT_OK(vqc_vqgan_load(s->vqgan, NULL, s->dev, &vq));
    vqc_clip_precision clip_prec = prec == VQC_PRECISION_EXACT ? VQC_CLIP_FP32 : VQC_CLIP_FP16;
    ASSERT_OK(vqc_clip_load(s->clip, s->dev, clip_prec, &clip));
    ASSERT_OK(vqc_gen_apply_precision(prec, false, s->dev, vq, &clip, 1));
    if (prec == VQC_PRECISION_EXACT) { /* the reference, whatever the switches say */
        vqc_clip_set_fused_attention(clip, false);
        vqc_vqgan_set_fused_attention(vq, false, 0);
        ASSERT_OK(vqc_vqgan_set_decoder_channels_last(vq, false));
    }
    if (v->channels_last)
        ASSERT_OK(vqc_vqgan_set_decoder_channels_last(vq, true));
    if (v->decoder_sdpa_all)
        ASSERT(vqc_vqgan_set_fused_attention(vq, true, 0));
    /* fast on CUDA asks for fused attention: its own check turning it off (warned with the
     * reason) would leave the bar applied to the wrong configuration */
    if (prec == VQC_PRECISION_FAST && s->dev.type == VQT_DEVICE_CUDA && !getenv("VQCLIP_SDPA"))
        ASSERT(vqc_clip_fused_attention(clip) && vqc_vqgan_fused_attention_from(vq) >= 0);
    int64_t f = vqc_vqgan_get_info(vq)->downsample, from = vqc_vqgan_fused_attention_from(vq);
    int64_t cells = (s->size / f) * (s->size / f); /* the latent: the f16 decoder attends there */
    fprintf(stderr, "  %-7s decoder %s%s%s, CLIP %s%s\n", name,
            vqc_dtype_name(vqc_vqgan_decoder_dtype(vq)),
            vqc_vqgan_decoder_channels_last(vq) ? " channels last" : "",
            from >= 0 && cells >= from ? " fused attention" : "",
            clip_prec == VQC_CLIP_FP16 && s->dev.type == VQT_DEVICE_CUDA ? "float16" : "float32",
            vqc_clip_fused_attention(clip) ? ", fused attention" : "");
    ASSERT_OK(vqc_tokenizer_load(s->bpe, &tok));
    vqc_loop_params p = vqc_loop_default_params();
    p.width = p.height = s->size;
    p.seed = 1;
    p.cut.cutn = s->cutn;
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, vq, clip, &L));
    ASSERT_OK(
        vqc_loop_add_text_prompt(L, tok, "a red fox in the snow, artstation", 1.0, -INFINITY));
    ASSERT_OK(vqc_loop_init_random(L));
    outcome_t o = {NULL, 0};
    float losses[2];
    for (int i = 0; i < s->steps; i++) {
        ASSERT_OK(vqc_loop_step(L, losses));
        if (i == 0)
            o.grad0 = vqt_persist(vqt_to(vqc_loop_last_grad(L), cpu, VQC_DTYPE_F32));
    }
    ASSERT(o.grad0 != NULL);
    o.loss = losses[1];
    fprintf(stderr, "  %-7s prompt loss after %d steps %.6f\n", name, s->steps, o.loss);
    vqc_loop_free(L);
    vqc_tokenizer_free(tok);
    vqc_clip_free(clip);
    vqc_vqgan_free(vq);
    return o;
}

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

static void compare(const outcome_t *got, const outcome_t *exact, const char *name)
{
    double c = cosine(got->grad0, exact->grad0);
    double rel = fabs(got->loss - exact->loss) / fabs(exact->loss);
    fprintf(stderr,
            "%-7s vs exact: step-1 gradient cosine %.6f (>= 0.99), loss %.2f %% off "
            "(<= 3 %%)\n",
            name, c, 100 * rel);
    ASSERT(c >= 0.99);
    ASSERT(rel <= 0.03);
}

int main(void)
{
    setenv("NVIDIA_TF32_OVERRIDE", "0", 0); /* exact means no TF32: before cuBLAS / cuDNN start */
    vqt_init(0);
    bool dry;
    vqt_device dev = gpu_test_device(&dry);
    static char vq[4096], cl[4096], bpe[4096];
    snprintf(bpe, sizeof bpe, "%s", fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    setup_t s = {vq, cl, bpe, dev, 512, 50, 32};
    if (dry) {
        snprintf(vq, sizeof vq, "%s", fixture_path("vqgan/tiny_vq.ckpt"));
        snprintf(cl, sizeof cl, "%s", fixture_path("clip/tiny_vit.pt"));
        s.dev = cpu;
        s.size = 64;
        s.steps = 20;
        s.cutn = 8;
    } else {
        const char *dir = getenv("VQCLIP_BENCH_MODELS");
        if (!dir || !*dir)
            TEST_SKIP("VQCLIP_BENCH_MODELS is not set (the folder scripts/make-bench-models.py "
                      "writes)");
        snprintf(vq, sizeof vq, "%s/vqgan_f16_16384_random.ckpt", dir);
        snprintf(cl, sizeof cl, "%s/ViT-B-32_random.pt", dir);
    }
    s.size = env_int("VQCLIP_PRECISION_SIZE", s.size);
    s.steps = env_int("VQCLIP_PRECISION_STEPS", s.steps);
    fprintf(stderr, "libtorch %s, %s, %dx%d, cutn %d, %d steps\n", vqt_version(),
            dry ? "cpu (dry run)" : "cuda", s.size, s.size, s.cutn, s.steps);
    vqt_set_tf32(false);
    /* The GroupNorm variants last: they set the implementation for every thread, and after
     * them it is AUTO again (VQCLIP_GROUPNORM would be forgotten). */
    static const variant_t variants[] = {
        {"mixed", VQC_PRECISION_MIXED, false, VQT_GN_AUTO, false},
        {"fast", VQC_PRECISION_FAST, false, VQT_GN_AUTO, false},
        {"fast-cl", VQC_PRECISION_FAST, true, VQT_GN_AUTO, false},
        {"fast-attn-all", VQC_PRECISION_FAST, false, VQT_GN_AUTO, true},
        {"fast-gn-composed", VQC_PRECISION_FAST, false, VQT_GN_COMPOSED, false},
        {"fast-gn-reduce", VQC_PRECISION_FAST, false, VQT_GN_REDUCE, false},
    };
    static const variant_t reference = {"exact", VQC_PRECISION_EXACT, false, VQT_GN_AUTO, false};
    /* The dry run takes CUDA's GroupNorm for the NCHW decoder (AUTO picks NATIVE on the CPU) */
    if (dry)
        vqt_set_group_norm_impl(VQT_GN_SAVED);
    outcome_t exact = run(&s, &reference);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        vqt_gn_impl gn = variants[i].gn;
        if (dry && gn == VQT_GN_AUTO)
            gn = variants[i].channels_last ? VQT_GN_COMPOSED : VQT_GN_SAVED;
        if (gn != VQT_GN_AUTO)
            vqt_set_group_norm_impl(gn);
        outcome_t o = run(&s, &variants[i]);
        if (gn != VQT_GN_AUTO)
            vqt_set_group_norm_impl(dry ? VQT_GN_SAVED : VQT_GN_AUTO);
        if (!dry || variants[i].prec != VQC_PRECISION_MIXED) /* the CPU has no float16 CLIP */
            compare(&o, &exact, variants[i].name);
        vqt_free(o.grad0);
    }
    vqt_free(exact.grad0);
    if (dry)
        vqt_set_group_norm_impl(VQT_GN_AUTO);
    fprintf(stderr, "test-gpu-precision: ok%s\n", dry ? " (dry run on the CPU)" : "");
    return 0;
}

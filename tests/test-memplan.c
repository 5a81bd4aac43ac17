/* Memory planning (src/gen/memplan.h): the step estimate grows with the size and the cutouts,
 * the fitted size fits and the next one up does not, refusals and out-of-memory errors name
 * the size and the advice. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "gen/memplan.h"
#include "testhelp.h"
#include "util/error.h"

/* vqgan_imagenet_f16_16384 and ViT-B/32, as their weights describe them. */
static vqc_vqgan_info imagenet_f16(void)
{
    vqc_vqgan_info vi;
    memset(&vi, 0, sizeof vi);
    vi.ch = 128;
    vi.num_levels = 5;
    int mult[5] = {1, 1, 2, 2, 4};
    memcpy(vi.ch_mult, mult, sizeof mult);
    vi.num_res_blocks = 2;
    vi.dec_attn[4] = vi.enc_attn[4] = true;
    vi.in_channels = vi.out_ch = 3;
    vi.z_channels = vi.embed_dim = 256;
    vi.n_embed = 16384;
    vi.downsample = 16;
    return vi;
}

static vqc_clip_info vit_b32(void)
{
    vqc_clip_info ci;
    memset(&ci, 0, sizeof ci);
    ci.is_vit = 1;
    ci.embed_dim = 512;
    ci.image_resolution = 224;
    ci.vision_width = 768;
    ci.vision_layers = 12;
    ci.vision_patch_size = 32;
    ci.vision_heads = 12;
    return ci;
}

/* A float32 step on CUDA with cutn cutouts at CLIP's resolution, one CLIP model, no limit. */
static vqc_memplan_step step(const vqc_vqgan_info *vi, const vqc_clip_info *ci, int cutn,
                             bool low_memory)
{
    return (vqc_memplan_step){.vi = vi,
                              .ci = ci,
                              .cutn = cutn,
                              .low_memory = low_memory,
                              .decoder_bytes = 4,
                              .clip_bytes = 4,
                              .fused_attention_from = -1};
}

static double gib(int64_t b)
{
    return (double)b / (1 << 30);
}

int main(void)
{
    vqc_vqgan_info vi = imagenet_f16();
    vqc_clip_info ci = vit_b32();
    vqc_memplan_step st = step(&vi, &ci, 32, false), st8 = step(&vi, &ci, 8, false);
    vqc_memplan_step low = step(&vi, &ci, 32, true), st1 = step(&vi, &ci, 1, false);
    int64_t s256 = vqc_memplan_step_bytes(&st, 256, 256);
    int64_t s512 = vqc_memplan_step_bytes(&st, 512, 512);
    int64_t s512c8 = vqc_memplan_step_bytes(&st8, 512, 512);
    int64_t s1024 = vqc_memplan_step_bytes(&st, 1024, 1024);
    int64_t l512 = vqc_memplan_step_bytes(&low, 512, 512);
    int64_t l1024 = vqc_memplan_step_bytes(&low, 1024, 1024);
    fprintf(stderr,
            "estimates: 256 %.2f GiB, 512 %.2f GiB (cutn 8: %.2f), 1024 %.2f GiB; low-memory "
            "512 %.2f GiB, 1024 %.2f GiB\n",
            gib(s256), gib(s512), gib(s512c8), gib(s1024), gib(l512), gib(l1024));
    ASSERT(s256 > 0 && s256 < s512 && s512 < s1024);
    ASSERT(s512c8 < s512);
    /* low-memory keeps the segments' inputs and one segment's activations: the decoder's share
     * shrinks most at large sizes (CLIP's over 32 cutouts stays) */
    ASSERT(l512 < s512 / 10 * 7 && l1024 < s1024 / 10 * 6 && l512 < l1024);
    /* The Python peer needs ~10 GB at 512x512 and ~24 GB at 900x900 on a GPU, models included;
     * vqclip keeps less, but the estimate must stay in a plausible range. */
    ASSERT(gib(s512) > 0.5 && gib(s512) < 12);
    ASSERT(gib(s1024) > 2 && gib(s1024) < 48);
    int64_t s8192 = vqc_memplan_step_bytes(&st, 8192, 8192);
    ASSERT(gib(s8192) > 100);

    /* The CPU's model (what autograd was measured to keep there) is smaller at the same widths,
     * and still grows with the size and the cutouts and shrinks with low memory. */
    vqc_memplan_step cpu_st = st, cpu_low = low, cpu_st8 = st8;
    cpu_st.on_cpu = cpu_low.on_cpu = cpu_st8.on_cpu = true;
    int64_t c512 = vqc_memplan_step_bytes(&cpu_st, 512, 512);
    fprintf(stderr, "CPU estimates at 512: %.2f GiB (cutn 8: %.2f), low-memory %.2f GiB\n",
            gib(c512), gib(vqc_memplan_step_bytes(&cpu_st8, 512, 512)),
            gib(vqc_memplan_step_bytes(&cpu_low, 512, 512)));
    ASSERT(c512 < s512 && vqc_memplan_step_bytes(&cpu_st, 256, 256) < c512);
    ASSERT(vqc_memplan_step_bytes(&cpu_st8, 512, 512) < c512);
    ASSERT(vqc_memplan_step_bytes(&cpu_low, 1024, 1024) <
           vqc_memplan_step_bytes(&cpu_st, 1024, 1024));

    /* With libtorch's own CPU convolutions each 3x3 convolution unfolds its input (9 x its
     * channels x its positions) while it runs: with few cutouts, the decoder's forward pass
     * becomes the step's peak from 256x256 on, well above oneDNN's step (as measured,
     * docs/benchmarks.md); never below it, with low memory too; a CUDA step ignores the flag. */
    vqc_memplan_step one = st1, one_low = low, own, own_low, cuda_own = st;
    one.on_cpu = one_low.on_cpu = true;
    one_low.cutn = 1;
    own = one;
    own_low = one_low;
    own.own_convs = own_low.own_convs = cuda_own.own_convs = true;
    fprintf(stderr,
            "CPU, one cutout, at 256 with libtorch's own convolutions: %.1f MiB (oneDNN "
            "%.1f)\n",
            vqc_memplan_step_bytes(&own, 256, 256) / 1048576.0,
            vqc_memplan_step_bytes(&one, 256, 256) / 1048576.0);
    ASSERT(vqc_memplan_step_bytes(&own, 256, 256) >
           vqc_memplan_step_bytes(&one, 256, 256) / 10 * 14);
    ASSERT(vqc_memplan_step_bytes(&own_low, 256, 256) >
           vqc_memplan_step_bytes(&one_low, 256, 256) / 10 * 14);
    for (int side = 64; side <= 1024; side *= 2) {
        ASSERT(vqc_memplan_step_bytes(&own, side, side) >=
               vqc_memplan_step_bytes(&one, side, side));
        ASSERT(vqc_memplan_step_bytes(&own_low, side, side) >=
               vqc_memplan_step_bytes(&one_low, side, side));
        ASSERT_EQ(vqc_memplan_step_bytes(&cuda_own, side, side),
                  vqc_memplan_step_bytes(&st, side, side));
    }

    /* Fused decoder attention keeps no S x S scores on CUDA: at 2048x2048 (S = 128 * 128 cells,
     * over the fast precision's threshold; four attention blocks in the f16 decoder, the middle
     * one and three at the lowest level) the bfloat16 estimate drops by at least one such matrix
     * per block (with low memory, where a full-resolution ResnetBlock is the largest segment, it
     * may not drop); the CPU's estimate stays (libtorch's CPU operator composes them). */
    vqc_memplan_step bf = st, bf_low = low;
    bf.decoder_bytes = bf_low.decoder_bytes = 2;
    vqc_memplan_step bf_fused = bf, bf_low_fused = bf_low, cpu_fused = cpu_st;
    bf_fused.fused_attention_from = bf_low_fused.fused_attention_from =
        cpu_fused.fused_attention_from = VQC_VQGAN_FUSED_ATTENTION_CELLS;
    double cells = 128.0 * 128.0;
    int64_t gain =
        vqc_memplan_step_bytes(&bf, 2048, 2048) - vqc_memplan_step_bytes(&bf_fused, 2048, 2048);
    int64_t gain_low = vqc_memplan_step_bytes(&bf_low, 2048, 2048) -
                       vqc_memplan_step_bytes(&bf_low_fused, 2048, 2048);
    fprintf(stderr, "fused decoder attention at 2048: %.2f GiB less (low-memory: %.2f GiB)\n",
            gib(gain), gib(gain_low));
    ASSERT(gain >= (int64_t)(4 * cells * cells * 2) && gain_low >= 0);
    ASSERT_EQ(vqc_memplan_step_bytes(&cpu_fused, 2048, 2048),
              vqc_memplan_step_bytes(&cpu_st, 2048, 2048));
    /* below the fused threshold (512x512: 1024 cells) the blocks keep their scores */
    ASSERT_EQ(vqc_memplan_step_bytes(&bf_fused, 512, 512), vqc_memplan_step_bytes(&bf, 512, 512));
    bf_fused.fused_attention_from = 0; /* every block fused */
    ASSERT(vqc_memplan_step_bytes(&bf_fused, 512, 512) < vqc_memplan_step_bytes(&bf, 512, 512));

    /* several CLIP models: each adds its tower over its own cutouts at its own resolution,
     * whatever comes before it: (B32 + L14) - B32 == (L14 + L14) - L14, and the bigger input
     * costs more */
    vqc_clip_info l14 = vit_b32();
    l14.image_resolution = 336;
    l14.vision_patch_size = 14;
    l14.vision_width = 1024;
    l14.vision_layers = 24;
    l14.vision_heads = 16;
    vqc_memplan_step only_l14 = step(&vi, &l14, 32, false);
    vqc_memplan_step b32_l14 = st, l14_l14 = only_l14;
    b32_l14.n_more_clips = l14_l14.n_more_clips = 1;
    b32_l14.more_clips[0] = l14_l14.more_clips[0] = &l14;
    int64_t m1 = vqc_memplan_step_bytes(&b32_l14, 512, 512);
    int64_t m2 = vqc_memplan_step_bytes(&l14_l14, 512, 512);
    int64_t sl14 = vqc_memplan_step_bytes(&only_l14, 512, 512);
    fprintf(stderr, "ViT-B/32 + ViT-L/14@336 at 512: %.2f GiB (one B/32: %.2f)\n", gib(m1),
            gib(s512));
    ASSERT(m1 > s512 && m1 - s512 > sl14 - s512);
    ASSERT(llabs((long long)((m1 - s512) - (m2 - sl14))) <= 2);

    /* Fused CLIP attention keeps no softmax: per layer and cutout each head's T x T scores
     * (two of them in CUDA's count) give way to one float per head and token, and one width
     * per token (T = 577 at 336 pixels with 14-pixel patches), on the CPU as on CUDA */
    double t = 577, per_layer = 16 * t;
    for (int on_cpu = 0; on_cpu < 2; on_cpu++) {
        vqc_memplan_step plain = only_l14, fused = only_l14;
        plain.on_cpu = fused.on_cpu = on_cpu;
        fused.clip_fused = true;
        double drop = (double)(vqc_memplan_step_bytes(&plain, 512, 512) -
                               vqc_memplan_step_bytes(&fused, 512, 512));
        double expect = 32.0 * 24 * 4 * (per_layer * ((on_cpu ? 1 : 2) * t - 1) - 1024 * t);
        fprintf(stderr, "fused CLIP attention, ViT-L/14@336 at 512 (%s): %.2f GiB less\n",
                on_cpu ? "CPU" : "CUDA", drop / (1 << 30));
        ASSERT(fabs(drop - expect) <= 8);
    }

    /* fit: the answer fits, one latent cell more does not; the aspect ratio is kept */
    int fw, fh;
    vqc_memplan_fit(&st, 2048, 1024, s512, &fw, &fh);
    fprintf(stderr, "fits in the 512x512 budget at 2:1: %dx%d\n", fw, fh);
    ASSERT(fw > 0 && fw % 16 == 0 && fh % 16 == 0);
    ASSERT(fw >= 2 * fh - 16 && fw <= 2 * fh + 16);
    ASSERT(vqc_memplan_step_bytes(&st, fw, fh) <= s512);
    ASSERT(vqc_memplan_step_bytes(&st, fw + 32, fh + 16) > s512);
    vqc_memplan_fit(&st, 512, 512, 1000, &fw, &fh);
    ASSERT_EQ(fw, 0);
    ASSERT_EQ(fh, 0);

    /* the CPU's available memory follows RLIMIT_AS */
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    int64_t avail = vqc_memplan_available(cpu);
    ASSERT(avail > 0);
    ASSERT_OK(vqc_memplan_check(&st1, cpu, 256, 256));
    /* a memory limit: what it leaves, below the free memory; none left (the models hold more
     * than the limit) is 0 available; a limit above the free memory leaves the free memory */
    vqc_memplan_step lim = st1;
    lim.limited = true;
    lim.limit_left = (int64_t)1 << 20;
    ASSERT_EQ(vqc_memplan_step_available(&lim, cpu), (int64_t)1 << 20);
    ASSERT_EQ(vqc_memplan_check(&lim, cpu, 256, 256), VQC_ERR_NOMEM);
    ASSERT(strstr(vqc_error_get(), "within the memory limit"));
    lim.limit_left = -5;
    ASSERT_EQ(vqc_memplan_step_available(&lim, cpu), 0);
    lim.limit_left = INT64_MAX;
    int64_t free_b = vqc_memplan_step_available(&lim, cpu); /* MemAvailable: it moves */
    ASSERT(free_b > 0 && free_b < INT64_MAX);
    ASSERT_OK(vqc_memplan_check(&lim, cpu, 256, 256));
    struct rlimit old, rl;
    ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
    rl = old;
    rl.rlim_cur = (rlim_t)4 << 30;
    /* AddressSanitizer maps terabytes of shadow memory: an address-space limit means nothing
     * to (and breaks) an ASan build, so this part runs in the plain build only. */
    if (!UNDER_ASAN && (old.rlim_max == RLIM_INFINITY || old.rlim_max >= rl.rlim_cur)) {
        ASSERT_EQ(setrlimit(RLIMIT_AS, &rl), 0);
        int64_t capped = vqc_memplan_available(cpu);
        ASSERT(capped > 0 && capped < ((int64_t)4 << 30));
        int rc = vqc_memplan_check(&st, cpu, 8192, 8192);
        const char *m = vqc_error_get();
        fprintf(stderr, "refusal: %s\n", m);
        ASSERT_EQ(rc, VQC_ERR_NOMEM);
        ASSERT(strstr(m, "8192x8192") && strstr(m, "GiB"));
        vqc_memplan_advice a; /* what would fit: data, worded by the command line */
        vqc_memplan_advise(&st, cpu, 8192, 8192, false, &a);
        ASSERT(a.known && a.fit_width > 0 && a.fit_width < 8192 && a.fit_height < 8192);
        ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
    }

    /* out-of-memory errors */
    /* an allocation failure keeps its kind through the generic codes of the callers above it */
    vqc_error_set(VQC_ERR_NOMEM, "VQGAN decode: CUDA out of memory");
    ASSERT_EQ(vqc_error_wrap(VQC_ERR_RUNTIME, "step %d", 3), VQC_ERR_NOMEM);
    ASSERT_EQ(vqc_error_code(), VQC_ERR_NOMEM);
    vqc_error_set(VQC_ERR_RUNTIME, "loss is NaN");
    ASSERT_EQ(vqc_error_wrap(VQC_ERR_RUNTIME, "step %d", 3), VQC_ERR_RUNTIME);
    ASSERT_EQ(vqc_error_code(), VQC_ERR_RUNTIME);
    vqc_error_set(VQC_ERR_RUNTIME, "step 7: CUDA out of memory. Tried to allocate 1.00 GiB");
    int rc = vqc_memplan_oom_error(cpu, 1024, 1024);
    const char *m = vqc_error_get();
    fprintf(stderr, "oom: %s\n", m);
    ASSERT_EQ(rc, VQC_ERR_NOMEM);
    ASSERT(strstr(m, "1024x1024") && strstr(m, "step 7"));
    ASSERT(strchr(m, '\n') == NULL);
    vqc_memplan_advice a; /* the advice is a smaller size than the one that failed */
    vqc_memplan_advise(&st, cpu, 1024, 1024, true, &a);
    fprintf(stderr, "oom advice: %dx%d, low memory %d\n", a.fit_width, a.fit_height, a.low_memory);
    ASSERT(a.known && a.fit_width > 0 && a.fit_width < 1024 && a.fit_height < 1024);
    /* the size that failed would fit with low memory (it keeps well under 3/4): say so, and
     * not when it is already on */
    ASSERT(a.low_memory);
    vqc_memplan_advise(&low, cpu, 1024, 1024, true, &a);
    ASSERT(!a.low_memory);
    fprintf(stderr, "test-memplan: ok\n");
    return 0;
}

/* A memory limit and low memory chosen by the run itself (vqc_context_params.memory_limit and
 * auto_low_memory), on the CPU with the fixture models, whose step is measured here first with
 * and without low memory: a size the planner finds too large for the limit runs with low memory
 * (or is refused, without auto_low_memory), and a step that fails to allocate part-way is taken
 * again with low memory from the same random state. On the CPU low memory gives the same
 * picture bit for bit, so both give the plain run's PNG. The planner's estimate is held within
 * 15% of the counted step, also where a CLIP tower (a ResNet's, a ViT's) makes its peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testmemory.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* One 128x128 run of 4 steps with 4 cutouts (memory_run). */
static int run(vqc_context *c, const char *name, squeeze *s, vqc_generate_result *res, char **png,
               size_t *n)
{
    return memory_run(c, "test-memory", name, 128, 4, 4, s, res, png, n);
}

static vqc_context *context(bool low_memory, bool auto_low, long long limit)
{
    return memory_context("cpu", low_memory, auto_low, limit);
}

static void same_png(const char *a, size_t na, const char *b, size_t nb, const char *what)
{
    if (na != nb || memcmp(a, b, na) != 0)
        TEST_FAIL("%s: the picture differs from the plain run's", what);
}

static void within_plan(const vqc_generate_result *r, const char *what)
{
    double step = (double)(r->peak_device_bytes - r->base_device_bytes);
    double ratio = step > 0 ? (double)r->planned_step_bytes / step : 0;
    if (ratio < 0.85 || ratio > 1.15)
        TEST_FAIL("%s: planned %.1f MiB, measured %.1f MiB (%.2f)", what,
                  r->planned_step_bytes / 1048576.0, step / 1048576.0, ratio);
}

/* One step of the fixture CLIP `clip_name` with tiny_vq at 64x64 with 32 cutouts, where the
 * CLIP tower, not the decoder, makes most of the step's peak. */
static void clip_step(const char *clip_name, bool low_memory, vqc_generate_result *res)
{
    vqc_context *c = memory_context_clip("cpu", clip_name, low_memory, false, 0);
    ASSERT_OK(memory_run(c, "test-memory", "clip-step.png", 64, 1, 32, NULL, res, NULL, NULL));
    ASSERT_EQ(res->low_memory, low_memory);
    fprintf(stderr, "%s 64x64, 32 cutouts%s: step planned %.1f MiB, measured %.1f MiB\n", clip_name,
            low_memory ? ", low memory" : "", res->planned_step_bytes / 1048576.0,
            (res->peak_device_bytes - res->base_device_bytes) / 1048576.0);
    vqc_free(c);
}

int main(void)
{
    vqc_log_set(test_log_sink, NULL, VQC_LOG_INFO);
    vqc_generate_result plain, low, res;
    char *png_plain, *png_low, *png;
    size_t n_plain, n_low, n;

    /* Loading the models onto the CPU checks libtorch's convolutions there first (the weights'
     * loading does, before any model runs one), or takes its own (VQCLIP_ONEDNN=0). */
    vqc_context *c = context(false, true, 0);
    ASSERT_EQ(vqt_cpu_conv_state(), -2);
    ASSERT_OK(vqc_load(c));
    const char *onednn = getenv("VQCLIP_ONEDNN");
    if (onednn && strcmp(onednn, "0") == 0)
        ASSERT_EQ(vqt_cpu_conv_state(), 1);
    else
        ASSERT(vqt_cpu_conv_state() != -2);

    /* the step measured: plainly, then with low memory asked for */
    ASSERT_OK(run(c, "plain.png", NULL, &plain, &png_plain, &n_plain));
    ASSERT(!plain.low_memory);
    vqc_free(c);
    c = context(true, true, 0);
    ASSERT_OK(run(c, "low.png", NULL, &low, &png_low, &n_low));
    ASSERT(low.low_memory);
    vqc_free(c);
    same_png(png_low, n_low, png_plain, n_plain, "--low-memory");
    fprintf(stderr, "128x128: step planned %.1f MiB, peak %.1f MiB; low memory %.1f, %.1f\n",
            plain.planned_step_bytes / 1048576.0, plain.peak_device_bytes / 1048576.0,
            low.planned_step_bytes / 1048576.0, low.peak_device_bytes / 1048576.0);
    /* the planner within 15% of both steps, whichever convolutions libtorch runs here
     * (test-memory-own-conv: its own, VQCLIP_ONEDNN=0) */
    within_plan(&plain, "the plain step");
    within_plan(&low, "the low-memory step");
    /* the limits below fall between the two, with room on both sides */
    ASSERT(low.planned_step_bytes < plain.planned_step_bytes * 0.85);
    ASSERT(low.peak_device_bytes < plain.peak_device_bytes * 0.85);

    /* A limit the plain step does not fit and the low-memory one does: chosen before the first
     * step, said once, and the same picture. */
    long long between =
        plain.base_device_bytes + (plain.planned_step_bytes + low.planned_step_bytes) / 2;
    c = context(false, true, between);
    ASSERT_OK(run(c, "auto.png", NULL, &res, &png, &n));
    ASSERT(res.low_memory);
    ASSERT_EQ(res.planned_step_bytes, low.planned_step_bytes);
    ASSERT(res.peak_device_bytes <= between);
    ASSERT(strstr(test_log(), "within the memory limit: computing with low memory instead"));
    same_png(png, n, png_plain, n_plain, "low memory chosen before the first step");
    free(png);
    vqc_free(c);

    /* ... refused instead without auto_low_memory, naming the limit */
    c = context(false, false, between);
    ASSERT_EQ(run(c, "refused.png", NULL, &res, &png, &n), VQC_ERR_NOMEM);
    ASSERT(strstr(vqc_last_error(), "size 128x128 needs about"));
    ASSERT(strstr(vqc_last_error(), "within the memory limit"));
    ASSERT(res.advice.known && !res.low_memory);
    vqc_free(c);

    /* ... and a limit below even the low-memory step */
    c = context(false, true, plain.base_device_bytes + low.planned_step_bytes / 2);
    ASSERT_EQ(run(c, "small.png", NULL, &res, &png, &n), VQC_ERR_NOMEM);
    ASSERT(strstr(vqc_last_error(), "within the memory limit"));
    vqc_free(c);

    /* A limit that comes after the plan (another process took the memory, say: here the
     * progress callback sets it after step 2): step 3 fails to allocate part-way and is taken
     * again with low memory, from the random state it began with. The limit is between the two
     * runs' peaks, which count from 0 here (the contexts before are freed). */
    squeeze s = {cpu, 2, (plain.peak_device_bytes + low.peak_device_bytes) / 2, 0};
    c = context(false, true, 0);
    ASSERT_OK(run(c, "retried.png", &s, &res, &png, &n));
    ASSERT_EQ(s.last, 4);
    ASSERT_EQ(res.steps, 4);
    ASSERT(res.low_memory);
    ASSERT(strstr(test_log(), "step 3: "));
    ASSERT(strstr(test_log(), "taking the step again with low memory"));
    same_png(png, n, png_plain, n_plain, "step 3 taken again with low memory");
    free(png);

    /* ... failing later in the step, after its cutouts drew their random numbers: just below
     * the plain step's peak, the decoder's forward pass fits (the failure names another part).
     * Not with libtorch's own convolutions: there the decoder's forward pass is the peak. */
    if (vqt_cpu_conv_check(NULL) != 1) {
        squeeze late = {
            cpu, 2, plain.peak_device_bytes - (plain.peak_device_bytes - low.peak_device_bytes) / 8,
            0};
        ASSERT_OK(run(c, "retried-late.png", &late, &res, &png, &n));
        fprintf(stderr, "%s", test_log());
        ASSERT(res.low_memory);
        ASSERT(strstr(test_log(), "taking the step again with low memory"));
        ASSERT(!strstr(test_log(), "step 3: VQGAN decode"));
        same_png(png, n, png_plain, n_plain, "step 3 taken again with low memory, late");
        free(png);
    } else {
        fprintf(stderr, "libtorch's own convolutions: no limit fails later than the decoder\n");
    }

    /* The next run of the same context plans without the limit (none: the last one is
     * lifted) and goes back to the context's own setting. */
    ASSERT_OK(run(c, "after.png", NULL, &res, &png, &n));
    ASSERT(!res.low_memory);
    same_png(png, n, png_plain, n_plain, "the run after");
    free(png);
    vqc_free(c);

    /* Without auto_low_memory the failed step ends the run as before. */
    c = context(false, false, 0);
    ASSERT_EQ(run(c, "failed.png", &s, &res, &png, &n), VQC_ERR_NOMEM);
    ASSERT(strstr(vqc_last_error(), "out of memory on cpu at 128x128"));
    ASSERT_EQ(res.steps, 2);
    ASSERT(!res.low_memory);
    vqc_free(c);

    /* The planner's count of the CLIP towers, within 15% too where they make the peak: a
     * ResNet's and a ViT's (their cutouts 64 and 32 pixels) */
    for (int low_memory = 0; low_memory < 2; low_memory++) {
        clip_step("clip/tiny_rn.pt", low_memory, &res);
        within_plan(&res, low_memory ? "tiny_rn's low-memory step" : "tiny_rn's step");
        clip_step("clip/tiny_vit.pt", low_memory, &res);
        within_plan(&res, low_memory ? "tiny_vit's low-memory step" : "tiny_vit's step");
    }

    /* the limit lifted for what follows; a negative one is bad usage */
    ASSERT_EQ(vqt_set_memory_limit(cpu, 0), 0);
    ASSERT(vqt_set_memory_limit(cpu, -1) != 0);
    vqc_context_params cp = vqc_context_default_params();
    cp.device = "cpu";
    cp.memory_limit = -1;
    ASSERT_EQ(vqc_init(&cp, &c), VQC_ERR_USAGE);

    free(png_plain);
    free(png_low);
    fprintf(stderr, "test-memory: OK\n");
    return 0;
}

/* What test-memory and test-gpu-memory share: contexts of the fixture models (tiny_vq,
 * tiny_vit or another CLIP fixture) with a memory limit, and runs whose progress callback sets a
 * limit between steps. */
#ifndef VQC_TESTMEMORY_H
#define VQC_TESTMEMORY_H

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "testhelp.h"
#include "torch/shim.h"
#include "vqclip.h"

/* The progress callback's job: after step `at`, hold `dev` to `limit` bytes and give the
 * allocator's unused blocks back (on CUDA; nothing to give on the CPU), so that the next step
 * needs new ones. `last` records the last step seen. */
typedef struct {
    vqt_device dev;
    int at;
    int64_t limit;
    int last;
} squeeze;

static inline void squeeze_on_step(int step, int total, const float *losses, int n, void *user)
{
    (void)total, (void)losses, (void)n;
    squeeze *s = user;
    s->last = step;
    if (step != s->at)
        return;
    ASSERT_EQ(vqt_set_memory_limit(s->dev, s->limit), 0);
    vqt_empty_cache(s->dev);
}

/* A context of tiny_vq and the CLIP fixture `clip_fixture` on `device` (one CPU thread on the
 * CPU) with these memory settings. */
static inline vqc_context *memory_context_clip(const char *device, const char *clip_fixture,
                                               bool low_memory, bool auto_low, long long limit)
{
    vqc_context_params cp = vqc_context_default_params();
    ASSERT(cp.auto_low_memory);                  /* the default */
    static char vq[4096], clip[4096], bpe[4096]; /* fixture_path's buffer is reused */
    snprintf(vq, sizeof vq, "%s", fixture_path("vqgan/tiny_vq.ckpt"));
    snprintf(clip, sizeof clip, "%s", fixture_path(clip_fixture));
    snprintf(bpe, sizeof bpe, "%s", fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    cp.vqgan = vq;
    cp.clip = clip;
    cp.bpe = bpe;
    cp.device = device;
    cp.n_threads = strcmp(device, "cpu") == 0 ? 1 : 0;
    cp.low_memory = low_memory;
    cp.auto_low_memory = auto_low;
    cp.memory_limit = limit;
    vqc_context *c = NULL;
    ASSERT_OK(vqc_init(&cp, &c));
    return c;
}

/* ... with tiny_vit, the CLIP fixture both memory tests run */
static inline vqc_context *memory_context(const char *device, bool low_memory, bool auto_low,
                                          long long limit)
{
    return memory_context_clip(device, "clip/tiny_vit.pt", low_memory, auto_low, limit);
}

/* One side x side run of `steps` steps with cutn cutouts (seed 7) into $VQCLIP_TMP/test/name,
 * squeezed by s when given; returns its status, with *res, and the PNG's bytes in *png when png
 * is given. A run that fails has written nothing. */
static inline int memory_run(vqc_context *c, const char *test, const char *name, int side,
                             int steps, int cutn, squeeze *s, vqc_generate_result *res, char **png,
                             size_t *n)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/%s", test_tmpdir(test), name);
    unlink(out);
    vqc_generate_params g = vqc_generate_default_params();
    g.prompts = "a red square";
    g.width = g.height = side;
    g.iterations = steps;
    g.save_every = 0;
    g.cutn = cutn;
    g.seed = 7;
    g.output = out;
    g.progress = s ? squeeze_on_step : NULL;
    g.user = s;
    test_log_clear();
    int rc = vqc_generate(c, &g, res);
    if (png)
        *png = rc == 0 ? read_file(out, n) : NULL;
    if (rc)
        ASSERT(access(out, F_OK) != 0); /* nothing written: the refusal comes first */
    return rc;
}

#endif

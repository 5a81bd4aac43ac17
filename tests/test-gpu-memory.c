/* A memory limit on a CUDA device (ctest label "gpu"; exits 77, skipped, when libtorch sees no
 * CUDA device; scripts/gpu-check.sh runs it): vqt_set_memory_limit holds the caching allocator
 * to its share of the card (an allocation beyond it fails as out of memory, one within it does
 * not, and 0 lifts it), and a run whose plain step the planner finds too large for the context's
 * memory_limit computes with low memory instead and finishes, as does one whose step fails
 * part-way under a limit set between steps (vqc_context_params.memory_limit, auto_low_memory).
 * test-memory checks the same on the CPU, bit for bit; VQCLIP_GPU_TEST_ON_CPU=1 runs this test's
 * logic on the CPU (ctest's test-gpu-memory-on-cpu). VQCLIP_GPU_INDEX=N tests cuda:N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testgpu.h"
#include "testmemory.h"
#include "vqclip.h"

/* An allocation beyond the limit fails as out of memory, one within it succeeds, and the device
 * is whole again once the limit is lifted. */
static void check_allocations(vqt_device dev)
{
    fprintf(stderr, "memory limit: allocations\n");
    vqt_synchronize(dev);
    int64_t held = vqt_allocated_bytes(dev), big = 64 << 20, small = 4 << 20; /* float32s */
    ASSERT_EQ(vqt_set_memory_limit(dev, held + ((int64_t)64 << 20)), 0);
    vqt_tensor *t = vqt_full(1, &big, 1.0, VQC_DTYPE_F32, dev); /* 256 MiB */
    ASSERT(t == NULL);
    fprintf(stderr, "  256 MiB beyond a limit 64 MiB above the %.1f MiB held: %s\n",
            held / 1048576.0, vqt_last_error());
    ASSERT(vqt_last_error_oom());
    t = vqt_full(1, &small, 2.0, VQC_DTYPE_F32, dev); /* 16 MiB */
    ASSERT(t != NULL);
    vqt_free(t);
    ASSERT_EQ(vqt_set_memory_limit(dev, 0), 0);
    t = vqt_full(1, &big, 3.0, VQC_DTYPE_F32, dev);
    ASSERT(t != NULL);
    vqt_free(t);
    ASSERT(vqt_set_memory_limit(dev, -1) != 0);
}

/* The runs' size: 512x512 on a device, where the tensors are large next to the caching
 * allocator's rounding (blocks of 1 to 10 MiB share 20 MiB segments) and the plain and
 * low-memory steps hundreds of MiB apart; 128x128 in the dry run, for the suite's time (the
 * CPU has no such rounding, and test-memory finds the two steps apart there at that size). */
static int side = 512;

/* One side x side run of 3 steps with 4 cutouts (memory_run), squeezed by s when given, which
 * finishes. */
static void generate_squeezed(vqc_context *c, const char *name, squeeze *s,
                              vqc_generate_result *res)
{
    ASSERT_OK(memory_run(c, "test-gpu-memory", name, side, 3, 4, s, res, NULL, NULL));
    ASSERT_EQ(res->steps, 3);
}

static void generate(vqc_context *c, const char *name, vqc_generate_result *res)
{
    generate_squeezed(c, name, NULL, res);
}

/* The planner's plain and low-memory steps at side x side, then a limit between them: the run
 * computes with low memory, says so, and finishes within the limit; then a limit that comes
 * between steps. */
static void check_auto_low_memory(vqt_device dev, const char *device)
{
    fprintf(stderr, "memory limit: low memory chosen before the first step\n");
    vqc_generate_result plain, low, res;
    vqc_context *c = memory_context(device, false, true, 0);
    generate(c, "plain.png", &plain);
    ASSERT(!plain.low_memory);
    vqc_free(c);
    c = memory_context(device, true, true, 0);
    generate(c, "low.png", &low);
    ASSERT(low.low_memory);
    vqc_free(c);
    long long limit =
        plain.base_device_bytes + (plain.planned_step_bytes + low.planned_step_bytes) / 2;
    fprintf(stderr,
            "  held %.1f MiB; step planned %.1f MiB (peak %.1f), low memory %.1f (peak %.1f); "
            "limit %.1f MiB\n",
            plain.base_device_bytes / 1048576.0, plain.planned_step_bytes / 1048576.0,
            plain.peak_device_bytes / 1048576.0, low.planned_step_bytes / 1048576.0,
            low.peak_device_bytes / 1048576.0, limit / 1048576.0);
    ASSERT(low.planned_step_bytes < plain.planned_step_bytes * 0.85);
    c = memory_context(device, false, true, limit);
    generate(c, "auto.png", &res);
    ASSERT(res.low_memory);
    ASSERT(strstr(test_log(), "computing with low memory instead"));
    fprintf(stderr, "  with the limit: peak %.1f MiB, low memory chosen\n",
            res.peak_device_bytes / 1048576.0);
    ASSERT(res.peak_device_bytes <= limit);
    vqc_free(c);

    /* A limit a quarter of the way from the low-memory run's peak to the plain one's, from
     * step 2 on: step 3 fails to allocate part-way (on CUDA the recorded graphs' pools hold
     * their memory, and the rest is given back) and is taken again with low memory, which fits
     * (its graphs recorded again, as at its own first step); the run finishes. The plain peak
     * includes the first step's recording, so the limit stays well below a later step's. */
    fprintf(stderr, "memory limit: a step that fails part-way, taken again with low memory\n");
    squeeze sq = {dev, 2,
                  low.peak_device_bytes + (plain.peak_device_bytes - low.peak_device_bytes) / 4, 0};
    c = memory_context(device, false, true, 0);
    generate_squeezed(c, "retried.png", &sq, &res);
    ASSERT_EQ(vqt_set_memory_limit(dev, 0), 0);
    const char *warning = strstr(test_log(), "taking the step again with low memory");
    fprintf(stderr, "  limit %.1f MiB from step 2: %s\n", sq.limit / 1048576.0,
            warning ? "step 3 taken again with low memory" : "no step failed");
    ASSERT(warning && res.low_memory);
    vqc_free(c);
}

int main(void)
{
    vqt_init(0);
    bool dry;
    vqt_device dev = gpu_test_device(&dry);
    char device[32] = "cpu";
    if (!dry)
        snprintf(device, sizeof device, "cuda:%d", dev.index);
    else
        side = 128;
    vqc_log_set(test_log_sink, NULL, VQC_LOG_INFO);
    fprintf(stderr, "libtorch %s, testing %s%s\n", vqt_version(), device, dry ? " (dry run)" : "");
    check_allocations(dev);
    check_auto_low_memory(dev, device);
    fprintf(stderr, "test-gpu-memory: ok%s\n", dry ? " (dry run on the CPU)" : "");
    return 0;
}

/* What the GPU tests (tests/test-gpu-*.c) share: the device they test. ctest's "gpu" label runs
 * them on a CUDA device (scripts/gpu-check.sh); with VQCLIP_GPU_TEST_ON_CPU=1 (ctest's
 * test-gpu-*-on-cpu, in every CPU run of the suite) they run their own logic on the CPU instead,
 * with or without a device, so that a bug in a test shows here, not in a device call. */
#ifndef VQC_TESTGPU_H
#define VQC_TESTGPU_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "torch/shim.h"

/* cuda:N (VQCLIP_GPU_INDEX, default 0), or with VQCLIP_GPU_TEST_ON_CPU=1 the CPU with *dry set.
 * Skips the test (exit 77) when libtorch sees no CUDA device and this is no dry run; fails it
 * for an index past the last device. */
static inline vqt_device gpu_test_device(bool *dry)
{
    const char *on_cpu = getenv("VQCLIP_GPU_TEST_ON_CPU"), *idx = getenv("VQCLIP_GPU_INDEX");
    *dry = on_cpu && strcmp(on_cpu, "1") == 0;
    if (*dry)
        return (vqt_device){VQT_DEVICE_CPU, 0};
    int count = vqt_cuda_device_count();
    if (count == 0)
        TEST_SKIP("no CUDA device (libtorch %s)", vqt_version());
    vqt_device dev = {VQT_DEVICE_CUDA, idx && *idx ? atoi(idx) : 0};
    if (dev.index < 0 || dev.index >= count)
        TEST_FAIL("VQCLIP_GPU_INDEX=%s: libtorch sees %d CUDA device(s)", idx, count);
    return dev;
}

#endif

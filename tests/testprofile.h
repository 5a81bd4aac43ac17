/* --profile's memory per stage, for test-shim (the CPU) and test-gpu-agreement (CUDA). */
#ifndef VQC_TESTPROFILE_H
#define VQC_TESTPROFILE_H

#include <stdio.h>
#include <stdlib.h>

#include "testhelp.h"
#include "torch/shim.h"

/* Two steps of two stages on dev, the second counted: the first stage keeps `keep` floats, the
 * second also makes `pass` floats for a while. Checks that the first stage held and reached
 * `keep`, and the second held `keep` and reached `keep + pass` (each within 64 KiB: the
 * allocator's figures, not the device's progress), and returns the profile (free it). */
static vqt_profile *check_profile_memory(vqt_device dev, int64_t keep, int64_t pass)
{
    vqt_profile *p = vqt_profile_new(dev, 2);
    ASSERT(p != NULL);
    for (int step = 0; step < 2; step++) {
        ASSERT_OK(vqt_profile_begin(p));
        vqt_tensor *kept = vqt_full(1, &keep, 1.0, VQC_DTYPE_F32, dev);
        ASSERT_OK(vqt_profile_mark(p, 0));
        vqt_free(vqt_full(1, &pass, 2.0, VQC_DTYPE_F32, dev));
        ASSERT_OK(vqt_profile_mark(p, 1));
        ASSERT_OK(vqt_profile_end(p, step == 1));
        vqt_free(kept);
    }
    long long held0, high0, held1, high1, slack = 64 << 10;
    ASSERT_EQ(vqt_profile_memory(p, 0, &held0, &high0), 1);
    ASSERT_EQ(vqt_profile_memory(p, 1, &held1, &high1), 1);
    fprintf(stderr, "  profile memory: held %lld, %lld; highest %lld, %lld bytes\n", held0, held1,
            high0, high1);
    ASSERT(llabs(held0 - keep * 4) <= slack && llabs(high0 - keep * 4) <= slack);
    ASSERT(llabs(held1 - keep * 4) <= slack && llabs(high1 - (keep + pass) * 4) <= slack);
    ASSERT_EQ(vqt_profile_memory(p, 2, &held0, &high0), -1);
    return p;
}

#endif

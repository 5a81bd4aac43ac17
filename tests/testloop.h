/* The loop settings the reference loop fixtures (../shared/fixtures/loop) were computed with,
 * shared by the tests that replay them (test-loop on the CPU, test-gpu-agreement on CUDA). */
#ifndef VQC_TESTLOOP_H
#define VQC_TESTLOOP_H

#include "gen/loop.h"

/* 48x32, MSE weight 0.3, two pooling cutouts of 32 without noise or augmentations. */
static inline vqc_loop_params fixture_loop_params(void)
{
    vqc_loop_params p = vqc_loop_default_params();
    p.width = 48;
    p.height = 32;
    p.init_weight = 0.3;
    p.cut.cut_size = 32;
    p.cut.cut_noise = 0;
    p.cut.augments.n = 0;
    p.cut.method = VQC_CUT_POOLING;
    p.cut.cutn = 2;
    return p;
}

#endif

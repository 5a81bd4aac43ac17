/* TEMPORARY (removed when the tools API lands): the device pick that reconstruct and score
 * still call. */
#include <stdio.h>

#include "cli/common.h"
#include "torch/shim.h"
#include "util/error.h"

int cli_pick_device(const char *opt, vqt_device *out);
int cli_pick_device(const char *opt, vqt_device *out)
{
    vqt_init(0);
    if (!opt) {
        *out = (vqt_device){vqt_cuda_device_count() > 0 ? VQT_DEVICE_CUDA : VQT_DEVICE_CPU, 0};
        if (out->type == VQT_DEVICE_CPU)
            vqc_log(VQC_LOG_INFO, "no CUDA device found: running on the CPU");
        return 0;
    }
    int rc = vqt_device_parse(opt, out);
    if (rc != 0) {
        fprintf(stderr, "vqclip: error: %s\n", vqt_last_error());
        return rc == -2 ? 3 : 1;
    }
    return 0;
}

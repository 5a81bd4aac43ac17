/* The device and the default models of the tools (reconstruct, score): see tools.h. */
#include "gen/tools.h"

#include <stdio.h>

#include "gen/cpu_share.h"
#include "gen/modelpath.h"
#include "util/error.h"

int vqc_device_resolve(const char *name, vqt_device *out)
{
    if (!name) {
        *out = (vqt_device){vqt_cuda_device_count() > 0 ? VQT_DEVICE_CUDA : VQT_DEVICE_CPU, 0};
        return 0;
    }
    int rc = vqt_device_parse(name, out);
    if (rc != 0) /* -2: a CUDA device that is not there is a device failure, not a usage error */
        return vqc_error_set(rc == -2 ? VQC_ERR_RUNTIME : VQC_ERR_USAGE, "%s", vqt_last_error());
    return 0;
}

int vqc_tool_device(const char *name, vqt_device *out)
{
    vqc_cpu_init_threads(0);
    int rc = vqc_device_resolve(name, out);
    if (rc == 0 && !name && out->type == VQT_DEVICE_CPU)
        vqc_log(VQC_LOG_INFO, "no CUDA device found: running on the CPU");
    return rc;
}

int vqc_tool_model(vqc_model_kind kind, const char *name, char *path, size_t len)
{
    bool vqgan = kind == VQC_MODEL_VQGAN;
    char demo[4000]; /* room for "/" and a file name in the callers' 4096-byte paths */
    /* A tool uses one model, so it takes the demo set's alone: nothing to keep from mixing. */
    if (!name && vqc_demo_fallback(demo, sizeof demo)) {
        vqc_log(VQC_LOG_WARN,
                "no downloaded models found: using the small demo %s in %s; "
                "scripts/download-models.sh fetches the real one",
                vqgan ? "VQGAN" : "CLIP", demo);
        snprintf(path, len, "%s/%s", demo, vqgan ? VQC_DEMO_VQGAN : VQC_DEMO_CLIP);
        return 0;
    }
    if (!name)
        name = vqgan ? VQC_DEFAULT_VQGAN : VQC_DEFAULT_CLIP;
    return vqc_model_find(kind, name, path, len);
}

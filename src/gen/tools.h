/* What the tools of include/vqclip.h (reconstruct, score) share: the device they compute on and
 * the model files they use when none is named. Not part of the public API. */
#ifndef VQC_GEN_TOOLS_H
#define VQC_GEN_TOOLS_H

#include <stddef.h>

#include "torch/shim.h"
#include "vqclip.h"

/* A device name as vqc_init() and the tools read it: NULL is CUDA when available, else the CPU.
 * Returns 0 and *out, VQC_ERR_USAGE for a name that is no device, or VQC_ERR_RUNTIME for a CUDA
 * device that is not present. */
int vqc_device_resolve(const char *name, vqt_device *out);

/* Starts libtorch's CPU threads (all cores) and resolves the device (vqc_device_resolve), with
 * the notice "no CUDA device found: running on the CPU" at INFO level when none was named. */
int vqc_tool_device(const char *name, vqt_device *out);

/* The file of the VQGAN or CLIP `name` (a name or a path, found with vqc_model_find). NULL
 * means the default model, or the demo set's model (with a one-line notice) when no downloaded
 * default is found (vqc_demo_fallback). Writes the path into path and returns 0, or VQC_ERR_IO
 * with the lookup's message. */
int vqc_tool_model(vqc_model_kind kind, const char *name, char *path, size_t len);

/* Whether dev computes in element type dt right (to 1%): one of libtorch's elementwise kernels, a
 * 64x64 matrix product and a 3x3 convolution of small whole numbers (vqc_cuda_device_check's
 * test, on any device). Returns 0, or -1 with the reason, the type named first ("bfloat16:
 * ..."), in msg. */
int vqc_device_compute_check(vqt_device dev, vqc_dtype dt, char *msg, size_t len);

#endif

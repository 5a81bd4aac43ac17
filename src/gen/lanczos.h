/* Lanczos resampling of stored pixels, for the upscaler's --outscale (docs/upscale.md compares
 * it with OpenCV's INTER_LANCZOS4). */
#ifndef VQC_GEN_LANCZOS_H
#define VQC_GEN_LANCZOS_H

#include "io/image.h"

/* Resizes `in` to ow x oh with a separable Lanczos kernel of 4 lobes (a = 4), pixel centres
 * aligned ((x + 0.5) * in / out - 0.5), edge pixels repeated past the border, the kernel widened
 * by in / out when shrinking (so a reduction averages instead of aliasing). Samples are rounded
 * to the nearest integer and clamped to the depth's range. *out gets in's channels and depth
 * (free with vqc_raw_image_free). Returns 0, VQC_ERR_USAGE (a side below 1) or VQC_ERR_NOMEM. */
int vqc_lanczos_resize(const vqc_raw_image *in, int ow, int oh, vqc_raw_image *out);

#endif

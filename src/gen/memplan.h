/* Memory planning for a generation: how much one optimisation step needs at a given size, how
 * much the device has, and what size would fit. Used to refuse an image that cannot fit before
 * anything is allocated, and to turn an out-of-memory failure into advice.
 *
 * The estimate counts the activations that one step keeps for its backward pass (VQGAN
 * decoder at the image size, augmentation and cutouts, CLIP image tower over the cutouts) plus
 * the gradients in flight, in float32; it is meant to be within a factor of about two of the
 * real peak on top of the loaded models, so it is used only to refuse sizes that clearly do
 * not fit. */
#ifndef VQC_GEN_MEMPLAN_H
#define VQC_GEN_MEMPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "models/clip.h"
#include "models/vqgan.h"
#include "torch/shim.h"

/* What one step computes, apart from the image size. */
typedef struct {
    const vqc_vqgan_info *vi;
    const vqc_clip_info *ci;
    int cutn;          /* cutouts per step */
    int cut_size;      /* their side (0 = CLIP's input resolution) */
    bool low_memory;   /* decoder checkpointed (vqc_vqgan_set_low_memory) */
    int decoder_bytes; /* bytes per decoder activation (2: bfloat16 decoder); 0 means 4 */
    int clip_bytes;    /* bytes per CLIP activation (2: float16 CLIP); 0 means 4 */
} vqc_memplan_step;

/* Estimated bytes one step needs beyond the loaded models, for a w x h image (multiples of the
 * VQGAN factor). */
int64_t vqc_memplan_step_bytes(const vqc_memplan_step *st, int w, int h);

/* Bytes this process can still allocate on dev: on the CPU the smaller of MemAvailable and
 * what RLIMIT_AS leaves; on a CUDA device its free memory. -1 when unknown. */
int64_t vqc_memplan_available(vqt_device dev);

/* The largest size with the aspect ratio of w x h (multiples of the VQGAN factor) whose
 * estimate is at most `bytes`; writes 0 x 0 when not even one latent cell fits. */
void vqc_memplan_fit(const vqc_memplan_step *st, int w, int h, int64_t bytes, int *fit_w,
                     int *fit_h);

/* Refuses (VQC_ERR_NOMEM, with a message naming the size, the estimate, what is available and
 * the size that would fit) when the estimate exceeds what dev has; 0 otherwise, or when the
 * available memory is unknown. */
int vqc_memplan_check(const vqc_memplan_step *st, vqt_device dev, int w, int h);

/* Whether an error message reads as an allocation failure (CUDA or CPU out of memory). */
int vqc_memplan_is_oom(const char *message);

/* Re-records the current error, an allocation failure at w x h on dev, as VQC_ERR_NOMEM with
 * the size that would fit in what dev has now; `kept` (may be NULL) names the last snapshot
 * kept. Returns VQC_ERR_NOMEM. */
int vqc_memplan_oom_error(const vqc_memplan_step *st, vqt_device dev, int w, int h,
                          const char *kept);

#endif

/* Memory planning for a generation: how much one optimisation step needs at a given size, how
 * much the device has, and what size would fit. Used to refuse an image that cannot fit before
 * anything is allocated, and to turn an out-of-memory failure into advice.
 *
 * The estimate counts the activations that one step keeps for its backward pass (VQGAN
 * decoder at the image size, augmentation and cutouts, CLIP image tower over the cutouts, each
 * CLIP model's over its own cutouts) plus the gradients in flight, at each model's width. On
 * the CPU it follows what was measured there (within a few percent on the full-size models,
 * memplan.c); on CUDA it is an upper estimate until the device's parts are measured. */
#ifndef VQC_GEN_MEMPLAN_H
#define VQC_GEN_MEMPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "models/clip.h"
#include "models/vqgan.h"
#include "torch/shim.h"
#include "vqclip.h"

/* What one step computes, apart from the image size. */
typedef struct {
    const vqc_vqgan_info *vi;
    const vqc_clip_info *ci;
    int cutn;                 /* cutouts per step */
    int cut_size;             /* their side (0 = CLIP's input resolution) */
    bool low_memory;          /* decoder checkpointed (vqc_vqgan_set_low_memory) */
    int decoder_bytes;        /* bytes per decoder activation (2: bfloat16 decoder); 0 means 4 */
    int clip_bytes;           /* bytes per CLIP activation (2: float16 CLIP); 0 means 4 */
    double shape_cut_tensors; /* float32 tensors of the cutouts' size the shaping losses keep */
    double shape_img_tensors; /* ... and of the picture's size (vqc_shape_losses_memory) */
    /* Several CLIP models (vqc_context_params.clip lists them): the ones after ci, each with
     * its own cutn cutouts at cut_size or else its own input resolution. Their weights are
     * loaded with the models, before the estimate is compared with what the device has left. */
    int n_more_clips;
    const vqc_clip_info *more_clips[VQC_MAX_CLIPS - 1];
    bool on_cpu; /* the step runs on the CPU, whose autograd's keeps were measured (memplan.c) */
    /* the decoder's attention over at least this many cells keeps no scores (-1: none; on CUDA,
     * vqc_vqgan_fused_attention_from) */
    int64_t fused_attention_from;
    /* A memory limit (vqc_context_params.memory_limit): what it leaves the step, the limit less
     * what the device held when the run began; the device's free memory counts only below it */
    bool limited;
    int64_t limit_left;
    /* On the CPU: libtorch's own convolutions, not oneDNN's (vqt_cpu_conv_check returned 1),
     * whose unfolded inputs make the peak at small pictures */
    bool own_convs;
    /* every CLIP image tower's attention runs fused and keeps no scores
     * (vqc_clip_fused_attention); where one model's check kept it off, all are counted unfused,
     * the larger estimate */
    bool clip_fused;
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

/* What would fit instead (include/vqclip.h's vqc_memory_advice, without the kept file). */
typedef struct {
    bool known;                /* the device's free memory is known: the rest is filled */
    int fit_width, fit_height; /* the largest size of w x h's shape that fits; 0: none */
    bool fewer_cutn;           /* more than 8 cutouts were asked for: fewer would help */
    bool low_memory;           /* the size asked for would fit with low_memory */
} vqc_memplan_advice;

/* What the step may use on dev: vqc_memplan_available(), within the limit when st has one; -1
 * when unknown. */
int64_t vqc_memplan_step_available(const vqc_memplan_step *st, vqt_device dev);

/* Advice for a w x h step on dev with what dev has now (within the limit), keeping a fifth in
 * reserve; when
 * `failed` (an allocation failed at that size), with at most 3/4 of what the step needed. */
void vqc_memplan_advise(const vqc_memplan_step *st, vqt_device dev, int w, int h, bool failed,
                        vqc_memplan_advice *out);

/* Refuses (VQC_ERR_NOMEM, with a message naming the size, the estimate and what is available
 * on dev, and the limit when that is what binds; vqc_memplan_advise() says what would fit) when
 * the estimate exceeds what the step may use; 0 otherwise, or when that is unknown. */
int vqc_memplan_check(const vqc_memplan_step *st, vqt_device dev, int w, int h);

/* Re-records the current error, an allocation failure at w x h on dev, as VQC_ERR_NOMEM
 * ("out of memory on DEV at WxH (the original message)"). Returns VQC_ERR_NOMEM. */
int vqc_memplan_oom_error(vqt_device dev, int w, int h);

#endif

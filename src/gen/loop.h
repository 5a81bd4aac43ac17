/* The VQGAN + CLIP optimisation loop of the seed notebook ("z + quantize").
 *
 *   vqc_loop_params p = vqc_loop_default_params();
 *   p.width = 256; p.height = 256; p.seed = 42;
 *   vqc_loop *L;
 *   vqc_loop_create(&p, vqgan, clip, &L);             // models are borrowed, must outlive L
 *   vqc_loop_add_text_prompt(L, tok, "a red fox", 1.0, -INFINITY);
 *   vqc_loop_init_random(L);                           // or _init_image / _init_noise / _set_z
 *   for (int i = 0; i < p.iterations; i++) vqc_loop_step(L, losses);
 *   vqt_tensor *img = vqc_loop_image(L);               // [1,3,H,W] in [0,1]
 *   vqc_loop_free(L);
 *
 * One step: z_q = nearest codebook entries of z (straight-through); img =
 * clamp_with_grad((decode(z_q) + 1) / 2, 0, 1); cutouts (+ augmentations, noise); CLIP
 * normalisation; image embedding; loss = MSE term + sum over prompts of
 * |w| * mean(sign(w) * 2 asin(|a - b| / 2)^2) with the stop applied as the notebook does,
 * plus the shaping losses (gen/losses.h) that are on; backward; optimiser step (at the
 * scheduled learning rate); z clamped to the codebook's per-channel [min, max]; the moving
 * average of z updated when there is one.
 *
 * Several CLIP models (pixray's -m A,B:0.5): vqc_loop_add_clip() adds models after the one given
 * to vqc_loop_create(), before any prompt. Every prompt is then embedded by each model, each
 * model scores its own cutouts (p.cut with its own side: p.cut.cut_size when set, else its input
 * resolution; cutn each), and a prompt's loss is sum_k weight_k * loss_k. The models' random
 * draws (cutouts, augmentations, noise) come one after the other from the loop's generator, in
 * model order; with the explicit boxes of vqc_cutout_params there are none, and the loss and
 * dL/dz are exactly the weighted sums of the single-model runs'. One model of weight 1 computes
 * what it always did, operation for operation. */
#ifndef VQC_GEN_LOOP_H
#define VQC_GEN_LOOP_H

#include <stdint.h>

#include "gen/cutouts.h"
#include "gen/losses.h"
#include "gen/optim.h"
#include "io/image.h"
#include "models/clip.h"
#include "models/tokenizer.h"
#include "models/vqgan.h"
#include "vqclip.h"

/* vqc_mse_mode and vqc_init_noise are public (include/vqclip.h). */

typedef struct vqc_loop_params {
    int width, height; /* image size; must be multiples of the VQGAN's factor */
    double lr;         /* 0.1 */
    vqc_optim_kind optimiser;
    double init_weight; /* 0: no MSE term */
    vqc_mse_mode mse_mode;
    int mse_decay_every;   /* stepped mode: 50 */
    int mse_epochs;        /* stepped mode: 5 */
    vqc_cutout_params cut; /* cut_size 0 = the CLIP model's input resolution */
    uint64_t seed;
    vqc_shape_losses shape;      /* pixray's shaping terms (gen/losses.h); all 0: none */
    vqc_lr_schedule lr_schedule; /* VQC_LR_CONSTANT: the optimiser keeps lr */
    int lr_step_every;           /* step schedule: lr * factor^(step / every) */
    double lr_step_factor;
    double lr_floor;    /* cosine schedule: the rate at the last iteration */
    int iterations;     /* the run's length, for the cosine schedule */
    double ema;         /* decay of the moving average of z (0: none); see vqc_loop_output_image */
    double clip_weight; /* the factor on the losses of vqc_loop_create's CLIP model (> 0; 0
                         * means 1) */
} vqc_loop_params;

typedef struct vqc_loop vqc_loop;

/* Defaults: 256x256, Adam lr 0.1, no MSE term, the seed's pooling cutouts (32, augmented,
 * noise 0.1), seed 0. */
vqc_loop_params vqc_loop_default_params(void);

/* Creates a loop over borrowed models. Seeds libtorch with p->seed. Returns 0 or a negative
 * VQC_ERR_* (bad size, models on different devices). */
int vqc_loop_create(const vqc_loop_params *p, const vqc_vqgan *vqgan, const vqc_clip *clip,
                    vqc_loop **out);
void vqc_loop_free(vqc_loop *L);

/* Adds a CLIP model (borrowed, on the loop's device) whose prompt losses, times weight (> 0),
 * join the first model's. Call before any prompt is added. Returns 0 or VQC_ERR_USAGE (a
 * prompt exists already, more than VQC_MAX_CLIPS models, a bad weight, another device) /
 * VQC_ERR_MODEL. */
int vqc_loop_add_clip(vqc_loop *L, const vqc_clip *clip, double weight);
/* The CLIP models guiding the loop (1 + those added). */
int vqc_loop_clip_count(const vqc_loop *L);

/* ---- prompts (embedded once, before the first step) ---- */

/* A prompt given by its embedding(s) [M, D] or [D] (copied); the loop must have one CLIP
 * model. */
int vqc_loop_add_embed_prompt(vqc_loop *L, const vqt_tensor *embed, double weight, double stop);
/* The same with one embedding per CLIP model, in their order (n must be the model count). */
int vqc_loop_add_embed_prompts(vqc_loop *L, const vqt_tensor *const *embeds, int n, double weight,
                               double stop);
/* Text prompt: tokenized once (truncated with a warning when too long; again only for a model
 * of another context length) and encoded by each CLIP model. */
int vqc_loop_add_text_prompt(vqc_loop *L, const vqc_tokenizer *tok, const char *text, double weight,
                             double stop);
/* Image prompt: resized to the output size, cut out like the generated image (per model, at
 * its side), CLIP-encoded. */
int vqc_loop_add_image_prompt(vqc_loop *L, const vqc_image *img, double weight, double stop);
/* Noise prompt: a standard normal embedding drawn from `seed` (for each model, of its size). */
int vqc_loop_add_noise_prompt(vqc_loop *L, uint64_t seed, double weight);
/* Removes all prompts. */
void vqc_loop_clear_prompts(vqc_loop *L);
/* Keeps the first n prompts and removes the rest (story mode swaps its text prompts). */
void vqc_loop_truncate_prompts(vqc_loop *L, int n);
int vqc_loop_prompt_count(const vqc_loop *L);

/* ---- the initial z (call one; it also (re)creates the optimiser) ---- */

/* Random codebook entries drawn from the loop's generator. */
int vqc_loop_init_random(vqc_loop *L);
/* The VQGAN encoding (encoder, quant_conv, quantise) of `img` resized to the output size. */
int vqc_loop_init_image(vqc_loop *L, const vqc_image *img);
/* The encoding of a random noise (VQC_NOISE_PIXELS) or gradient (VQC_NOISE_GRADIENT) image. */
int vqc_loop_init_noise(vqc_loop *L, vqc_init_noise kind);
/* Zoom videos: z becomes the encoding of the image x01 [1, 3, H, W] in [0, 1], the optimiser
 * starts afresh and the MSE anchor moves there, as the peer re-encodes each zoomed frame; the
 * step count is kept. */
int vqc_loop_reencode(vqc_loop *L, const vqt_tensor *x01);
/* A given z [1, embed_dim, H/f, W/f] (copied). */
int vqc_loop_set_z(vqc_loop *L, const vqt_tensor *z);

/* ---- running ---- */

/* One optimisation step. losses (may be NULL) receives 1 + prompt-count values: the MSE term
 * plus the shaping losses (0 without any), then each prompt's loss, as computed before the
 * update. Returns 0 or a negative code (VQC_ERR_RUNTIME for a libtorch failure or a non-finite
 * loss). With losses given, a step whose loss is not finite leaves z, the optimiser and the
 * moving average as they were; without, nothing is read back and the update is not checked. */
int vqc_loop_step(vqc_loop *L, float *losses);

/* After a vqc_loop_step that failed: whether it failed before it changed z, the optimiser or the
 * moving average, so that the same step may be taken again (vqc_loop_prepare_retry). */
bool vqc_loop_step_untouched(const vqc_loop *L);

/* Readies the loop to take a step that failed untouched again: clears z's gradient, in case the
 * backward pass got that far, and frees the recorded CUDA graphs with the memory their pools
 * hold (they are recorded again where they still apply: not the decoder's in low-memory mode). */
void vqc_loop_prepare_retry(vqc_loop *L);

/* With several CLIP models, each model's part of the last step's loss (its weight times its
 * prompt losses summed), read with its losses: writes vqc_loop_clip_count() values into out and
 * returns that count; 0 (nothing written) with one model, or before a step asked for losses. */
int vqc_loop_clip_losses(const vqc_loop *L, float *out);

/* Steps done so far. */
int vqc_loop_steps(const vqc_loop *L);

/* The image of the current z, [1, 3, H, W] in [0, 1] (new handle, no gradient). */
vqt_tensor *vqc_loop_image(const vqc_loop *L);

/* The picture to write: the image of the moving average of z when p.ema > 0 or in stepped mode
 * (decay p.ema, else the notebook's 0.99; bias-corrected,
 * as Katherine Crowson's EMATensor: biased = d * biased + (1 - d) * z after each step,
 * average = biased / (1 - d^(updates + 1)), reset to z whenever z is set), else
 * vqc_loop_image(). New handle, no gradient. */
vqt_tensor *vqc_loop_output_image(const vqc_loop *L);

/* The learning rate step `step` (0-based) uses under p's schedule. */
double vqc_loop_lr_at(const vqc_loop_params *p, int step);

/* The moving average's state: the biased sum (borrowed; NULL without one) and d^(updates+1).
 * vqc_loop_set_ema restores them (copied) after vqc_loop_restore. */
void vqc_loop_ema_state(const vqc_loop *L, const vqt_tensor **biased, double *accum);
int vqc_loop_set_ema(vqc_loop *L, const vqt_tensor *biased, double accum);

/* The MSE term's state: the anchor (borrowed), the stepped mode's current weight and rounds. */
void vqc_loop_mse_state(const vqc_loop *L, const vqt_tensor **anchor, double *weight, int *rounds);

/* Restores a saved run: z, the step count and the MSE state (the optimiser's state is restored
 * through vqc_loop_optimiser()). Call after one of the init functions. Returns 0 or a code. */
int vqc_loop_restore(vqc_loop *L, const vqt_tensor *z, int step, const vqt_tensor *anchor,
                     double mse_weight, int mse_rounds);

/* ---- profiling ---- */

/* The stages of a step as vqc_loop_step marks them in a profile, in order. */
#define VQC_LOOP_PROFILE_STAGES 10
extern const char *const vqc_loop_profile_stages[VQC_LOOP_PROFILE_STAGES];

/* Times every later step by stage into prof (borrowed, made with VQC_LOOP_PROFILE_STAGES
 * stages on the loop's device; NULL stops). The first two steps after this call are warm-up:
 * timed, not counted. Profiling adds one wait for the device per step. */
void vqc_loop_set_profile(vqc_loop *L, vqt_profile *prof);

/* How the decoder and the CLIP image encoders ran so far (all models): calls that replayed
 * their recorded CUDA graphs and calls that ran eagerly (vqt_graphed_call). */
void vqc_loop_graph_counts(const vqc_loop *L, long long *replays, long long *eager);

/* Borrowed views: the latent z, and the gradient dL/dz of the last step (NULL before). */
const vqt_tensor *vqc_loop_z(const vqc_loop *L);
const vqt_tensor *vqc_loop_last_grad(const vqc_loop *L);
vqc_optim *vqc_loop_optimiser(vqc_loop *L);

#endif

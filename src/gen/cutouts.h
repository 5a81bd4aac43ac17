/* Cutouts: the batch of cut_size x cut_size views of the generated image that CLIP scores.
 *
 *   vqc_cutout_params cp = vqc_cutout_default_params();
 *   cp.cut_size = 224;                                   // CLIP's input resolution
 *   vqt_tensor *cuts = vqc_make_cutouts(&cp, img);       // img [1,3,H,W] in [0,1]
 *   ...                                                  // cuts [cutn,3,224,224]
 *   vqt_free(cuts);
 *
 * Methods (the seed notebook's MakeCutouts and nerdyrodent generate.py's --cut_method):
 *   pooling   every cutout is (adaptive_avg_pool(img, S) + adaptive_max_pool(img, S)) / 2 of
 *             the whole image; then augmentation, then noise. Peer names: "latest" (its
 *             default; pooling + selectable augments) and "updatedpooling" (the peer uses a fixed
 *             augment list there; here the list is always `augments`).
 *   original  random squares: size = int(rand^cut_pow * (max_size - min_size) + min_size) with
 *             max_size = min(H, W), min_size = min(H, W, S); offsets randint(0, W - size + 1)
 *             and randint(0, H - size + 1); each cropped and vqc_resample()d to S x S; cat;
 *             clamp_with_grad to [0, 1]; then augmentation, then noise. Peer names: "original"
 *             (the notebook: no augments, no noise: set augments.n = 0, cut_noise = 0), "updated"
 *             and "nrupdated" (random squares + augments + noise, the peer's defaults here).
 *   Noise: a factor uniform in [0, cut_noise) per cutout times standard normal noise, added.
 *
 * Randomness: the crop sizes and offsets of "original" are drawn one scalar at a time from the
 * CPU generator in the notebook's order (rand, randint x, randint y per cutout) and read on the
 * host, as the notebook does; augmentations and noise are drawn as tensors on the image's
 * device. vqt_manual_seed() therefore reproduces a run.
 *
 * All results are new handles the caller frees; every step is differentiable in img. */
#ifndef VQC_GEN_CUTOUTS_H
#define VQC_GEN_CUTOUTS_H

#include "gen/augment.h"
#include "torch/shim.h"
#include "vqclip.h" /* vqc_cut_method, vqc_cut_method_parse(), vqc_cut_method_name() */

typedef struct vqc_cutout_params {
    vqc_cut_method method;
    int cut_size;              /* S: side of every cutout (CLIP's input resolution), >= 2 */
    int cutn;                  /* number of cutouts (ignored when boxes are given) */
    double cut_pow;            /* original: exponent on the size draw (> 1 favours small cutouts) */
    double cut_noise;          /* per-cutout noise scale; 0 disables */
    vqc_augment_list augments; /* applied in order; n == 0: none */
    double aug_prob; /* 0: each augmentation's own probability; > 0: this for all (tests) */
    /* Test hook: nboxes explicit [x, y, size] triples. One cutout per box, cropped
     * img[:, :, y:y+size, x:x+size], resampled to S, clamp_with_grad; no randomness, no
     * augmentation, no noise; `method` is ignored. NULL / 0 for the random methods. */
    const int *boxes;
    int nboxes;
} vqc_cutout_params;

/* pooling, cut_size 224, cutn 32, cut_pow 1, cut_noise 0.1, augments Af,Pe,Ji,Er, aug_prob 0,
 * no boxes. */
vqc_cutout_params vqc_cutout_default_params(void);

/* Makes the cutouts of img [1, C, H, W] (differentiable, any device): a new [cutn or nboxes, C,
 * S, S] tensor, or NULL + vqc_error_set (VQC_ERR_USAGE for bad parameters or a box outside the
 * image, VQC_ERR_RUNTIME for a libtorch failure). Augmentations need C == 3. */
vqt_tensor *vqc_make_cutouts(const vqc_cutout_params *p, const vqt_tensor *img);

/* The notebook's resample(x, (oh, ow)), exactly: x [N, C, H, W] viewed as [N*C, 1, H, W]; when
 * oh < H a Lanczos-2 kernel for the ratio oh/H (built in float32 as the notebook builds it) is
 * applied down the rows after reflect padding, likewise along the columns when ow < W; then
 * bicubic interpolation to oh x ow with align_corners=True. Requires H and W larger than the
 * kernel's padding when shrinking (about 2H/oh). A new tensor, or NULL + vqc_error_set. */
vqt_tensor *vqc_resample(const vqt_tensor *x, int oh, int ow);

#endif

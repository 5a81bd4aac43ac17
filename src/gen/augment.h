/* Random, differentiable augmentation of a batch of cutouts, on the batch's device.
 *
 *   unsigned mask;
 *   if (vqc_augments_parse("Af,Pe,Ji,Er", &mask) != 0) -> vqc_error_get()
 *   vqt_tensor *y = vqc_augment_apply(cutouts, mask, 0.0);   // [N,3,S,S] -> [N,3,S,S]
 *
 * The codes are nerdyrodent's generate.py names (its -aug option, case-insensitive here). Each
 * augmentation is drawn independently per cutout and applied with a probability (the peer's
 * kornia settings: 0.7, or 0.5 for Sh, Gn, Hf, Cr and Re); a positive `prob` overrides them all
 * (tests use 1). Randomness comes from libtorch's default generator for the batch's device, drawn
 * as device tensors (no host round trip), so vqt_manual_seed() reproduces a call sequence.
 *
 * Order. The geometric augmentations are composed into ONE homography per cutout and applied by
 * ONE bilinear sampling pass with zero padding, in this order of application to the image:
 *   Re (random resized crop)  Cr (random crop)  Af (affine)  Ro (rotation)  Pe (perspective)
 *   Hf (horizontal flip)
 * then the photometric ones, each on the warped batch:
 *   Ji (colour jitter)  Sh (sharpness)  Gn (Gaussian noise)  Er (random erasing).
 *
 * Parameters (coordinates are normalised: the cutout spans [-1, 1] on each axis, centre 0):
 *   Af  rotation U(-15, 15) deg, shear along x U(-5, 5) deg, translation U(-0.1, 0.1) of the size
 *       on each axis (kornia RandomAffine(degrees=15, translate=0.1, shear=5))
 *   Ro  rotation U(-15, 15) deg
 *   Pe  each corner moves inwards by U(0, 0.7) of the half-size on each axis (kornia
 *       RandomPerspective(distortion_scale=0.7)); the square-to-quad homography in closed form
 *   Hf  mirror x
 *   Cr  the peer's kornia RandomCrop(size=cut_size) is a no-op on a cut_size input; here it is
 *       a crop from the input zero-padded by 0.1 of the size, i.e. a shift by U(-0.1, 0.1) of the
 *       size on each axis
 *   Re  area U(0.1, 1) of the cutout, aspect ratio log-uniform in (3/4, 4/3), each side clipped
 *       to the full size, centre uniform over the valid positions, resized back to S x S
 *   Ji  brightness: add U(-0.1, 0.1); contrast: scale about the mean luma by U(0.9, 1.1);
 *       saturation: blend with luma by U(0.9, 1.1); hue: rotate the chroma plane of YIQ by
 *       U(-0.1, 0.1) of a turn (a 3x3 colour matrix, so exactly differentiable). Fixed order,
 *       one shared probability, no clamping.
 *   Sh  unsharp mask: x + f * (x - blur(x)), f ~ U(0, 0.3), blur the 3x3 kernel
 *       [1 1 1; 1 5 1; 1 1 1] / 13 with replicated borders
 *   Gn  adds VQC_AUG_GN_STD * N(0, 1) (the peer's kornia std 1.0 drowns a [0, 1] image)
 *   Er  multiplies by a 0/1 mask that is 0 on one rectangle of area U(0.1, 0.4) of the cutout and
 *       aspect ratio log-uniform in (0.3, 3.3), placed uniformly (per cutout, unlike the peer's
 *       same_on_batch=True)
 * Values may leave [0, 1]; gradients reach the input through every step. */
#ifndef VQC_GEN_AUGMENT_H
#define VQC_GEN_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "torch/shim.h"
#include "vqclip.h"

/* One bit per augmentation code. */
enum {
    VQC_AUG_AF = 1u << 0, /* "Af" random affine */
    VQC_AUG_PE = 1u << 1, /* "Pe" random perspective */
    VQC_AUG_JI = 1u << 2, /* "Ji" colour jitter */
    VQC_AUG_ER = 1u << 3, /* "Er" random erasing */
    VQC_AUG_SH = 1u << 4, /* "Sh" sharpness */
    VQC_AUG_GN = 1u << 5, /* "Gn" Gaussian noise */
    VQC_AUG_RO = 1u << 6, /* "Ro" rotation */
    VQC_AUG_HF = 1u << 7, /* "Hf" horizontal flip */
    VQC_AUG_CR = 1u << 8, /* "Cr" random crop */
    VQC_AUG_RE = 1u << 9, /* "Re" random resized crop */
};

/* The peer's default set, "Af Pe Ji Er". */
#define VQC_AUGMENTS_DEFAULT (VQC_AUG_AF | VQC_AUG_PE | VQC_AUG_JI | VQC_AUG_ER)
#define VQC_AUGMENTS_ALL 0x3ffu
/* The augmentations that vqc_augment_homographies() composes. */
#define VQC_AUGMENTS_GEOMETRIC \
    (VQC_AUG_AF | VQC_AUG_PE | VQC_AUG_RO | VQC_AUG_HF | VQC_AUG_CR | VQC_AUG_RE)
/* Standard deviation of the Gn noise. */
#define VQC_AUG_GN_STD 0.1

/* vqc_augment, vqc_augments_parse() (a list in the order given) and vqc_augment_name() are
 * public (include/vqclip.h); VQC_AUG_* bit i is vqc_augment i. */

/* The mask of a list of codes (repeats allowed). */
unsigned vqc_augments_mask(const vqc_augment *list, int n);

/* vqc_augments_parse() into a mask: "Af,Pe,Ji,Er", "af pe", repeats allowed; "none" alone gives
 * 0. VQC_ERR_USAGE (message naming the bad code and listing the valid ones) for an unknown
 * code, one of the peer's unsupported codes (Et, Ts) or an empty list. */
int vqc_augments_parse_mask(const char *text, unsigned *mask);

/* Writes `mask` as codes in bit order joined by commas ("Af,Pe,Ji,Er"), or "none", into buf
 * (always terminated when len > 0). Returns the length the full text needs, as snprintf. */
int vqc_augments_str(unsigned mask, char *buf, size_t len);

/* Probability with which augmentation `bit` (one VQC_AUG_* value) is applied to a cutout when no
 * override is given: 0.7 or 0.5 as documented above; 0 for anything else. */
double vqc_augment_default_prob(unsigned bit);

/* Draws one random forward homography per cutout, [n, 3, 3] float32 on dev, composing the
 * geometric augmentations of `mask` in the documented order (identity where none applies). It
 * maps normalised source coordinates (x, y, 1) to destination coordinates. prob > 0 overrides
 * each augmentation's probability. NULL + vqc_error_set on failure. */
vqt_tensor *vqc_augment_homographies(unsigned mask, double prob, int64_t n, vqt_device dev);

/* Warps the batch x [N, C, H, W] by the forward homographies h [N, 3, 3] (normalised coordinates,
 * align_corners=True: -1 and 1 are the centres of the border pixels): output(p) = x(h^-1 p),
 * bilinear, zero outside. Differentiable in x. A new tensor, or NULL + vqc_error_set. */
vqt_tensor *vqc_augment_warp(const vqt_tensor *x, const vqt_tensor *h);

/* Applies the augmentations of `mask` to the batch x [N, 3, H, W] (H == W for the geometric ones
 * to keep angles; any size works), each with its probability (prob > 0 overrides). mask == 0
 * returns a new handle to x itself. Differentiable in x. A new tensor, or NULL + vqc_error_set. */
vqt_tensor *vqc_augment_apply(const vqt_tensor *x, unsigned mask, double prob);

#endif

/* Random, differentiable augmentation of a batch of cutouts, on the batch's device.
 *
 *   vqc_augment_list l;
 *   if (vqc_augment_list_parse("Af,Pe,Ji,Er", &l) != 0) -> vqc_error_get()
 *   vqt_tensor *y = vqc_augment_apply(cutouts, &l, 0.0);   // [N,3,S,S] -> [N,3,S,S]
 *
 * The codes are nerdyrodent's generate.py names (its -aug option, case-insensitive here). Each
 * augmentation is drawn independently per cutout (Ts: once for the batch, as the peer's
 * same_on_batch) and applied with a probability (the peer's kornia settings: 0.7, or 0.5 for Sh,
 * Gn, Hf, Cr and Re); a positive `prob` overrides them all (tests use 1). Randomness comes from
 * libtorch's default generator for the batch's device, drawn as device tensors (Ts reads its 11
 * numbers back to solve its spline on the host), so vqt_manual_seed() reproduces a call sequence.
 *
 * Order. The list is applied in the order given, as the peer's nn.Sequential applies it; a code
 * given twice is applied twice. Consecutive geometric codes with a homography (Af, Pe, Ro, Hf, Cr,
 * Re) are composed into ONE homography per cutout and applied by ONE bilinear sampling pass with
 * zero padding (kornia resamples after each: composing keeps the picture sharper and costs one
 * pass); Et, Ts and the photometric codes (Ji, Sh, Gn, Er) each act on the result so far.
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
 *   Et  kornia RandomElasticTransform() as the peer uses it (p 0.7): a noise field U(-1, 1) of
 *       shape [N, 2, S, S] (x then y), each channel filtered by a normalised 63x63 Gaussian of
 *       sigma 32 with zero borders (applied as two 63-tap passes, the same kernel), times
 *       alpha 1, added to the grid of linspace(-1, 1) coordinates, clamped to [-1, 1], bilinear
 *       grid_sample with align_corners=False and zero padding (so, like kornia's, an applied Et
 *       also halves the outermost pixels' weight)
 *   Ts  kornia RandomThinPlateSpline(scale=0.8, same_on_batch=True) as the peer uses it (p 0.7,
 *       one decision and one spline for the batch): control points src = (-1,-1), (-1,1),
 *       (1,-1), (1,1), (0,0), dst = src + U(-0.8, 0.8) per coordinate; kornia's
 *       get_tps_transform(dst, src) solves [K P; P^T 0] [w; a] = [src; 0] with
 *       K_ij = U(|dst_i - src_j|^2), P_i = (1, dst_i), U(d) = d log(d + 1e-8) / 2 (in double on
 *       the host); each output point g of the linspace(-1, 1) grid samples the input at
 *       a_0 + a_x g_x + a_y g_y + sum_j w_j U(|g - src_j|^2), bilinear, align_corners=False,
 *       zero padding
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torch/shim.h"
#include "vqclip.h"

/* An augmentation list in the order given (repeats allowed). */
typedef struct vqc_augment_list {
    int n;
    vqc_augment code[VQC_MAX_AUGMENTS];
} vqc_augment_list;

/* Standard deviation of the Gn noise. */
#define VQC_AUG_GN_STD 0.1

/* vqc_augment, vqc_augments_parse() (a list in the order given) and vqc_augment_name() are
 * public (include/vqclip.h). */

/* The peer's default list, "Af Pe Ji Er". */
vqc_augment_list vqc_augment_list_default(void);

/* vqc_augments_parse() into a list: "Af,Pe,Ji,Er", "af pe", repeats kept; "none" alone gives an
 * empty list. VQC_ERR_USAGE (message naming the bad code and listing the valid ones) for an
 * unknown code or an empty text. */
int vqc_augment_list_parse(const char *text, vqc_augment_list *out);

/* Writes the list's codes joined by commas in their order ("Af,Pe,Ji,Er"), or "none", into buf
 * (always terminated when len > 0). Returns the length the full text needs, as snprintf. */
int vqc_augment_list_str(const vqc_augment_list *l, char *buf, size_t len);

/* Whether `a` is one of the homography codes (Af, Pe, Ro, Hf, Cr, Re). */
bool vqc_augment_is_homography(vqc_augment a);

/* Probability with which augmentation `a` is applied to a cutout when no override is given: 0.7
 * or 0.5 as documented above; 0 for anything else. */
double vqc_augment_default_prob(vqc_augment a);

/* Draws one random forward homography per cutout (on the CPU generator, as vqc_augment_apply
 * does), [n, 3, 3] float32 on dev, composing the
 * homography codes of `l` in their order (other codes are skipped; identity where none
 * applies). It maps normalised source coordinates (x, y, 1) to destination coordinates.
 * prob > 0 overrides each augmentation's probability. NULL + vqc_error_set on failure. */
vqt_tensor *vqc_augment_homographies(const vqc_augment_list *l, double prob, int64_t n,
                                     vqt_device dev);

/* Warps the batch x [N, C, H, W] by the forward homographies h [N, 3, 3] (normalised coordinates,
 * align_corners=True: -1 and 1 are the centres of the border pixels): output(p) = x(h^-1 p),
 * bilinear, zero outside. Differentiable in x. A new tensor, or NULL + vqc_error_set. */
vqt_tensor *vqc_augment_warp(const vqt_tensor *x, const vqt_tensor *h);

/* Applies the list `l` in its order to the batch x [N, 3, H, W] (H == W for the geometric ones
 * to keep angles; any size works; C may differ from 3 unless Ji is in the list), each with its
 * probability (prob > 0 overrides). An empty list returns a new handle to x itself.
 * Differentiable in x. A new tensor, or NULL + vqc_error_set. */
vqt_tensor *vqc_augment_apply(const vqt_tensor *x, const vqc_augment_list *l, double prob);

/* Et and Ts alone (augment_field.c), for vqc_augment_apply: x [N, C, H, W], applied with
 * probability p; each returns a new tensor in the caller's scope, NULL on a libtorch failure. */
vqt_tensor *vqc_augment_elastic(const vqt_tensor *x, double p);
vqt_tensor *vqc_augment_thin_plate(const vqt_tensor *x, double p);

/* Ts's spline on the host, in double. vqc_tps_solve: kornia's get_tps_transform(dst, src) for the
 * five fixed control points src and the moved points dst: kernel weights w and affine weights
 * a (rows 1, x, y; columns x, y); -1 when the system is singular. vqc_tps_eval: the input point
 * that the output point (x, y) samples, a_0 + a_x x + a_y y + sum_j w_j U(|(x, y) - src_j|^2),
 * which maps dst_i to src_i. vqc_augment_thin_plate draws 11 uniforms on the batch's device:
 * the gate (applied when below p), then dst_i = src_i + 0.8 (2 u - 1) for x, y of each point. */
int vqc_tps_solve(const double dst[5][2], double w[5][2], double a[3][2]);
void vqc_tps_eval(const double w[5][2], const double a[3][2], double x, double y, double *ox,
                  double *oy);

#endif

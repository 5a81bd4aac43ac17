/* Shaping losses after pixray (the files of its Losses folder), added to the CLIP loss of a step:
 *
 *   vqc_shape_losses s = {0};
 *   s.saturation = 2;
 *   vqt_tensor *l = vqc_shape_losses_total(&s, img, cuts);   // img [1,3,H,W], cuts [N,3,S,S]
 *
 * Smoothness, saturation and palette are computed on the cutouts (the batch CLIP sees, before
 * CLIP's normalisation), symmetry on the decoded picture, as pixray does:
 *   smoothness  w * mean(s) with s = sqrt(sum over R, G, B of gy^2 + gx^2) per pixel, g the
 *               central-difference gradient (torch.gradient, edge order 1) of the cutouts laid
 *               one above the other as one [N*S, S] image per channel; "clipped": min(s, 0.5),
 *               "log": log(1 + s)
 *   saturation  -w / 5 * (sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)) over
 *               all cutout pixels, rg = R - G, yb = (R + G) / 2 - B, std unbiased
 *   symmetry    w * mean((img - flip(img))^2), left-right (pixray's) and up-down (added here)
 *   palette     w / 10 * N * mean over cutout pixels of the distance (Euclidean, RGB in [0, 1])
 *               to the nearest palette colour
 * The square roots have a zero gradient where their argument is 0 (torch's give NaN there):
 * the values are pixray's. docs/losses.md has the sources and the memory each one costs.
 *
 * Every function returns a new 0-dim float32 tensor (NULL with the shim's error on failure)
 * whose intermediates belong to the caller's scope; inputs are borrowed. */
#ifndef VQC_GEN_LOSSES_H
#define VQC_GEN_LOSSES_H

#include <stdbool.h>

#include "torch/shim.h"
#include "vqclip.h"

/* The most colours a palette may have. */
#define VQC_MAX_PALETTE 64

typedef struct vqc_shape_losses {
    double smoothness; /* weights; 0: off */
    vqc_smoothness_type smoothness_type;
    double saturation;
    double symmetry_lr, symmetry_ud;
    double palette_weight; /* used when n_palette > 0 */
    int n_palette;
    float palette[VQC_MAX_PALETTE][3]; /* RGB in [0, 1] */
} vqc_shape_losses;

/* Parses "#rrggbb,#rrggbb,..." (the '#' optional; commas and/or spaces between colours) into
 * rgb[0..*n). Returns 0, or VQC_ERR_USAGE naming the bad colour (none, more than
 * VQC_MAX_PALETTE, not six hex digits). */
int vqc_palette_parse(const char *text, float rgb[][3], int *n);

/* Whether any term is on. */
bool vqc_shape_losses_any(const vqc_shape_losses *s);

/* The weighted terms, each as described above. */
vqt_tensor *vqc_loss_smoothness(const vqt_tensor *cuts, double w, vqc_smoothness_type type);
vqt_tensor *vqc_loss_saturation(const vqt_tensor *cuts, double w);
/* dim 3: left-right mirror; dim 2: up-down. */
vqt_tensor *vqc_loss_symmetry(const vqt_tensor *img, double w, int dim);
vqt_tensor *vqc_loss_palette(const vqt_tensor *cuts, double w, const float rgb[][3], int n);

/* What the terms that are on keep for the backward pass, with the gradients in flight, counted
 * in float32 tensors of the cutouts' size ([N, 3, S, S]) and of the picture's ([1, 3, H, W]);
 * rough counts, for the memory planner (docs/losses.md). */
void vqc_shape_losses_memory(const vqc_shape_losses *s, double *cut_tensors, double *img_tensors);

/* The sum of the terms that are on, in the order above (a 0-dim zero when none is). */
vqt_tensor *vqc_shape_losses_total(const vqc_shape_losses *s, const vqt_tensor *img,
                                   const vqt_tensor *cuts);

#endif

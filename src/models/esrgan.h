/* Real-ESRGAN's super-resolution networks in C, with the architecture inferred from the weights:
 *   RRDBNet (BasicSR): RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B, RealESRGAN_x2plus;
 *   SRVGGNetCompact (Real-ESRGAN, PReLU activations): realesr-general-x4v3, realesr-animevideov3.
 *
 *   vqc_esrgan *m;
 *   if (vqc_esrgan_load("RealESRGAN_x4plus.pth", dev, VQC_DTYPE_F32, &m) != 0) -> vqc_error_get()
 *   vqt_tensor *y = vqc_esrgan_forward(m, x);   // x [N,3,H,W] in [0,1] -> [N,3,H*s,W*s]
 *   vqc_esrgan_free(m);
 *
 * The state dict is taken from `params_ema`, else `params` (as RealESRGANer does), else the
 * top level of the file. Nothing in the file is executed (src/io's restricted readers). */
#ifndef VQC_MODELS_ESRGAN_H
#define VQC_MODELS_ESRGAN_H

#include <stdint.h>

#include "io/tensor_map.h"
#include "torch/shim.h"

typedef enum { VQC_ESRGAN_RRDB = 0, VQC_ESRGAN_SRVGG = 1 } vqc_esrgan_arch;

typedef struct vqc_esrgan_info {
    vqc_esrgan_arch arch;
    int scale;       /* output side / input side: 1, 2 or 4 for RRDBNet; any for SRVGGNetCompact */
    int num_in_ch;   /* image channels (3 for the released models) */
    int num_out_ch;  /* likewise */
    int num_feat;    /* feature channels */
    int num_block;   /* RRDB blocks (RRDBNet) or body convolutions (SRVGGNetCompact num_conv) */
    int num_grow_ch; /* RRDBNet's dense growth channels; 0 for SRVGGNetCompact */
    int64_t n_params;
    const char *key; /* "params_ema", "params" or "" (the top level): where the weights were */
} vqc_esrgan_info;

typedef struct vqc_esrgan vqc_esrgan;

/* Infers the architecture from the weights' names and shapes without loading them. Returns 0,
 * or VQC_ERR_MODEL with a message when the map holds no network of either kind. */
int vqc_esrgan_inspect(const vqc_tensor_map *map, vqc_esrgan_info *info);

/* Loads the network from `path` (any container vqc_tmap_open reads) onto dev, its weights
 * converted to dt (VQC_DTYPE_F32, or F16 / BF16 on a GPU). Returns 0 and *out (free with
 * vqc_esrgan_free), or a negative VQC_ERR_* with a message. */
int vqc_esrgan_load(const char *path, vqt_device dev, vqc_dtype dt, vqc_esrgan **out);
/* Same, from an already opened map (not retained). */
int vqc_esrgan_load_map(const vqc_tensor_map *map, vqt_device dev, vqc_dtype dt, vqc_esrgan **out);

void vqc_esrgan_free(vqc_esrgan *m);

const vqc_esrgan_info *vqc_esrgan_get_info(const vqc_esrgan *m);
vqt_device vqc_esrgan_device(const vqc_esrgan *m);
vqc_dtype vqc_esrgan_dtype(const vqc_esrgan *m);

/* The network on x [N, num_in_ch, H, W] (on the model's device, in its dtype): a new handle
 * [N, num_out_ch, H*scale, W*scale], or NULL with a message. H and W must be multiples of
 * 4/scale for RRDBNet x2 and x1 (pixel-unshuffle). No gradient is recorded. */
vqt_tensor *vqc_esrgan_forward(const vqc_esrgan *m, const vqt_tensor *x);

#endif

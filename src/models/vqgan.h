/* VQGAN (taming-transformers) in C: VQModel, GumbelVQ and the first stage of
 * Net2NetTransformer checkpoints, with the architecture inferred from the weights.
 *
 *   vqc_vqgan *m;
 *   if (vqc_vqgan_load("vqgan_imagenet_f16_16384.ckpt", NULL, dev, &m) != 0) -> vqc_error_get()
 *   vqt_tensor *h = vqc_vqgan_encode(m, x);            // x: [N,3,H,W] in [-1,1]
 *   vqt_tensor *idx, *zq = vqc_vqgan_quantize(m, h, &idx);
 *   vqt_tensor *y = vqc_vqgan_decode(m, zq);           // [N,3,H,W], roughly [-1,1]
 *   vqc_vqgan_free(m);
 *
 * The math is taming's: GroupNorm(32, eps 1e-6), swish, ResnetBlock (nin_shortcut on a channel
 * change), single-head attention over all positions, zero pad right/bottom before the stride-2
 * conv, nearest x2 upsampling + conv, the decoder's reversed level order. All returned tensors
 * are new handles the caller frees; all functions are differentiable where libtorch is. */
#ifndef VQC_MODELS_VQGAN_H
#define VQC_MODELS_VQGAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "io/tensor_map.h"
#include "torch/shim.h"

#define VQC_VQGAN_MAX_LEVELS 8

typedef enum { VQC_VQGAN_VQ = 0, VQC_VQGAN_GUMBEL = 1 } vqc_vqgan_kind;

typedef struct vqc_vqgan_info {
    vqc_vqgan_kind kind;
    bool from_transformer; /* weights came from a Net2NetTransformer's first_stage_model */
    int ch;                /* base channels */
    int num_levels;        /* len(ch_mult) */
    int ch_mult[VQC_VQGAN_MAX_LEVELS];
    int num_res_blocks;
    bool enc_attn[VQC_VQGAN_MAX_LEVELS]; /* attention in encoder level i */
    bool dec_attn[VQC_VQGAN_MAX_LEVELS]; /* attention in decoder level i */
    int in_channels, out_ch, z_channels, embed_dim, n_embed;
    int downsample;   /* 2^(num_levels - 1) */
    int64_t n_params; /* parameters of the encoder, decoder, quantizer and 1x1 convs */
} vqc_vqgan_info;

typedef struct vqc_vqgan vqc_vqgan;

/* Loads a VQGAN from a checkpoint (any container vqc_tmap_open reads). `yaml` (may be NULL) is
 * the model's config: it is only cross-checked against the inferred architecture, and a
 * disagreement is an error. Non-model content (loss.*, optimizer states, transformer weights)
 * is never copied to the device. Returns 0 and *out, or a negative VQC_ERR_* with a message. */
int vqc_vqgan_load(const char *path, const char *yaml, vqt_device dev, vqc_vqgan **out);

/* Same, from an already opened map (the map is not retained). */
int vqc_vqgan_load_map(const vqc_tensor_map *map, const char *yaml, vqt_device dev,
                       vqc_vqgan **out);

/* Infers the architecture from the weights without loading them. Returns 0 or VQC_ERR_MODEL. */
int vqc_vqgan_inspect(const vqc_tensor_map *map, vqc_vqgan_info *info);

void vqc_vqgan_free(vqc_vqgan *m);

const vqc_vqgan_info *vqc_vqgan_get_info(const vqc_vqgan *m);
vqt_device vqc_vqgan_device(const vqc_vqgan *m);

/* Encoder output, [N, z_channels, H/f, W/f], for x in [-1, 1]. NULL + error on failure. */
vqt_tensor *vqc_vqgan_encoder(const vqc_vqgan *m, const vqt_tensor *x);
/* Encoder + quant_conv ("prequant"), [N, embed_dim, H/f, W/f]. */
vqt_tensor *vqc_vqgan_encode(const vqc_vqgan *m, const vqt_tensor *x);
/* Quantises prequant: nearest codebook entry (VQ) or argmax of quantize.proj logits (Gumbel,
 * the noise-free choice). Returns z_q [N, embed_dim, h, w]; *indices (if not NULL) gets a new
 * int64 [N, h, w] tensor. No gradient flows through (use vqc_vqgan_nearest for the loop). */
vqt_tensor *vqc_vqgan_quantize(const vqc_vqgan *m, const vqt_tensor *prequant,
                               vqt_tensor **indices);
/* Nearest codebook entries of z [N, embed_dim, h, w] by squared distance, for any kind, with a
 * straight-through gradient (the value of the codebook entries, the gradient of z). */
vqt_tensor *vqc_vqgan_nearest(const vqc_vqgan *m, const vqt_tensor *z, vqt_tensor **indices);
/* post_quant_conv + decoder: [N, out_ch, h*f, w*f]. */
vqt_tensor *vqc_vqgan_decode(const vqc_vqgan *m, const vqt_tensor *z_q);
/* Low-memory decoding (off by default): when a gradient is wanted, vqc_vqgan_decode keeps only
 * the inputs of its segments (the head up to the middle blocks, each level, the output tail)
 * and computes each segment again in the backward pass (vqt_checkpoint): the same image and
 * gradient for much less activation memory and about one more decoder forward per step. The
 * backward pass must run before the model is freed or decodes again on another thread. */
void vqc_vqgan_set_low_memory(vqc_vqgan *m, bool on);
bool vqc_vqgan_low_memory(const vqc_vqgan *m);
/* Runs post_quant_conv and the decoder in dt (VQC_DTYPE_F32, the default, BF16 or F16): their
 * weights are converted once, z_q is converted on the way in and the image back to float32 on
 * the way out, so callers see float32 either way; GroupNorm statistics and the attention
 * softmax are computed in float32. The encoder, the codebook and the nearest-entry search stay
 * float32. One-way: a reduced decoder cannot return to float32 (reload the model). Returns 0,
 * or VQC_ERR_USAGE / VQC_ERR_RUNTIME; after a failure the model must be freed. */
int vqc_vqgan_set_decoder_dtype(vqc_vqgan *m, vqc_dtype dt);
vqc_dtype vqc_vqgan_decoder_dtype(const vqc_vqgan *m);
/* Runs post_quant_conv and the decoder channels last (NHWC in memory; off by default): their
 * 4-D weights are converted once, z_q on the way in, and the image comes back NCHW. cuDNN's
 * reduced-precision convolutions run in that layout (NCHW ones are transposed there and
 * back), and GroupNorm keeps it on CUDA (vqt_group_norm_silu's COMPOSED). Same values within
 * rounding. Can be turned off again. Returns 0, or VQC_ERR_RUNTIME (then the model must be
 * freed). */
int vqc_vqgan_set_decoder_channels_last(vqc_vqgan *m, bool on);
bool vqc_vqgan_decoder_channels_last(const vqc_vqgan *m);
/* Runs the decoder's attention blocks over at least min_cells latent cells (0: every block) as
 * one fused operator each (vqt_sdpa, one head of the block's width: on CUDA with libtorch 2.x a
 * memory-efficient kernel that never stores the [S, S] scores of S cells) instead of the
 * reference's matmul, float32 softmax and matmul. Off after loading: the values agree within
 * rounding, not bit for bit. Before the fused operator is first used it is checked at each
 * attention width, in the decoder's type (vqc_attention_check, 256 cells, forward and
 * backward): now with min_cells 0, else at the first decode with a block over min_cells cells
 * or more, so that smaller pictures never pay for it. When it fails or disagrees the decoder
 * keeps the reference's operators, with one warning that says why. Returns whether it is on
 * (with min_cells > 0: asked for, the check still to come). The encoder keeps the reference's
 * attention. */
bool vqc_vqgan_set_fused_attention(vqc_vqgan *m, bool on, int64_t min_cells);
/* The fewest cells an attention block of the decoder runs fused over (or will, once its check
 * has passed); -1 when it is off. */
int64_t vqc_vqgan_fused_attention_from(const vqc_vqgan *m);
/* Where the fast precision fuses the decoder's attention: from 8192 cells (pictures from about
 * 1448x1448 at f16). The kernel that takes the decoder's width runs one thread block per few
 * dozen query cells of its single head, so over fewer cells it leaves most of a large GPU idle,
 * and the scores it would save are small there (docs/gpu.md). */
#define VQC_VQGAN_FUSED_ATTENTION_CELLS 8192
/* Codebook entries for int64 indices [N, h, w] as z [N, embed_dim, h, w]. */
vqt_tensor *vqc_vqgan_embed(const vqc_vqgan *m, const vqt_tensor *indices);

/* The codebook [n_embed, embed_dim] (borrowed; do not free). */
const vqt_tensor *vqc_vqgan_codebook(const vqc_vqgan *m);

#endif

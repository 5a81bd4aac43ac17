/* The VQGAN's module tree, shared by its loading and forward passes (vqgan.c) and its
 * run-time settings (vqgan_settings.c). Private to those two files. */
#ifndef VQC_MODELS_VQGAN_INTERNAL_H
#define VQC_MODELS_VQGAN_INTERNAL_H

#include <stdbool.h>

#include "models/vqgan.h"

typedef struct {
    vqt_tensor *w, *b;
} conv_t; /* also used for GroupNorm affine parameters */

typedef struct {
    conv_t norm1, conv1, norm2, conv2, shortcut; /* shortcut.w NULL when channels match */
    int shortcut_pad;                            /* 0: nin_shortcut (1x1), 1: conv_shortcut */
} resblock_t;

typedef struct {
    conv_t norm, q, k, v, proj;
} attn_t;

typedef struct {
    resblock_t *blocks;
    attn_t *attns; /* NULL when the level has no attention */
    int nblocks;
    conv_t resample; /* downsample (encoder) / upsample (decoder) conv; w NULL at the end */
} level_t;

typedef struct {
    conv_t conv_in, norm_out, conv_out;
    level_t levels[VQC_VQGAN_MAX_LEVELS];
    resblock_t mid1, mid2;
    attn_t mid_attn;
    int64_t fused_from; /* attention over this many cells or more as one vqt_sdpa; -1: none */
} coder_t;

struct vqc_vqgan {
    vqc_vqgan_info info;
    vqt_device dev;
    coder_t enc, dec;
    conv_t quant_conv, post_quant_conv, proj; /* proj: Gumbel logits */
    vqt_tensor *codebook;
    vqt_tensor *codebook_sq; /* sum of squares per entry, [n_embed] */
    int nhandles;
    vqt_tensor **handles; /* every weight, for freeing */
    bool low_memory;      /* decoder segments checkpointed (vqc_vqgan_set_low_memory) */
    vqc_dtype dec_dtype;  /* the decoder's weights and activations (vqc_vqgan_set_decoder_dtype) */
    bool dec_channels_last; /* ... and their layout (vqc_vqgan_set_decoder_channels_last) */
    int nsegs;
    struct segment *segs; /* post_quant_conv + decoder as segments, in order (set at load) */
    /* fused attention asked for from this many cells, its check not yet run (-1: none): it runs
     * at the first decode that would use it (vqgan_fused_check_due) */
    int64_t fused_pending;
};

/* One unit of the decoder: checkpointed on its own in low-memory mode. */
typedef enum { SEG_HEAD, SEG_MID1, SEG_MID_ATTN, SEG_MID2, SEG_BLOCK, SEG_UP, SEG_TAIL } seg_kind;
struct segment {
    const struct vqc_vqgan *m;
    seg_kind kind;
    int level, block; /* SEG_BLOCK: a ResnetBlock (with its attention); SEG_UP: upsampling */
};

/* Runs a pending fused-attention check (vqc_vqgan_set_fused_attention) when decoding a latent
 * of h x w cells would use the fused path: before the decode, outside any recorded graph (the
 * first call of a recorded decoder runs plainly). */
void vqgan_fused_check_due(vqc_vqgan *m, int64_t h, int64_t w);

#endif

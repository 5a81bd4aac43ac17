/* Internals shared by clip.c (loading), clip_text.c (transformer, text tower) and
 * clip_vision.c (image towers). Not part of the public API. */
#ifndef VQC_MODELS_CLIP_INTERNAL_H
#define VQC_MODELS_CLIP_INTERNAL_H

#include <stdbool.h>

#include "models/clip.h"
#include "models/weights.h"

/* One residual attention block: x += attn(ln_1(x)); x += mlp(ln_2(x)). */
typedef struct clip_block {
    vqt_tensor *ln1_w, *ln1_b, *in_w, *in_b, *out_w, *out_b;
    vqt_tensor *ln2_w, *ln2_b, *fc_w, *fc_b, *proj_w, *proj_b;
} clip_block;

typedef struct clip_transformer {
    int width, heads, layers;
    clip_block *blocks; /* layers entries */
} clip_transformer;

typedef struct clip_bn {
    vqt_tensor *w, *b, *mean, *var;
} clip_bn;

/* ModifiedResNet Bottleneck; down_conv is NULL when there is no downsample branch. */
typedef struct clip_bottleneck {
    int stride;
    vqt_tensor *conv1, *conv2, *conv3, *down_conv;
    clip_bn bn1, bn2, bn3, down_bn;
} clip_bottleneck;

struct vqc_clip {
    vqc_clip_info info;
    vqt_device dev;
    vqc_dtype cdt; /* compute dtype: F32, or F16 on CUDA with VQC_CLIP_FP16 */
    double logit_scale;
    /* text tower */
    vqt_tensor *tok_emb, *pos_emb, *lnf_w, *lnf_b, *text_proj, *causal_mask;
    clip_transformer text;
    /* VisionTransformer */
    vqt_tensor *patch_w, *class_emb, *vpos_emb, *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b,
        *vproj;
    clip_transformer vis;
    /* ModifiedResNet */
    vqt_tensor *stem_conv[3];
    clip_bn stem_bn[3];
    int n_bottlenecks;
    clip_bottleneck *bottlenecks;
    vqt_tensor *ap_pos, *ap_q_w, *ap_q_b, *ap_k_w, *ap_k_b, *ap_v_w, *ap_v_b, *ap_c_w, *ap_c_b;
    /* CLIP's normalization constants, [1, 3, 1, 1] float32 on dev */
    vqt_tensor *norm_mean, *norm_std;
    /* The file the text tower's weights view (NULL when they are copies): held so that its
     * pages can be given back after each text (vqc_weight_drop_pages). */
    vqc_weight_file *file;
    bool fused_attention; /* vqc_clip_set_fused_attention */
};

/* LayerNorm over the last dim computed in float32, result cast back to x's dtype (w and b are
 * converted to float32 when they are stored otherwise). */
vqt_tensor *clip_layer_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b);

/* Runs the residual blocks of `tr` over x [N, L, width] (mask may be NULL; `fused` as
 * vqc_attention's). Weights stored in another type than x's (the text tower's views) are
 * converted block by block. */
vqt_tensor *clip_transformer_forward(const clip_transformer *tr, const vqt_tensor *x,
                                     const vqt_tensor *mask, bool fused);

/* The image towers (clip_vision.c); x is [N, 3, R, R] in the compute dtype. */
vqt_tensor *clip_vit_forward(const vqc_clip *m, const vqt_tensor *x);
vqt_tensor *clip_rn_forward(const vqc_clip *m, const vqt_tensor *x);

#endif

/* OpenAI CLIP in C: the VisionTransformer and ModifiedResNet image encoders and the text
 * transformer, with the architecture inferred from the weights as OpenAI's build_model() does.
 *
 *   vqc_clip *m;
 *   if (vqc_clip_load("ViT-B-32.pt", dev, VQC_CLIP_FP32, &m) != 0) -> vqc_error_get()
 *   vqt_tensor *x;   vqc_clip_preprocess(m, &img, &x);       // [1,3,R,R], normalized
 *   vqt_tensor *fi = vqc_clip_encode_image(m, x);            // [1, embed_dim], not normalized
 *   vqt_tensor *ft = vqc_clip_encode_text(m, tokens, n);     // [n, embed_dim]
 *   vqc_clip_free(m);
 *
 * Weight files: OpenAI's TorchScript archives, plain state dicts with OpenAI's names (also under
 * a "state_dict." or "model." prefix), safetensors with those names, and the Hugging Face
 * CLIPModel layout (text_model.*, vision_model.*, visual_projection.weight,
 * text_projection.weight; ViT only), whose names are mapped at load time.
 *
 * The math is OpenAI's clip/model.py: pre-LN residual blocks with QuickGELU MLPs, multi-head
 * attention (head size 64, at least one head), a causal mask in the text transformer, the text
 * feature taken at the highest token id (EOT), LayerNorm in float32, BatchNorm in evaluation
 * mode (eps 1e-5), AttentionPool2d over the mean token. All returned tensors are new handles the
 * caller frees; the encoders are differentiable where libtorch is. The weights are
 * persisted (vqt_persist): a model may be loaded inside a vqt scope. A loaded model is read-only,
 * so several threads may run its encoders at once. */
#ifndef VQC_MODELS_CLIP_H
#define VQC_MODELS_CLIP_H

#include <stdbool.h>
#include <stdint.h>

#include "io/image.h"
#include "io/tensor_map.h"
#include "torch/shim.h"

typedef struct vqc_clip vqc_clip;

typedef struct vqc_clip_info {
    int is_vit;              /* 1: VisionTransformer, 0: ModifiedResNet */
    int embed_dim;           /* size of the joint embedding */
    int image_resolution;    /* input side R of encode_image */
    int vision_width;        /* ViT: token width; RN: stem width (layer1 planes) */
    int vision_layers;       /* ViT: transformer layers; RN: total bottleneck blocks */
    int vision_rn_layers[4]; /* RN: blocks in layer1..layer4 (zeros for ViT) */
    int vision_patch_size;   /* ViT only (0 for RN) */
    int vision_heads;        /* ViT: width/64; RN: width*32/64 (at least 1) */
    int context_length, vocab_size;
    int transformer_width, transformer_heads, transformer_layers;
    int64_t n_params; /* parameters, as sum(p.numel() for p in model.parameters()) */
} vqc_clip_info;

typedef enum { VQC_CLIP_FP32 = 0, VQC_CLIP_FP16 } vqc_clip_precision;

/* Reads the hyper-parameters from the weight names and shapes without loading anything.
 * Returns 0 and fills *info, or VQC_ERR_MODEL ("not a CLIP model", inconsistent shapes). */
int vqc_clip_inspect(const vqc_tensor_map *map, vqc_clip_info *info);

/* Opens the weight file `path` and loads the model onto `dev` (see vqc_clip_load_map).
 * Returns 0 and *out (free with vqc_clip_free), or a negative VQC_ERR_* with a message:
 * VQC_ERR_IO (missing file), VQC_ERR_FORMAT (not a weight file), VQC_ERR_MODEL (not CLIP). */
int vqc_clip_load(const char *path, vqt_device dev, vqc_clip_precision prec, vqc_clip **out);

/* Loads the model from an opened map (the map is not retained and may be freed afterwards).
 * On the CPU the model always computes in float32. On CUDA with VQC_CLIP_FP16 the conv, linear,
 * attention and projection weights are float16 and activations float16, as OpenAI's
 * convert_weights() leaves them, with LayerNorm in float32; outputs are still float32.
 * Returns 0 and *out, or a negative VQC_ERR_* with a message. */
int vqc_clip_load_map(const vqc_tensor_map *map, vqt_device dev, vqc_clip_precision prec,
                      vqc_clip **out);

/* Frees the model and its device tensors; NULL is ignored. */
void vqc_clip_free(vqc_clip *m);

/* The model's hyper-parameters (borrowed; valid while the model lives). */
const vqc_clip_info *vqc_clip_get_info(const vqc_clip *m);

/* The device the model lives on. */
vqt_device vqc_clip_device(const vqc_clip *m);

/* The learned log temperature `logit_scale` (not exponentiated). */
double vqc_clip_logit_scale(const vqc_clip *m);

/* Whether the image tower's attention runs as one fused operator (vqt_sdpa: on CUDA with
 * libtorch 2.x a flash or memory-efficient kernel) instead of the reference's four. Off after
 * loading: the fused operator agrees within rounding, not bit for bit, so it is for the fast
 * precision only. The text tower always keeps the reference's operators: it runs once per
 * prompt without a gradient, where fusing saves nothing, and its causal mask would otherwise
 * be one more shape to check at start-up and one more way for a kernel's refusal to turn the
 * image tower's fusing off. Turning it on first runs both paths at the image tower's attention
 * shape, forward and backward, on fixed inputs (vqc_attention_check, a few milliseconds); when
 * the fused one fails or disagrees it stays off, with one warning that says why. Returns
 * whether it is on. */
bool vqc_clip_set_fused_attention(vqc_clip *m, bool on);
bool vqc_clip_fused_attention(const vqc_clip *m);

/* Image features of image [N, 3, R, R] (float32, already normalized; R = image_resolution;
 * moved to the model's device if it lives elsewhere). Returns a new float32 [N, embed_dim]
 * tensor on the model's device, NOT unit-normalized, differentiable with respect to `image`;
 * NULL with a vqc error (VQC_ERR_USAGE for a wrong shape) on failure. */
vqt_tensor *vqc_clip_encode_image(const vqc_clip *m, const vqt_tensor *image);

/* Text features of n token rows (`tokens`, borrowed, holds n * context_length ids, row-major,
 * each in [0, vocab_size); the EOT token must be the row's highest id, as the tokenizer makes
 * it). Returns a new float32 [n, embed_dim] tensor on the model's device, NOT unit-normalized;
 * NULL with an error (VQC_ERR_USAGE for n <= 0 or an id outside the vocabulary). */
vqt_tensor *vqc_clip_encode_text(const vqc_clip *m, const int64_t *tokens, int n);

/* CLIP's mean/std normalization of x01 [N, 3, H, W] with values in [0, 1]: a new float32
 * tensor on x01's device, differentiable; NULL with an error. */
vqt_tensor *vqc_clip_normalize(const vqc_clip *m, const vqt_tensor *x01);

/* CLIP's image preprocessing: resize so that the shorter side is R (bicubic, Keys a = -0.5, as
 * PIL's BICUBIC; when shrinking, the kernel is widened by the scale factor, i.e. antialiased as
 * PIL does; computed in float without PIL's 8-bit rounding between the two passes), centre crop
 * to R x R, normalize. An image whose shorter side already is R is only cropped. Sets *out to a
 * new float32 [1, 3, R, R] tensor on the model's device. Returns 0 or a negative VQC_ERR_*. */
int vqc_clip_preprocess(const vqc_clip *m, const vqc_image *img, vqt_tensor **out);

/* The resize step of vqc_clip_preprocess alone, on the host: writes a new w x h image into *out
 * (free with vqc_image_free). Returns 0 or VQC_ERR_USAGE / VQC_ERR_NOMEM. */
int vqc_clip_resize_bicubic(const vqc_image *in, int w, int h, vqc_image *out);

#endif

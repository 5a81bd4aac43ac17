/* Finding model files by name: "vqgan_imagenet_f16_16384", "ViT-B/32", or a path. */
#ifndef VQC_GEN_MODELPATH_H
#define VQC_GEN_MODELPATH_H

#include <stddef.h>

typedef enum { VQC_MODEL_VQGAN = 0, VQC_MODEL_CLIP, VQC_MODEL_BPE } vqc_model_kind;

#define VQC_DEFAULT_VQGAN "vqgan_imagenet_f16_16384"
#define VQC_DEFAULT_CLIP "ViT-B/32"
#define VQC_DEFAULT_BPE "bpe_simple_vocab_16e6.txt.gz"

/* The models directories searched, in order: $VQCLIP_MODELS, ~/.cache/vqclip, then the install
 * prefix's share/vqclip/models. Writes up to max paths into dirs (static or getenv storage,
 * valid until the environment changes) and returns the count. */
int vqc_model_dirs(const char **dirs, int max);

/* Resolves `name` to an existing file. A name that is an existing file path is used as is.
 * Otherwise it is looked up in each models directory as NAME, NAME.ckpt, NAME.safetensors,
 * NAME.pt (CLIP names have '/' replaced by '-': "ViT-B/32" -> "ViT-B-32.pt"). Writes the path
 * into out. Returns 0, or VQC_ERR_IO with a message listing every path tried and how to
 * download the model. */
int vqc_model_find(vqc_model_kind kind, const char *name, char *out, size_t len);

/* For a VQGAN checkpoint path "dir/name.ckpt", writes "dir/name.yaml" into out when that file
 * exists and returns 0; returns -1 (no error recorded) when there is none. */
int vqc_model_find_yaml(const char *ckpt, char *out, size_t len);

#endif

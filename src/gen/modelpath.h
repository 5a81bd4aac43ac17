/* Finding model files by name: "vqgan_imagenet_f16_16384", "ViT-B/32", or a path. */
#ifndef VQC_GEN_MODELPATH_H
#define VQC_GEN_MODELPATH_H

#include <stddef.h>

#include "vqclip.h"

/* vqc_model_kind, the default names, vqc_model_dirs(), vqc_model_find() and vqc_demo_dir() are
 * public (include/vqclip.h). */

/* The demo set (models/demo, trained by scripts/demo/): file names inside its folder. */
#define VQC_DEMO_VQGAN "vqgan_demo.ckpt"
#define VQC_DEMO_CLIP "clip_demo.safetensors"
#define VQC_DEMO_BPE "vocab.json"

/* For a VQGAN checkpoint path "dir/name.ckpt", writes "dir/name.yaml" into out when that file
 * exists and returns 0; returns -1 (no error recorded) when there is none. */
int vqc_model_find_yaml(const char *ckpt, char *out, size_t len);

/* Whether a run that names no model falls back to the demo set: neither the default VQGAN nor
 * the default CLIP is found in the models directories, and vqc_demo_dir() finds the demo set
 * (its folder goes into dir). Returns 1 (use the demo set) or 0 (look the defaults up as usual,
 * which reports what is missing). Not an error either way, though the failed lookups leave
 * their message in vqc_error_get(). */
int vqc_demo_fallback(char *dir, size_t len);

/* The BPE vocabulary to use with a CLIP. In order: `bpe` when given (resolved as
 * vqc_model_find does); the vocabulary kept next to the CLIP file `clip_path` (may be NULL): its
 * folder's vocab.json with merges.txt, as the demo set and Hugging Face folders keep it; the
 * default VQC_DEFAULT_BPE in the models directories; else, when `clip_path` is NULL, the demo
 * set's vocabulary, with a one-line notice. Writes the path into out and returns 0, or the
 * default lookup's error (VQC_ERR_IO, listing the paths tried). */
int vqc_model_find_bpe(const char *bpe, const char *clip_path, char *out, size_t len);

#endif

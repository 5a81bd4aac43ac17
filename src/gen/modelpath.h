/* Finding model files by name: "vqgan_imagenet_f16_16384", "ViT-B/32", or a path. */
#ifndef VQC_GEN_MODELPATH_H
#define VQC_GEN_MODELPATH_H

#include <stddef.h>

typedef enum { VQC_MODEL_VQGAN = 0, VQC_MODEL_CLIP, VQC_MODEL_BPE } vqc_model_kind;

#define VQC_DEFAULT_VQGAN "vqgan_imagenet_f16_16384"
#define VQC_DEFAULT_CLIP "ViT-B/32"
#define VQC_DEFAULT_BPE "bpe_simple_vocab_16e6.txt.gz"

/* The demo set (models/demo, trained by scripts/demo/): file names inside its folder. */
#define VQC_DEMO_VQGAN "vqgan_demo.ckpt"
#define VQC_DEMO_CLIP "clip_demo.safetensors"
#define VQC_DEMO_BPE "vocab.json"

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

/* The folder holding the whole demo set (VQC_DEMO_VQGAN, VQC_DEMO_CLIP, VQC_DEMO_BPE and its
 * merges.txt): the install prefix's share/vqclip/models/demo, then the source tree's models/demo
 * (compiled in as VQCLIP_DEMO_DIR). Writes it into out and returns 0, or returns -1 (no error
 * recorded) when neither folder holds all four files. */
int vqc_demo_dir(char *out, size_t len);

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

/* Several CLIP models guiding one picture, as pixray's `-m ViT-B/32,ViT-B/16:0.5,RN50`: the
 * text of vqc_context_params.clip.
 *
 *   "ViT-B/32"                one model, weight 1 (what a single name always meant)
 *   "ViT-B/32,RN50:0.5"       two models; each model's prompt losses are multiplied by its
 *                             weight and the products summed
 *
 * Models are separated by ','; each is NAME[:WEIGHT] with surrounding white space trimmed. As in
 * prompts (gen/prompts.h), only a trailing field that reads as a weight counts: one with no
 * white space, '/' or '\' of at most 32 bytes after the last ':'; it must then be a finite number
 * above 0, so "C:\clip.pt" and "hf:org/model" keep their colons and "x.pt:abc" is an error (a
 * file really named "a:b" is written "a:b:1"). Refused, with one line and VQC_ERR_USAGE: an
 * empty name ("a,,b", ":0.5"), a weight that is not a number above 0, the same name twice (give
 * it one weight instead), more than VQC_MAX_CLIPS models. A text that names an existing file as
 * a whole is that one file, commas and colons included, as before models could be listed. */
#ifndef VQC_GEN_CLIPSPEC_H
#define VQC_GEN_CLIPSPEC_H

#include <stddef.h>

#include "vqclip.h"

typedef struct vqc_clip_entry {
    char name[4096]; /* a model name or path, trimmed */
    double weight;   /* > 0; 1 when not given */
} vqc_clip_entry;

/* Parses spec into out[0 .. *n) (out holds VQC_MAX_CLIPS entries). Returns 0 or VQC_ERR_USAGE
 * with a one-line message naming the bad part. No file is read except to test whether the whole
 * text names one. */
int vqc_clip_spec_parse(const char *spec, vqc_clip_entry *out, int *n);

/* Writes the spec of n resolved models (their paths and weights) into buf: "PATH" for one
 * model of weight 1 (the very text that named one model before lists existed), else each
 * "PATH[:W]" joined by ',', W written only when not 1, exactly (the shortest "%.Ng" that reads
 * back the same) and also as ":1" when the path itself ends in something weight-like, so that
 * vqc_clip_spec_parse reads the text back to the same models and weights. Returns 0, or
 * VQC_ERR_USAGE when a path of several holds ',' (it cannot be listed) or buf is too small. */
int vqc_clip_spec_format(const char *const *paths, const double *weights, int n, char *buf,
                         size_t len);

#endif

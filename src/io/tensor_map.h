/* A read-only map from names to tensors stored in a weight file.
 *
 * vqc_tmap_open() reads any of the weight containers vqclip knows, without executing anything:
 *   - PyTorch zip archives written by torch.save (>= 1.6): `<prefix>/data.pkl` + `<prefix>/data/N`;
 *   - TorchScript archives (OpenAI's CLIP .pt files): `<prefix>/data.pkl` holding module objects;
 *   - the legacy (pre-1.6) non-zip torch.save format;
 *   - safetensors.
 * The pickled object tree is flattened: every tensor reachable from the root gets a dotted name
 * made of dict keys, list/tuple indices and object attribute names, e.g.
 *   Lightning checkpoint: "state_dict.encoder.conv_in.weight", "optimizer_states.0.state.3.exp_avg"
 *   plain state dict:     "encoder.conv_in.weight"
 *   TorchScript module:   "visual.transformer.resblocks.0.attn.in_proj_weight"
 *   safetensors:          the header's names as they are.
 * A dict key that is neither a string nor an int becomes "<ClassName>" when it is a class (as
 * Lightning's `callbacks` dict does: "callbacks.<ModelCheckpoint>.best_model_score") and "<key>"
 * otherwise; a bare tensor at the root is named "". Pickled objects contribute the attributes
 * their BUILD state sets (TorchScript modules, plain Python objects); the arguments of calls are
 * never looked at. Non-tensor leaves and tensors of dtypes vqclip has no vqc_dtype for (complex,
 * quantized) are dropped. If two paths give the same name, vqc_tmap_get returns the first in
 * file order.
 * Tensor data is not copied: entries point into the mapped file (or into buffers the map owns
 * for compressed entries). Every entry has been bounds-checked: all elements addressed by
 * shape, strides and offset lie inside its storage. Data is little-endian but not necessarily
 * aligned to its element size (legacy files place storages at arbitrary offsets; torch zip
 * archives align them to 64 bytes): read it with memcpy or check the alignment first. */
#ifndef VQC_IO_TENSOR_MAP_H
#define VQC_IO_TENSOR_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"

#define VQC_MAX_DIMS 8

typedef struct vqc_tensor_info {
    const char *name; /* dotted path, owned by the map */
    vqc_dtype dtype;
    int ndim; /* 0 for a scalar */
    int64_t shape[VQC_MAX_DIMS];
    int64_t strides[VQC_MAX_DIMS]; /* in elements, as torch reports them */
    const void *data;              /* address of element [0,...,0]; valid while the map lives */
    int64_t numel;
} vqc_tensor_info;

typedef struct vqc_tensor_map vqc_tensor_map;

/* Opens `path`, detects its container format and indexes every tensor in it.
 * Returns 0 and sets *out (free with vqc_tmap_free), or a negative VQC_ERR_* code with a
 * one-line message in vqc_error_get(): missing file (VQC_ERR_IO), not a weight file,
 * truncated or hostile content (VQC_ERR_FORMAT), absurd sizes (VQC_ERR_NOMEM). */
int vqc_tmap_open(const char *path, vqc_tensor_map **out);

/* As vqc_tmap_open, for a file image already in memory (`len` bytes at `data`, borrowed: it must
 * outlive the map; nothing is copied). `label` (e.g. the file name) prefixes error messages. */
int vqc_tmap_open_memory(const void *data, size_t len, const char *label, vqc_tensor_map **out);

/* Frees the map and everything it owns; NULL is ignored. */
void vqc_tmap_free(vqc_tensor_map *map);

/* Number of tensors, and the i-th one in file order (NULL when out of range). */
size_t vqc_tmap_count(const vqc_tensor_map *map);
const vqc_tensor_info *vqc_tmap_at(const vqc_tensor_map *map, size_t i);

/* The tensor named `name`, or NULL. */
const vqc_tensor_info *vqc_tmap_get(const vqc_tensor_map *map, const char *name);

/* "zip", "torchscript", "legacy" or "safetensors". */
const char *vqc_tmap_format(const vqc_tensor_map *map);

/* Value of a string entry of the safetensors `__metadata__` object, or NULL (always NULL for
 * the pickle-based formats). */
const char *vqc_tmap_meta(const vqc_tensor_map *map, const char *key);

/* Size of the file in bytes. */
uint64_t vqc_tmap_file_size(const vqc_tensor_map *map);

#endif

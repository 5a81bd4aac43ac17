/* Turning entries of a weight file (vqc_tensor_map) into libtorch tensors for a model. */
#ifndef VQC_MODELS_WEIGHTS_H
#define VQC_MODELS_WEIGHTS_H

#include <stdbool.h>

#include "io/tensor_map.h"
#include "torch/shim.h"

/* Copies the entry `prefix` + `name` of `map` to a new tensor of type dt on dev (caller frees).
 * When ndim >= 0 the entry must have that many dimensions and, where shape[i] >= 0, that size.
 * The tensor is persisted (vqt_persist): enclosing vqt scopes do not free it.
 * Returns NULL with a vqc_error message ("missing weight ...", "weight ... has shape ...") when
 * the entry is absent or does not fit. */
vqt_tensor *vqc_weight(const vqc_tensor_map *map, const char *prefix, const char *name,
                       vqt_device dev, vqc_dtype dt, int ndim, const int64_t *shape);

/* The entry `prefix` + `name`, or NULL when absent (no error recorded). */
const vqc_tensor_info *vqc_weight_info(const vqc_tensor_map *map, const char *prefix,
                                       const char *name);

/* Whether the map has an entry `prefix` + `name`. */
bool vqc_weight_has(const vqc_tensor_map *map, const char *prefix, const char *name);

#endif

/* safetensors: parsing (used by vqc_tmap_open) and writing.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * (padded with spaces), then the raw little-endian, C-contiguous tensor bytes; data_offsets
 * are relative to the end of the header.
 *
 *     const int64_t shape[2] = {2, 3};
 *     float data[6] = {0};
 *     vqc_st_tensor t = {"x", VQC_DTYPE_F32, 2, shape, data};
 *     const char *meta[] = {"seed", "42", NULL};
 *     int rc = vqc_safetensors_write("out.safetensors", &t, 1, meta);
 */
#ifndef VQC_IO_SAFETENSORS_H
#define VQC_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "io/tensor_map.h"
#include "util/dtype.h"

#define VQC_ST_MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's limit */
#define VQC_ST_MAX_TENSORS (1u << 20)

/* One tensor to write: `data` holds numel * element-size bytes, C-contiguous, little-endian. */
typedef struct vqc_st_tensor {
    const char *name;
    vqc_dtype dtype;
    int ndim; /* 0 (scalar) .. VQC_MAX_DIMS */
    const int64_t *shape;
    const void *data; /* may be NULL only when the tensor has no elements */
} vqc_st_tensor;

/* Writes `n` tensors (in that order) and the optional metadata `meta_kv` (a NULL-terminated list
 * of key, value strings; NULL for none) to `path` as safetensors, with the header padded to a
 * multiple of 8 bytes. The file is written by vqc_write_file_atomic (util/atomic_file.h), so
 * `path` is either left untouched or fully replaced. Nothing is retained. Returns 0,
 * VQC_ERR_USAGE (invalid dtype / shape / duplicate or reserved name, odd meta_kv list),
 * VQC_ERR_NOMEM or VQC_ERR_IO, with a one-line message. */
int vqc_safetensors_write(const char *path, const vqc_st_tensor *tensors, size_t n,
                          const char *const *meta_kv);

/* The parsed index of a safetensors image. */
typedef struct vqc_st_index {
    vqc_tensor_info *tensors; /* in header order; names and the array owned by the index */
    size_t count;
    char **meta; /* 2 * nmeta strings: key, value (string-valued entries only) */
    size_t nmeta;
} vqc_st_index;

/* Parses the safetensors image `data` (`len` bytes, borrowed: tensor data pointers point into it)
 * into *out. Every tensor is checked: known dtype, at most VQC_MAX_DIMS non-negative dims, and
 * data_offsets inside the data area matching numel * element-size. `label` prefixes messages.
 * Returns 0 (free *out with vqc_st_index_free, also after a failure), or VQC_ERR_FORMAT /
 * VQC_ERR_NOMEM with a one-line message. */
int vqc_safetensors_parse(const void *data, size_t len, const char *label, vqc_st_index *out);

/* Frees what vqc_safetensors_parse allocated and zeroes *ix; safe on a zeroed index. */
void vqc_st_index_free(vqc_st_index *ix);

#endif

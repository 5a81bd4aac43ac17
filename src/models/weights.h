/* Turning entries of a weight file (vqc_tensor_map) into libtorch tensors for a model.
 *
 * Two ways: vqc_weight() copies an entry into a new tensor (any type, any device);
 * vqc_weight_view() wraps the entry's bytes in place (CPU, stored type, aligned data) so that a
 * model's weights are the file's page-cache pages: nothing is copied at load time, weights that
 * are never used (the VQGAN encoder during generation) never become resident, and the pages
 * are cheap to map. A view keeps its file open through a vqc_weight_file reference.
 *
 *   vqc_weight_file *f = vqc_weight_file_new(map);          // takes the map
 *   vqt_tensor *w = vqc_weight_view(f, "", "decoder.conv_in.weight", cpu, VQC_DTYPE_F32, -1, 0);
 *   vqc_weight_file_unref(f);                                 // the map lives on while w does
 *   ...
 *   vqt_free(w);                                              // last user: the map is freed
 *
 * Caveat of views: the file is mapped, not read; truncating or rewriting it in place while a
 * model uses it changes the weights or kills the process with SIGBUS (replacing it by rename,
 * as downloaders do, is safe). */
#ifndef VQC_MODELS_WEIGHTS_H
#define VQC_MODELS_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>

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

/* vqc_weight_info with the name formatted printf-style ("body.%d.weight", i). */
const vqc_tensor_info *vqc_weight_infof(const vqc_tensor_map *map, const char *prefix,
                                        const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether the map has an entry `prefix` + `name`. */
bool vqc_weight_has(const vqc_tensor_map *map, const char *prefix, const char *name);

/* ---- zero-copy views ---------------------------------------------------------------------- */

/* A reference-counted owner of a tensor map: the loader holds one reference, every view one
 * more; the map is freed with the last. Thread-safe counting (views may die on any thread). */
typedef struct vqc_weight_file vqc_weight_file;

/* Takes ownership of `map` with one reference. Returns NULL (and frees nothing: the map still
 * belongs to the caller) when out of memory. */
vqc_weight_file *vqc_weight_file_new(vqc_tensor_map *map);

/* The map (borrowed; valid while a reference is held). */
const vqc_tensor_map *vqc_weight_file_map(const vqc_weight_file *f);

/* Number of views made from f so far. */
int vqc_weight_file_views(const vqc_weight_file *f);

/* Drops one reference; NULL is ignored. */
void vqc_weight_file_unref(vqc_weight_file *f);

/* As vqc_weight(), but when dev is the CPU, the entry is stored as dt and its data is aligned
 * to the element size, the result views the entry's bytes instead of copying them (and holds a
 * reference to f). A view must never be written: mapped files are read-only and a write
 * faults. Falls back to vqc_weight()'s copy otherwise. Same errors as vqc_weight(). */
vqt_tensor *vqc_weight_view(vqc_weight_file *f, const char *prefix, const char *name,
                            vqt_device dev, vqc_dtype dt, int ndim, const int64_t *shape);

/* Hands the resident pages of map's read-only file mapping back to the kernel (Linux: one scan
 * of /proc/self/maps, then madvise(MADV_DONTNEED) on each private read-only file mapping that
 * holds entries of map). The pages stay in the page cache and are mapped again on the next
 * access, so views stay valid: this only lowers the resident size after weights were copied
 * out of the file, or after a rarely used view (the CLIP text tower) was read. Memory that is
 * not such a mapping (in-memory maps, decompressed entries) is never touched. Returns the
 * number of bytes of address space advised (0 when there is none or on another system). */
size_t vqc_weight_drop_pages(const vqc_tensor_map *map);

#endif

/* A read-only zip reader over a file image in memory (normally an mmap'ed file).
 *
 *     vqc_zip *z;
 *     if (vqc_zip_open(data, len, "model.ckpt", &z) == 0) {
 *         long i = vqc_zip_find(z, "archive/data.pkl");
 *         const void *p; uint64_t n;
 *         if (i >= 0 && vqc_zip_read(z, (size_t)i, &p, &n) == 0) { ... }
 *         vqc_zip_free(z);
 *     }
 *
 * Only the central directory is parsed at open (ZIP and ZIP64); local headers are checked when
 * an entry is read. Stored entries are returned as pointers into the caller's image (no copy);
 * deflated entries are inflated once into buffers the reader owns. Every offset and size is
 * bounds-checked against the image, so a hostile file yields an error, never a wild read. */
#ifndef VQC_IO_ZIPREAD_H
#define VQC_IO_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct vqc_zip vqc_zip;

/* Limits applied to hostile archives. */
#define VQC_ZIP_MAX_ENTRIES (1u << 22)
#define VQC_ZIP_MAX_INFLATE ((uint64_t)1 << 36) /* 64 GiB uncompressed per deflated entry */

/* Parses the central directory of the zip image `data` (`len` bytes). `label` (normally the file
 * path) prefixes error messages and is copied. The image is borrowed: it must outlive the reader.
 * Returns 0 and sets *out (free with vqc_zip_free), or VQC_ERR_FORMAT (not a zip, truncated,
 * inconsistent directory, multi-disk) / VQC_ERR_NOMEM with a one-line message. */
int vqc_zip_open(const void *data, size_t len, const char *label, vqc_zip **out);

/* Frees the reader and every inflated buffer; NULL is ignored. */
void vqc_zip_free(vqc_zip *z);

/* Number of entries in the central directory. */
size_t vqc_zip_count(const vqc_zip *z);

/* Name of entry `i` (NUL-terminated, owned by the reader), or NULL when out of range. */
const char *vqc_zip_name(const vqc_zip *z, size_t i);

/* Uncompressed size of entry `i` as the directory states it (0 when out of range). */
uint64_t vqc_zip_size(const vqc_zip *z, size_t i);

/* Index of the entry named exactly `name` (the first one if the archive repeats it), or -1.
 * O(log n). */
long vqc_zip_find(const vqc_zip *z, const char *name);

/* Sets *data and *size to the uncompressed bytes of entry `i`: a pointer into the image for a
 * stored entry, into a reader-owned buffer for a deflated one (inflated on the first call and
 * kept until vqc_zip_free; its CRC-32 is checked). Returns 0, or VQC_ERR_FORMAT (bad local
 * header, data outside the image, unsupported method, encryption, corrupt deflate stream),
 * VQC_ERR_NOMEM, VQC_ERR_USAGE for an index out of range. */
int vqc_zip_read(vqc_zip *z, size_t i, const void **data, uint64_t *size);

/* Reads entry `i` as vqc_zip_read does and also checks the CRC-32 of a stored entry (meant for
 * small entries such as the pickle; storages are not checked, to keep opening fast). */
int vqc_zip_read_verified(vqc_zip *z, size_t i, const void **data, uint64_t *size);

#endif

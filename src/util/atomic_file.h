/* The one way the library writes a file: atomically, so that a reader, a crash or a full disk
 * never meets a half-written output, and a failed write leaves the old file as it was.
 *
 * The bytes go to a new temporary file ".NAME.XXXXXX" in the directory of NAME, created with
 * O_EXCL and O_CLOEXEC and mode 0666 less the umask (what creating NAME directly would give);
 * the file is fsynced, renamed over NAME, and the directory fsynced (best effort) to make the
 * rename durable. On any failure the temporary file is removed and NAME is untouched. An
 * existing FIFO or device (-o /dev/null, a pipe to a viewer) is written through in place,
 * never replaced. */
#ifndef VQC_UTIL_ATOMIC_FILE_H
#define VQC_UTIL_ATOMIC_FILE_H

#include <stddef.h>

/* One piece of a file (borrowed). */
typedef struct vqc_bytes {
    const void *data; /* may be NULL when len is 0 */
    size_t len;
} vqc_bytes;

/* Writes the n pieces of `parts`, one after the other (a header and the tensors it describes,
 * without gathering them in memory first), to `path` atomically (see the top of this file).
 * Returns 0, or VQC_ERR_IO (VQC_ERR_NOMEM) with a message naming `path`. */
int vqc_write_file_atomic(const char *path, const vqc_bytes *parts, size_t n);

/* Checks that vqc_write_file_atomic(path, ...) can create its temporary file, by creating and
 * removing one (so a read-only file system or sysfs is caught even as root, where access(2)
 * says yes), that `path` is not a directory, and, for an existing FIFO or device, that it is
 * writable; `path` itself is never touched. Returns 0 or VQC_ERR_IO with a message. */
int vqc_check_writable(const char *path);

#endif

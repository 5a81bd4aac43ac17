/* Reading a file that may be gzip-compressed (the BPE vocabulary), with truncation and damage
 * reported the same way by every zlib.
 *
 *     vqc_strbuf text = {0};
 *     if (vqc_gzfile_read(path, 64u << 20, NULL, NULL, &text) == 0) { ... text.p, text.n ... }
 *     vqc_strbuf_free(&text);
 *
 * zlib's gzread is not used: zlib 1.3.2 as Debian unstable ships it reads a gzip member that
 * ends early, or whose first block is not deflate data, as a plain end of file, without an error,
 * where Debian 12's 1.2.13 reports "unexpected end of file" or the bad block. Here inflate runs
 * on the bytes itself, and a member that did not reach its end (its check sum included) is an
 * error with any zlib. */
#ifndef VQC_IO_GZFILE_H
#define VQC_IO_GZFILE_H

#include <stddef.h>

#include "util/strbuf.h"

/* Called after each piece appended to `out`, which now holds `from` bytes from before the piece
 * and the piece after them. Non-zero stops the reading there, as a success. */
typedef int (*vqc_gzfile_stop_fn)(void *user, const vqc_strbuf *out, size_t from);

/* Appends the contents of the file at `path` to `out`: decompressed when the file begins with
 * gzip's magic bytes (1f 8b), else as they are. Gzip members one after another read as one
 * stream, as gzip reads them; bytes after a member that do not begin another are ignored, as gzip
 * does (with a warning there). `stop` (may be NULL) can end the reading early (above). `out` is
 * not let grow past `max_bytes` (what it held before counts).
 * Returns 0, or with a one-line message set: VQC_ERR_IO (cannot open or read the file),
 * VQC_ERR_FORMAT (corrupt gzip data, a member cut short, larger than max_bytes), VQC_ERR_NOMEM.
 * On an error `out` holds what was read before it. */
int vqc_gzfile_read(const char *path, size_t max_bytes, vqc_gzfile_stop_fn stop, void *user,
                    vqc_strbuf *out);

#endif

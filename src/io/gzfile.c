/* A file that may be gzip-compressed, read with inflate: see gzfile.h. */
#include "io/gzfile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/error.h"

#define CHUNK (1 << 16)

typedef struct {
    const char *path;
    size_t max_bytes;
    vqc_strbuf *out;
    unsigned char *buf; /* CHUNK bytes of inflated output */
} reader;

static int append(const reader *r, const unsigned char *p, size_t n)
{
    if (n > r->max_bytes - r->out->n)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: larger than %zu MiB", r->path,
                             r->max_bytes >> 20);
    return vqc_strbuf_put(r->out, p, n);
}

/* The inflater between chunks: `between` once a member has ended (its check sums matched), until
 * the next one begins; `trailing` once bytes after a member turned out not to begin another. */
typedef struct {
    z_stream z;
    bool between, trailing;
} gunzip;

/* Inflates one chunk of the file into r->out. */
static int inflate_chunk(const reader *r, gunzip *g, unsigned char *in, size_t n)
{
    g->z.next_in = in;
    g->z.avail_in = (uInt)n;
    while (g->z.avail_in > 0) {
        if (g->between) {
            if (g->z.next_in[0] != 0x1f) { /* not another member: gzip ignores the rest too */
                g->trailing = true;
                return 0;
            }
            if (inflateReset(&g->z) != Z_OK)
                return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt gzip data", r->path);
            g->between = false;
        }
        g->z.next_out = r->buf;
        g->z.avail_out = CHUNK;
        int zr = inflate(&g->z, Z_NO_FLUSH);
        int rc = append(r, r->buf, CHUNK - g->z.avail_out);
        if (rc)
            return rc;
        if (zr == Z_STREAM_END)
            g->between = true;
        else if (zr == Z_MEM_ERROR)
            return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory decompressing", r->path);
        else if (zr != Z_OK)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt gzip data (%s)", r->path,
                                 g->z.msg ? g->z.msg : "inflate failed");
    }
    return 0;
}

int vqc_gzfile_read(const char *path, size_t max_bytes, vqc_gzfile_stop_fn stop, void *user,
                    vqc_strbuf *out)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vqc_error_set(VQC_ERR_IO, "cannot open %s: %s", path,
                             errno ? strerror(errno) : "out of memory");
    unsigned char *in = malloc(2 * (size_t)CHUNK); /* the file's bytes, then inflate's */
    if (!in) {
        fclose(f);
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", path);
    }
    reader r = {path, max_bytes, out, in + CHUNK};
    gunzip g;
    memset(&g, 0, sizeof g);
    int gz = -1; /* not known until the first bytes */
    bool stopped = false;
    int rc = vqc_strbuf_put(out, "", 0);
    if (!rc && out->n > max_bytes)
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: larger than %zu MiB", path, max_bytes >> 20);
    while (!rc && !stopped && !g.trailing) {
        size_t n = fread(in, 1, CHUNK, f);
        if (n == 0)
            break;
        if (gz < 0) {
            /* fread fills the chunk but at the end of the file: 2 bytes are there if any are */
            gz = n >= 2 && in[0] == 0x1f && in[1] == 0x8b;
            if (gz && inflateInit2(&g.z, 16 + MAX_WBITS) != Z_OK) {
                gz = 0; /* nothing to end */
                rc = vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory decompressing", path);
                break;
            }
        }
        size_t from = out->n;
        rc = gz ? inflate_chunk(&r, &g, in, n) : append(&r, in, n);
        if (!rc && stop && out->n > from)
            stopped = stop(user, out, from) != 0;
    }
    if (!rc && !stopped && !g.trailing && ferror(f))
        rc = vqc_error_set(VQC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    else if (!rc && !stopped && gz == 1 && !g.between)
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: truncated gzip data (the file ends inside it)",
                           path);
    if (gz == 1)
        inflateEnd(&g.z);
    free(in);
    fclose(f);
    return rc;
}

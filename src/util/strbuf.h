/* The one growable byte string of the library: text built piece by piece (a header, a
 * description, normalised text) or bytes gathered before one write (a PNG).
 *
 *     vqc_strbuf b = {0};
 *     vqc_strbuf_printf(&b, "size=%dx%d\n", w, h);
 *     vqc_strbuf_json(&b, name);
 *     if (b.failed) ... (VQC_ERR_NOMEM, message recorded)
 *     use(b.p, b.n);
 *     vqc_strbuf_free(&b);
 *
 * Appends can be checked one by one (each returns 0 or VQC_ERR_NOMEM) or once at the end: after
 * a failed append the buffer keeps what it held, `failed` is set and later appends do nothing,
 * so a sequence of appends either completes or is known to be incomplete. */
#ifndef VQC_UTIL_STRBUF_H
#define VQC_UTIL_STRBUF_H

#include <stddef.h>

typedef struct vqc_strbuf {
    char *p;    /* the bytes, NUL-terminated once anything was appended; NULL before */
    size_t n;   /* bytes held, the NUL not counted */
    size_t cap; /* bytes allocated */
    int failed; /* an append ran out of memory */
} vqc_strbuf;

/* Appends n bytes of s (any bytes; s may be NULL when n is 0). Appending 0 bytes still
 * allocates, so that p is a valid empty string afterwards. Returns 0, or VQC_ERR_NOMEM with a
 * message recorded (also when an earlier append failed). */
int vqc_strbuf_put(vqc_strbuf *b, const void *s, size_t n);

/* Appends the NUL-terminated string s; as vqc_strbuf_put. */
int vqc_strbuf_puts(vqc_strbuf *b, const char *s);

/* Appends printf-style formatted text; as vqc_strbuf_put. */
int vqc_strbuf_printf(vqc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s as a JSON string literal: quoted, with '"' and '\\' backslash-escaped and the bytes
 * below 0x20 written as \u00XX; every other byte (UTF-8 included) is copied as it is. As
 * vqc_strbuf_put. */
int vqc_strbuf_json(vqc_strbuf *b, const char *s);

/* Empties the buffer, keeping its memory, and forgets an earlier failure. */
void vqc_strbuf_clear(vqc_strbuf *b);

/* Frees the buffer's memory and zeroes it (ready for reuse). */
void vqc_strbuf_free(vqc_strbuf *b);

#endif

/* The one growable byte string (see strbuf.h). */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* Makes room for `extra` more bytes and the NUL. */
static int reserve(vqc_strbuf *b, size_t extra)
{
    if (b->failed)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory (%zu bytes of text)", b->cap);
    if (extra > SIZE_MAX / 2 - b->n) {
        b->failed = 1;
        return vqc_error_set(VQC_ERR_NOMEM, "text too large");
    }
    size_t need = b->n + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory (%zu bytes of text)", cap);
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int vqc_strbuf_put(vqc_strbuf *b, const void *s, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int vqc_strbuf_puts(vqc_strbuf *b, const char *s)
{
    return vqc_strbuf_put(b, s, strlen(s));
}

int vqc_strbuf_printf(vqc_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return vqc_error_set(VQC_ERR_NOMEM, "text cannot be formatted");
    }
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
    return 0;
}

int vqc_strbuf_json(vqc_strbuf *b, const char *s)
{
    int rc = vqc_strbuf_put(b, "\"", 1);
    for (size_t run = 0; !rc; s += run + 1, run = 0) {
        /* s[0..run) needs no escape; s[run] is the end or a byte that does */
        while (s[run] && s[run] != '"' && s[run] != '\\' && (unsigned char)s[run] >= 0x20)
            run++;
        rc = vqc_strbuf_put(b, s, run);
        if (rc || !s[run])
            break;
        unsigned char c = (unsigned char)s[run];
        char esc[8];
        int len = c < 0x20 ? snprintf(esc, sizeof esc, "\\u%04x", c)
                           : snprintf(esc, sizeof esc, "\\%c", c);
        rc = vqc_strbuf_put(b, esc, (size_t)len);
    }
    return rc ? rc : vqc_strbuf_put(b, "\"", 1);
}

void vqc_strbuf_clear(vqc_strbuf *b)
{
    b->n = 0;
    b->failed = 0;
    if (b->p)
        b->p[0] = '\0';
}

void vqc_strbuf_free(vqc_strbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

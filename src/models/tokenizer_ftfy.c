/* ftfy's mojibake repair (ftfy.fix_encoding, as fix_text's default settings run it), in C.
 *
 * Mojibake here is UTF-8 that some program decoded as a single-byte code page ("cafÃ©" for
 * "café"), possibly more than once. ftfy undoes it in steps, each of which is one of:
 *   1. nothing, when the text is ASCII or does not look bad (vqc_text_is_bad, below);
 *   2. for the first code page (in ftfy's order, see VQC_CP_*) that can encode the whole text:
 *      encode it, put back 0xA0 bytes that became spaces (restore_byte_a0; not for MacRoman),
 *      turn sequences that lost a byte into U+FFFD (replace_lossy_sequences; sloppy pages only),
 *      and decode as UTF-8 (or CESU-8 / Java's modified UTF-8 when bytes 0xED or 0xC0 appear). If
 *      the bytes are not UTF-8, try the next code page;
 *   3. decode_inconsistent_utf8: fix each run of characters that looks like UTF-8 read as a code
 *      page, when it is bad on its own, and leave the rest of the text alone;
 *   4. C1 controls become their Windows-1252 characters (what ftfy's Latin-1-vs-Windows-1252
 *      and fix_c1_controls branches amount to);
 *   5. otherwise nothing.
 * fix_encoding repeats steps until the text stops changing. Everything works on code points
 * (int32_t arrays) between UTF-8 boundaries. */
#include "models/tokenizer_ftfy.h"

#include <stdlib.h>
#include <string.h>
#include <uchar.h>
#include <utf8proc.h>

#include "models/tokenizer_text.h"
#include "util/error.h"

/* decode_inconsistent_utf8 fixes pieces with fix_encoding, which may find pieces again: ftfy
 * bounds this by requiring each piece to be shorter; vqclip also bounds the depth. */
#define MAX_DEPTH 32

/* ---------------------------------------------------------------- code points */

typedef struct {
    int32_t *c;
    size_t n;
} cps;

/* Decodes valid UTF-8 s[0..n) into t (t->c is malloc'ed, at least one element). */
static int cps_decode(const char *s, size_t n, cps *t)
{
    t->n = 0;
    t->c = malloc((n + 1) * sizeof *t->c);
    if (!t->c)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory repairing text");
    for (size_t i = 0; i < n;)
        t->c[t->n++] = vqc_utf8_next(s, n, &i);
    return 0;
}

/* Shortens b to n bytes, keeping it NUL-terminated. */
static void strbuf_truncate(vqc_strbuf *b, size_t n)
{
    b->n = n;
    if (b->p)
        b->p[n] = '\0';
}

static int put_cps(vqc_strbuf *out, const int32_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = vqc_utf8_put(out, c[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- the badness heuristic */

/* Tests on one character beyond the B_* classes. */
enum {
    T_AZ = 1 << 0,     /* [A-Za-z] */
    T_az = 1 << 1,     /* [a-z] */
    T_SPACE = 1 << 2,  /* \s */
    T_WORD = 1 << 3,   /* \w */
    T_NOT_AZ = 1 << 4, /* [^A-Za-z] */
};

typedef struct {
    uint16_t classes;     /* B_* */
    uint8_t tests;        /* T_* */
    const char32_t *also; /* further characters, or NULL */
} slot;

/* A sequence of 1 to 4 characters that each match their slot; `start`: only at the start. */
typedef struct {
    uint8_t start, len;
    slot s[4];
} rule;

#define ACC (B_LOWER_ACC | B_UPPER_ACC)
#define PUNCT (B_START | B_END)
/* Classes that stand out next to B_BAD characters. */
#define NEAR_BAD (B_BAD | ACC | B_BOX | PUNCT | B_CURRENCY | B_NUMERIC | B_LAW)

/* ftfy's juxtapositions, one per alternative of its BADNESS_RE (whose optional `\s?` gives two
 * rows here). A text is bad when any row matches anywhere. */
static const rule rules[] = {
    /* a C1 control anywhere */
    {0, 1, {{B_C1, 0, NULL}}},
    /* characters that are almost only mojibake, next to other unusual ones */
    {0, 2, {{NEAR_BAD, 0, NULL}, {B_BAD, 0, NULL}}},
    {0, 3, {{0, T_AZ, NULL}, {B_LOWER | B_UPPER, 0, NULL}, {B_BAD, 0, NULL}}},
    {0, 2, {{B_BAD, 0, NULL}, {NEAR_BAD & ~B_BAD, 0, NULL}}},
    /* unlikely neighbours among accented letters, symbols and box drawing */
    {0,
     2,
     {{B_LOWER_ACC | B_LOWER | B_BOX | B_END | B_CURRENCY | B_NUMERIC, 0, NULL},
      {B_UPPER_ACC, 0, NULL}}},
    {0, 2, {{B_BOX | B_END | B_CURRENCY | B_NUMERIC, 0, NULL}, {B_LOWER_ACC, 0, NULL}}},
    {0, 2, {{B_LOWER_ACC | B_BOX | B_END, 0, NULL}, {B_CURRENCY, 0, NULL}}},
    {0, 3, {{0, T_SPACE, NULL}, {B_UPPER_ACC, 0, NULL}, {B_CURRENCY, 0, NULL}}},
    {0, 2, {{B_UPPER_ACC | B_BOX, 0, NULL}, {B_NUMERIC | B_LAW, 0, NULL}}},
    {0, 3, {{ACC | B_BOX | B_CURRENCY | B_END, 0, NULL}, {B_START, 0, NULL}, {B_NUMERIC, 0, NULL}}},
    {0,
     3,
     {{ACC | B_CURRENCY | B_NUMERIC | B_BOX | B_LAW, 0, NULL},
      {B_END, 0, NULL},
      {B_START, 0, NULL}}},
    {0, 2, {{B_CURRENCY | B_NUMERIC | B_BOX, 0, NULL}, {B_START, 0, NULL}}},
    {0, 3, {{0, T_az, NULL}, {B_UPPER_ACC, 0, NULL}, {B_START | B_CURRENCY, 0, NULL}}},
    {0, 2, {{B_BOX, 0, NULL}, {B_KAOMOJI, 0, NULL}}},
    {0, 2, {{ACC | B_CURRENCY | B_NUMERIC | PUNCT | B_LAW, 0, NULL}, {B_BOX, 0, NULL}}},
    {0, 2, {{B_BOX, 0, NULL}, {B_END, 0, NULL}}},
    {0, 3, {{ACC, 0, NULL}, {PUNCT, 0, NULL}, {0, T_WORD, NULL}}},
    /* the ligature oe not followed by an ASCII letter; a degree sign after a capital */
    {0, 2, {{0, 0, U"\u0152\u0153"}, {0, T_NOT_AZ, NULL}}},
    {0, 2, {{B_UPPER_ACC, 0, NULL}, {0, 0, U"\u00B0"}}},
    /* two-character Windows-1252 mojibake the classes miss: Â, Ã, Î, Ð + a symbol */
    {0,
     2,
     {{0, 0, U"\u00C2\u00C3\u00CE\u00D0"},
      {PUNCT, 0,
       U"\u20AC\u0153\u0160\u0161\u00A2\u00A3\u0178\u017E\u00A0\u00AD\u00AE\u00A9\u00B0\u00B7"
       U"\u00BB\u2013\u2014\u00B4"}}},
    {0, 2, {{0, 0, U"\u00D7"}, {0, 0, U"\u00B2\u00B3"}}},
    /* Arabic read as Windows-1252: four characters, as the pairs alone are common */
    {0,
     4,
     {{0, 0, U"\u00D8\u00D9"},
      {B_COMMON | B_CURRENCY | B_BAD | B_NUMERIC | B_START, 0,
       U"\u0178\u0160\u00AE\u00B0\u00B5\u00BB"},
      {0, 0, U"\u00D8\u00D9"},
      {B_COMMON | B_CURRENCY | B_BAD | B_NUMERIC | B_START, 0,
       U"\u0178\u0160\u00AE\u00B0\u00B5\u00BB"}}},
    /* South Asian scripts read as Windows-1252 */
    {0, 2, {{0, 0, U"\u00E0"}, {0, 0, U"\u00B2\u00B5\u00B9\u00BC\u00BD\u00BE"}}},
    /* MacRoman */
    {0,
     2,
     {{0, 0, U"\u221A"},
      {0, 0, U"\u00B1\u2202\u2020\u2260\u00AE\u2122\u00B4\u2264\u2265\u00A5\u00B5\u00F8"}}},
    {0, 2, {{0, 0, U"\u2248"}, {0, 0, U"\u00B0\u00A2"}}},
    {0,
     3,
     {{0, 0, U"\u201A"},
      {0, 0, U"\u00C4"},
      {0, 0, U"\u00EC\u00EE\u00EF\u00F2\u00F4\u00FA\u00F9\u00FB\u2020\u00B0\u00A2\u03C0"}}},
    {0, 3, {{0, 0, U"\u201A"}, {0, 0, U"\u00E2\u00F3"}, {0, 0, U"\u00E0\u00E4\u00B0\u00EA"}}},
    /* Windows-1251: U+2000 punctuation; Latin-1 or Cyrillic in three characters; twice */
    {0, 2, {{0, 0, U"\u0432"}, {0, 0, U"\u0402"}}},
    {0,
     3,
     {{0, 0, U"\u0412\u0413\u0420\u0421"},
      {B_C1 | B_BAD | PUNCT | B_CURRENCY, 0, U"\u00B0\u00B5"},
      {0, 0, U"\u0412\u0413\u0420\u0421"}}},
    /* (ГўВЂВ.[A-Za-z ] is seven characters: see five_cyrillic) */
    /* Windows-1252 for à, á and NBSP itself; Ã or Â before a space */
    {0, 2, {{0, 0, U"\u00C3"}, {0, 0, U"\u00A0\u00A1"}}},
    {0, 3, {{0, T_az, NULL}, {0, 0, U"\u00C3\u00C2"}, {0, 0, U" "}}},
    {0, 4, {{0, T_az, NULL}, {0, T_SPACE, NULL}, {0, 0, U"\u00C3\u00C2"}, {0, 0, U" "}}},
    {1, 2, {{0, 0, U"\u00C3\u00C2"}, {0, 0, U" "}}},
    /* Â standing before the very character it encodes */
    {0, 3, {{B_END, T_az, U".,?!"}, {0, 0, U"\u00C2"}, {PUNCT, 0, U" "}}},
    /* Windows-1253: U+2000 punctuation; Latin-1 or Greek in three characters */
    {0, 3, {{0, 0, U"\u03B2"}, {0, 0, U"\u20AC"}, {0, 0, U"\u2122\u00A0\u0386\u00AD\u00AE\u00B0"}}},
    {0,
     3,
     {{0, 0, U"\u0392\u0393\u039E\u039F"},
      {B_C1 | B_BAD | PUNCT | B_CURRENCY, 0, U"\u00B0"},
      {0, 0, U"\u0392\u0393\u039E\u039F"}}},
    /* Windows-1257: U+2000 punctuation */
    {0, 2, {{0, 0, U"\u0101"}, {0, 0, U"\u20AC"}}},
};

/* Python's \w: letters, numbers and the underscore. */
static int is_word(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return c == '_' || (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO);
}

static int slot_match(const slot *s, int32_t c)
{
    int az = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (s->classes && (vqc_badness_class(c) & s->classes))
        return 1;
    if (((s->tests & T_AZ) && az) || ((s->tests & T_az) && c >= 'a' && c <= 'z') ||
        ((s->tests & T_SPACE) && vqc_text_isspace(c)) || ((s->tests & T_WORD) && is_word(c)) ||
        ((s->tests & T_NOT_AZ) && !az))
        return 1;
    for (const char32_t *p = s->also; p && *p; p++)
        if ((int32_t)*p == c)
            return 1;
    return 0;
}

/* "ГўВЂВ" then any character but a newline, then [A-Za-z ]: Windows-1251 mojibake on top of
 * Latin-1 mojibake of Windows-1252 punctuation. */
static int five_cyrillic(const int32_t *c, size_t n)
{
    static const int32_t seq[5] = {0x413, 0x45E, 0x412, 0x402, 0x412};
    if (n < 7)
        return 0;
    for (int i = 0; i < 5; i++)
        if (c[i] != seq[i])
            return 0;
    return c[5] != '\n' &&
           ((c[6] >= 'a' && c[6] <= 'z') || (c[6] >= 'A' && c[6] <= 'Z') || c[6] == ' ');
}

static int cps_is_bad(const int32_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i] < 0x80 && !(c[i] >= 'a' && c[i] <= 'z') && !(c[i] >= 'A' && c[i] <= 'Z') &&
            !vqc_text_isspace(c[i]) && !strchr(".,?!", c[i]))
            continue; /* no rule starts with another ASCII character */
        if (five_cyrillic(c + i, n - i))
            return 1;
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            const rule *ru = &rules[r];
            if ((ru->start && i > 0) || n - i < ru->len)
                continue;
            size_t k = 0;
            while (k < ru->len && slot_match(&ru->s[k], c[i + k]))
                k++;
            if (k == ru->len)
                return 1;
        }
    }
    return 0;
}

int vqc_text_is_bad(const char *s, size_t n)
{
    cps t;
    if (cps_decode(s, n, &t))
        return 0;
    int bad = cps_is_bad(t.c, t.n);
    free(t.c);
    return bad;
}

/* ---------------------------------------------------------------- code pages */

static int is_sloppy(int page)
{
    return page >= VQC_CP_CP1252 && page <= VQC_CP_CP1257;
}

/* The byte that stands for c in `page` (sloppily where ftfy is sloppy), or -1. */
static int encode_char(int page, int32_t c)
{
    if (c < 0x80)
        return c == 0x1A && is_sloppy(page) ? -1 : c; /* sloppy pages use 0x1A for U+FFFD */
    if (c == 0xFFFD && is_sloppy(page))
        return 0x1A;
    if (c > 0xFFFF)
        return -1;
    const vqc_cp_entry *e;
    size_t k = vqc_codepage_lookup(c, &e);
    for (size_t i = 0; i < k; i++)
        if (e[i].page == page)
            return e[i].byte;
    if (is_sloppy(page) && c <= 0xFF && vqc_codepage_char(page, (unsigned)c) < 0)
        return c; /* an undefined byte stands for its Latin-1 character */
    return -1;
}

/* Encodes t in `page` into `bytes` (cleared first); returns 1, or 0 when some character has no
 * byte there. */
static int encode_text(int page, const cps *t, vqc_strbuf *bytes, int *rc)
{
    vqc_strbuf_clear(bytes);
    for (size_t i = 0; i < t->n; i++) {
        int b = encode_char(page, t->c[i]);
        if (b < 0)
            return 0;
        unsigned char byte = (unsigned char)b;
        if ((*rc = vqc_strbuf_put(bytes, &byte, 1)))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- byte-level repairs */

/* A byte class is a NUL-terminated list of inclusive (lo, hi) byte pairs. */
static int in_class(unsigned char b, const char *cls)
{
    for (; *cls; cls += 2)
        if (b >= (unsigned char)cls[0] && b <= (unsigned char)cls[1])
            return 1;
    return 0;
}

/* A byte pattern: up to 6 classes, NULL after the last. */
typedef const char *bpat[7];

/* Length of the first of pats[0..np) that matches at b[i..n), or 0. */
static size_t match_at(const unsigned char *b, size_t n, size_t i, const bpat *pats, size_t np)
{
    for (size_t p = 0; p < np; p++) {
        size_t k = 0;
        while (pats[p][k] && i + k < n && in_class(b[i + k], pats[p][k]))
            k++;
        if (!pats[p][k])
            return k;
    }
    return 0;
}

#define CONT "\x80\xBF"
#define CONT_NOT_85_A0 "\x80\x84\x86\x9F\xA1\xBF"

/* UTF-8 sequences whose 0xA0 byte became a space: a lead byte that makes likely characters with
 * 0xA0, or a sequence that is complete apart from the space. */
static const bpat altered[] = {
    {"\xC2\xC3\xC5\xC5\xCE\xCE\xD0\xD0\xD9\xD9", "  ", NULL},
    {"\xE2\xE3", "  ", CONT_NOT_85_A0, NULL},
    {"\xE0\xE3", CONT_NOT_85_A0, "  ", NULL},
    {"\xF0\xF0", "  ", CONT, CONT, NULL},
    {"\xF0\xF0", CONT, "  ", CONT, NULL},
    {"\xF0\xF0", CONT, CONT, "  ", NULL},
};
#define N_ALTERED (sizeof altered / sizeof altered[0])

#define SUB "\x1A\x1A"
#define SUB_Q "\x1A\x1A??"
#define SUB_CONT "\x1A\x1A\x80\xBF"
#define SUB_Q_CONT "\x1A\x1A??\x80\xBF"

/* UTF-8 (and CESU-8) sequences in which a byte became 0x1A (what a sloppy page encodes U+FFFD
 * as) or, once per sequence, '?'; and 0x1A alone. */
static const bpat lossy[] = {
    {"\xC2\xDF", SUB, NULL},
    {"\xC2\xC3", "??", NULL},
    {"\xED\xED", "\xA0\xAF", SUB_Q, "\xED\xED", "\xB0\xBF", SUB_Q_CONT, NULL},
    {"\xED\xED", "\xA0\xAF", SUB_Q_CONT, "\xED\xED", "\xB0\xBF", SUB_Q, NULL},
    {"\xE0\xEF", SUB_Q, SUB_CONT, NULL},
    {"\xE0\xEF", SUB_CONT, SUB_Q, NULL},
    {"\xF0\xF4", SUB_Q, SUB_CONT, SUB_CONT, NULL},
    {"\xF0\xF4", SUB_CONT, SUB_Q, SUB_CONT, NULL},
    {"\xF0\xF4", SUB_CONT, SUB_CONT, SUB_Q, NULL},
    {SUB, NULL},
};
#define N_LOSSY (sizeof lossy / sizeof lossy[0])

static int has_match(const vqc_strbuf *b, const bpat *pats, size_t np)
{
    for (size_t i = 0; i < b->n; i++)
        if (match_at((const unsigned char *)b->p, b->n, i, pats, np))
            return 1;
    return 0;
}

/* Whether "\xC3 " at b[i] (already matched) starts a Latin-1-era "à " whose 0xA0 was lost: not
 * when a space or a Portuguese word (àquele, àquela, àquilo, às) follows. */
static int a_grave_word(const unsigned char *b, size_t n, size_t i)
{
    static const char *const not_before[] = {" ", "quele", "quela", "quilo", "s "};
    for (size_t k = 0; k < sizeof not_before / sizeof not_before[0]; k++) {
        size_t len = strlen(not_before[k]);
        if (n - (i + 2) >= len && memcmp(b + i + 2, not_before[k], len) == 0)
            return 0;
    }
    return 1;
}

/* ftfy.fixes.restore_byte_a0, in place on `b` (`tmp` is scratch). */
static int restore_byte_a0(vqc_strbuf *b, vqc_strbuf *tmp)
{
    int rc = 0;
    vqc_strbuf_clear(tmp);
    for (size_t i = 0; i < b->n && !rc; i++) {
        const unsigned char *u = (const unsigned char *)b->p;
        if (u[i] == 0xC3 && i + 1 < b->n && u[i + 1] == ' ' && a_grave_word(u, b->n, i)) {
            rc = vqc_strbuf_put(tmp, "\xC3\xA0 ", 3);
            i++;
        } else {
            rc = vqc_strbuf_put(tmp, u + i, 1);
        }
    }
    vqc_strbuf_clear(b);
    for (size_t i = 0; i < tmp->n && !rc;) {
        const unsigned char *u = (const unsigned char *)tmp->p;
        size_t k = match_at(u, tmp->n, i, altered, N_ALTERED);
        if (!k) {
            rc = vqc_strbuf_put(b, u + i++, 1);
            continue;
        }
        for (size_t j = i; j < i + k && !rc; j++)
            rc = vqc_strbuf_put(b, u[j] == ' ' ? "\xA0" : (const char *)u + j, 1);
        i += k;
    }
    return rc;
}

/* ftfy.fixes.replace_lossy_sequences, in place on `b` (`tmp` is scratch). */
static int replace_lossy(vqc_strbuf *b, vqc_strbuf *tmp)
{
    int rc = 0;
    vqc_strbuf_clear(tmp);
    for (size_t i = 0; i < b->n && !rc;) {
        size_t k = match_at((const unsigned char *)b->p, b->n, i, lossy, N_LOSSY);
        rc = k ? vqc_strbuf_put(tmp, "\xEF\xBF\xBD", 3) : vqc_strbuf_put(tmp, b->p + i, 1);
        i += k ? k : 1;
    }
    vqc_strbuf swap = *b;
    *b = *tmp;
    *tmp = swap;
    return rc;
}

/* Decodes b[0..n) as strict UTF-8, or with `variants` also as ftfy's "utf-8-variants": C0 80 is
 * U+0000 (Java) and a surrogate pair encoded as two 3-byte sequences is one character (CESU-8).
 * Appends to `out` and returns 0; returns 1 when the bytes do not decode, <0 on error. */
static int decode_utf8(const unsigned char *b, size_t n, int variants, vqc_strbuf *out)
{
    if (!variants)
        return vqc_text_utf8_valid((const char *)b, n) ? vqc_strbuf_put(out, b, n) : 1;
    for (size_t i = 0; i < n;) {
        int rc;
        /* ftfy's pattern ends in "(\x80|$)", and Python's $ also matches before a final '\n' */
        if (b[i] == 0xC0 && i + 1 < n && (b[i + 1] == 0x80 || (b[i + 1] == '\n' && i + 2 == n))) {
            rc = vqc_strbuf_put(out, "", 1);
            i += 2;
        } else if (b[i] == 0xED && i + 1 < n && b[i + 1] >= 0xA0) {
            if (n - i < 6 || b[i + 1] > 0xAF || (b[i + 2] & 0xC0) != 0x80 || b[i + 3] != 0xED ||
                b[i + 4] < 0xB0 || b[i + 4] > 0xBF || (b[i + 5] & 0xC0) != 0x80)
                return 1; /* a lone surrogate */
            int32_t c = 0x10000 + ((b[i + 1] & 0x0F) << 16) + ((b[i + 2] & 0x3F) << 10) +
                        ((b[i + 4] & 0x0F) << 6) + (b[i + 5] & 0x3F);
            rc = vqc_utf8_put(out, c);
            i += 6;
        } else {
            size_t len = b[i] < 0x80 ? 1 : b[i] < 0xE0 ? 2 : b[i] < 0xF0 ? 3 : 4;
            if (len > n - i || !vqc_text_utf8_valid((const char *)b + i, len))
                return 1;
            rc = vqc_strbuf_put(out, b + i, len);
            i += len;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- UTF-8 clues */

/* Whether c is what a byte in lo..hi stands for in Latin-1 or one of the Windows code pages
 * (strictly: undefined bytes stand for nothing). */
static int from_bytes(int32_t c, unsigned lo, unsigned hi)
{
    if (c < 0x80 || c > 0xFFFF)
        return 0;
    const vqc_cp_entry *e;
    size_t k = vqc_codepage_lookup(c, &e);
    for (size_t i = 0; i < k && e[i].page <= VQC_CP_CP1257; i++)
        if (e[i].byte >= lo && e[i].byte <= hi)
            return 1;
    return 0;
}

/* A UTF-8 continuation byte read as a code page (a space may have been 0xA0). */
static int clue_cont(int32_t c)
{
    return c == ' ' || (c >= 0x80 && c <= 0xBF) || from_bytes(c, 0x80, 0xBF);
}

/* The same without the characters that also stand for themselves next to mojibake: space, dashes,
 * quotation marks, bullet and ellipsis. */
static int clue_cont_strict(int32_t c)
{
    return c != ' ' && !(c >= 0x2013 && c <= 0x201E) && c != 0x2022 && c != 0x2026 && clue_cont(c);
}

/* Length of the run of UTF-8-looking sequences at c[0..n): lead bytes (0xC2..0xDF, 0xE0..0xEF,
 * 0xF0 or 0xF3 as characters) each followed by enough continuations; 0 when none. */
static size_t utf8_run(const int32_t *c, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t need = 0;
        if (i + 1 < n && from_bytes(c[i], 0xC2, 0xDF) && clue_cont(c[i + 1]))
            need = 2;
        else if (i + 2 < n && from_bytes(c[i], 0xE0, 0xEF) && clue_cont(c[i + 1]) &&
                 clue_cont(c[i + 2]))
            need = 3;
        else if (i + 3 < n && (from_bytes(c[i], 0xF0, 0xF0) || from_bytes(c[i], 0xF3, 0xF3)) &&
                 clue_cont(c[i + 1]) && clue_cont(c[i + 2]) && clue_cont(c[i + 3]))
            need = 4;
        if (!need)
            return i;
        i += need;
    }
}

/* Whether utf8_run finds anything in t (ftfy's UTF8_DETECTOR_RE.search). */
static int has_run(const cps *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (!(i > 0 && clue_cont_strict(t->c[i - 1])) && utf8_run(t->c + i, t->n - i))
            return 1;
    return 0;
}

static int fix_encoding(const int32_t *c, size_t n, vqc_strbuf *out, int depth);

/* ftfy.fixes.decode_inconsistent_utf8: each run found by utf8_run (not just after a strict
 * continuation, so as not to cut into a longer garble) that is shorter than the whole text and
 * bad on its own is replaced by its fix_encoding. Returns 0 or an error. */
static int decode_inconsistent(const cps *t, vqc_strbuf *out, int depth)
{
    int rc = 0;
    for (size_t i = 0; i < t->n && !rc;) {
        size_t k = i > 0 && clue_cont_strict(t->c[i - 1]) ? 0 : utf8_run(t->c + i, t->n - i);
        if (k && k < t->n && cps_is_bad(t->c + i, k))
            rc = fix_encoding(t->c + i, k, out, depth + 1);
        else
            rc = put_cps(out, t->c + i, k ? k : 1);
        i += k ? k : 1;
    }
    return rc;
}

/* ---------------------------------------------------------------- fix_encoding */

static int is_ascii(const cps *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->c[i] >= 0x80)
            return 0;
    return 1;
}

/* Step 2 of the file's comment: re-decodes t through the first code page that gives UTF-8.
 * Returns 0 with the text appended to `out`, 1 when no code page works, <0 on error. */
static int redecode(const cps *t, vqc_strbuf *out)
{
    vqc_strbuf bytes = {0}, tmp = {0};
    int rc = 1;
    for (int page = 0; page < VQC_CP_COUNT && rc == 1; page++) {
        int err = 0;
        if (!encode_text(page, t, &bytes, &err)) {
            rc = err ? err : 1;
            continue;
        }
        if (page != VQC_CP_MACROMAN && has_match(&bytes, altered, N_ALTERED))
            err = restore_byte_a0(&bytes, &tmp);
        if (!err && is_sloppy(page))
            err = replace_lossy(&bytes, &tmp);
        if (err) {
            rc = err;
            break;
        }
        int variants =
            bytes.n && (memchr(bytes.p, 0xED, bytes.n) || memchr(bytes.p, 0xC0, bytes.n));
        size_t mark = out->n;
        rc = decode_utf8((const unsigned char *)bytes.p, bytes.n, variants, out);
        if (rc == 1)
            strbuf_truncate(out, mark); /* drop what a failed decode appended */
    }
    vqc_strbuf_free(&bytes);
    vqc_strbuf_free(&tmp);
    return rc;
}

/* One step of ftfy's fix_encoding on t, appended to out. */
static int fix_step(const cps *t, vqc_strbuf *out, int depth)
{
    if (t->n == 0 || is_ascii(t) || !cps_is_bad(t->c, t->n))
        return put_cps(out, t->c, t->n);
    int rc = redecode(t, out);
    if (rc != 1)
        return rc;
    if (depth < MAX_DEPTH) {
        size_t mark = out->n;
        if (has_run(t)) {
            if ((rc = decode_inconsistent(t, out, depth)))
                return rc;
            vqc_strbuf enc = {0};
            if ((rc = put_cps(&enc, t->c, t->n)) == 0 &&
                (out->n - mark != enc.n || memcmp(out->p + mark, enc.p, enc.n) != 0)) {
                vqc_strbuf_free(&enc);
                return 0; /* changed */
            }
            vqc_strbuf_free(&enc);
            strbuf_truncate(out, mark);
            if (rc)
                return rc;
        }
    }
    /* Step 4: C1 controls as Windows-1252 (undefined bytes stay as they are) */
    for (size_t i = 0; i < t->n; i++)
        if ((rc = vqc_utf8_put(out, vqc_text_cp1252(t->c[i]))))
            return rc;
    return 0;
}

/* ftfy.fix_encoding: steps until the text stops changing. Each step that changes the text makes
 * it shorter or removes a C1 control, so 2n + 1 rounds always suffice; the bound only guards. */
static int fix_encoding(const int32_t *c, size_t n, vqc_strbuf *out, int depth)
{
    if (!cps_is_bad(c, n)) /* the usual case, without copies */
        return put_cps(out, c, n);
    cps cur = {malloc((n + 1) * sizeof *c), n}, next = {NULL, 0};
    vqc_strbuf step = {0};
    int rc = cur.c ? 0 : vqc_error_set(VQC_ERR_NOMEM, "out of memory repairing text");
    if (!rc)
        memcpy(cur.c, c, n * sizeof *c);
    for (size_t round = 0; !rc && round <= 2 * n + 1; round++) {
        vqc_strbuf_clear(&step);
        if ((rc = fix_step(&cur, &step, depth)) || (rc = cps_decode(step.p, step.n, &next)))
            break;
        int same = next.n == cur.n && memcmp(next.c, cur.c, cur.n * sizeof *cur.c) == 0;
        free(cur.c);
        cur = next;
        next.c = NULL;
        if (same)
            break;
    }
    if (!rc)
        rc = put_cps(out, cur.c, cur.n);
    free(cur.c);
    vqc_strbuf_free(&step);
    return rc;
}

int vqc_text_fix_encoding(const char *s, size_t n, vqc_strbuf *out)
{
    size_t i = 0;
    while (i < n && !(s[i] & 0x80))
        i++;
    if (i == n) /* ASCII: nothing to repair */
        return vqc_strbuf_put(out, s, n);
    cps t;
    int rc = cps_decode(s, n, &t);
    if (rc)
        return rc;
    rc = fix_encoding(t.c, t.n, out, 0);
    free(t.c);
    return rc;
}

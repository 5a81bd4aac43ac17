/* Text normalisation and pre-tokenization for the CLIP tokenizer, following OpenAI's
 * clip/simple_tokenizer.py:
 *
 *     text = whitespace_clean(basic_clean(text)).lower()
 *     basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
 *     whitespace_clean(t) = re.sub(r'\s+', ' ', t).strip()
 *
 * then re.findall of the pre-tokenizer pattern (see vqc_text_next_piece).
 *
 * ftfy.fix_text (ftfy 6, default settings) works line by line (segments end after '\n', at most
 * 10^6 characters) and repeats these steps on each segment until nothing changes:
 *   unescape_html  only while no segment so far contained '<' ("auto"); see tokenizer_html.c
 *   fix_encoding   mojibake repair ("cafÃ©" -> "café", "â€™" -> "’"): tokenizer_ftfy.c
 *   fix_c1_controls  U+0080..U+009F -> their Windows-1252 characters
 *   fix_latin_ligatures, fix_character_width (fullwidth/halfwidth forms -> NFKC, U+3000 -> ' '),
 *   uncurl_quotes, fix_line_breaks, fix_surrogates (no-op: input is valid UTF-8 by then),
 *   remove_terminal_escapes, remove_control_chars, NFC normalisation.
 * Differences from the reference:
 *   - the fixed-point loop stops after FIX_MAX_ROUNDS rounds (only entities nested deeper than
 *     that, "&amp;amp;amp;...", decode differently);
 *   - Unicode data (categories, case mappings, NFC) comes from utf8proc, whose Unicode version
 *     may differ from that of the Python that made the reference;
 *   - str.lower(): the full mapping of U+0130 and the final-sigma rule are implemented; the
 *     "cased" and "case-ignorable" properties that final sigma needs are approximated (see
 *     is_cased and is_case_ignorable);
 *   - named HTML entities: see tokenizer_html.c. */
#include "models/tokenizer_text.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "models/tokenizer_ftfy.h"
#include "util/error.h"

/* ftfy's max_decode_length: the longest segment fix_text handles at once, in characters. */
#define FIX_MAX_SEGMENT 1000000
/* Bound on ftfy's repeat-until-unchanged loop (see the top of this file). */
#define FIX_MAX_ROUNDS 1000

/* ---------------------------------------------------------------- UTF-8 */

int vqc_utf8_put(vqc_strbuf *b, int32_t cp)
{
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, tmp);
    return vqc_strbuf_put(b, tmp, (size_t)k);
}

/* Decodes the sequence at s[0..n), n >= 1. Returns its length (> 0) with the code point in *cp,
 * or -k when invalid, k >= 1 being the length of the maximal subpart that one U+FFFD replaces
 * (the longest prefix of a well-formed sequence, or 1), as Python's decoder does. */
static int utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int len;
    int32_t v;
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
        lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
        lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return -1;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n || s[i] < lo || s[i] > hi)
            return -i;
        v = (v << 6) | (s[i] & 0x3F);
        lo = 0x80, hi = 0xBF;
    }
    *cp = v;
    return len;
}

int32_t vqc_utf8_next(const char *s, size_t n, size_t *pos)
{
    int32_t cp = 0xFFFD;
    int k = utf8_decode((const unsigned char *)s + *pos, n - *pos, &cp);
    *pos += (size_t)(k > 0 ? k : -k);
    return k > 0 ? cp : 0xFFFD;
}

int vqc_text_repair_utf8(const char *s, size_t n, vqc_strbuf *out)
{
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet copied */
    while (i < n) {
        int32_t cp;
        int k = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        int rc = vqc_strbuf_put(out, s + run, i - run);
        if (!rc)
            rc = vqc_utf8_put(out, 0xFFFD);
        if (rc)
            return rc;
        i += (size_t)-k;
        run = i;
    }
    return vqc_strbuf_put(out, s + run, n - run);
}

int vqc_text_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k < 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

/* ---------------------------------------------------------------- character classes */

int vqc_text_isspace(int32_t c)
{
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F))
        return 1;
    if (c < 0x85)
        return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_letter(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* Unicode's Cased property: Lu, Ll, Lt, plus Other_Lowercase / Other_Uppercase (from Unicode 14;
 * these ranges hold the code points that are cased without being Lu, Ll or Lt). */
static int is_cased(int32_t c)
{
    static const int32_t other[][2] = {
        {0xAA, 0xAA},       {0xBA, 0xBA},       {0x2B0, 0x2B8},     {0x2C0, 0x2C1},
        {0x2E0, 0x2E4},     {0x345, 0x345},     {0x37A, 0x37A},     {0x1D2C, 0x1D6A},
        {0x1D78, 0x1D78},   {0x1D9B, 0x1DBF},   {0x2071, 0x2071},   {0x207F, 0x207F},
        {0x2090, 0x209C},   {0x2160, 0x217F},   {0x24B6, 0x24E9},   {0x2C7C, 0x2C7D},
        {0xA69C, 0xA69D},   {0xA770, 0xA770},   {0xA7F8, 0xA7F9},   {0xAB5C, 0xAB5F},
        {0x10780, 0x10780}, {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
        {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
    };
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
        return 1;
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (c >= other[i][0] && c <= other[i][1])
            return 1;
    return 0;
}

/* Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk, and the Word_Break classes MidLetter,
 * MidNumLet and Single_Quote (listed here). */
static int is_case_ignorable(int32_t c)
{
    static const int32_t word_break[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                         0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                         0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
        k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
        return 1;
    for (size_t i = 0; i < sizeof word_break / sizeof word_break[0]; i++)
        if (c == word_break[i])
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- per-character fixes */

/* Writes the replacement of one code point to `out` (or the code point itself). */
typedef int (*char_map_fn)(int32_t c, vqc_strbuf *out);

/* Applies a per-character map to s[0..n) (like str.translate), appending to `out`. */
static int map_chars(const char *s, size_t n, vqc_strbuf *out, char_map_fn fn)
{
    for (size_t i = 0; i < n;) {
        int rc = fn(vqc_utf8_next(s, n, &i), out);
        if (rc)
            return rc;
    }
    return 0;
}

int32_t vqc_text_cp1252(int32_t c)
{
    /* Windows-1252 for bytes 0x80..0x9F; the five bytes it leaves undefined map to themselves
     * (ftfy's "sloppy-windows-1252", and html.unescape's table for &#128; .. &#159;). */
    static const uint16_t table[32] = {
        0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
        0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178,
    };
    return c >= 0x80 && c <= 0x9F ? (int32_t)table[c - 0x80] : c;
}

static int fix_c1(int32_t c, vqc_strbuf *out)
{
    return vqc_utf8_put(out, vqc_text_cp1252(c));
}

static int fix_ligature(int32_t c, vqc_strbuf *out)
{
    /* ftfy's LIGATURES table: Latin typographic ligatures and legacy digraphs. */
    static const struct {
        int32_t c;
        const char *s;
    } lig[] = {
        {0x132, "IJ"},         {0x133, "ij"},        {0x149, "\xCA\xBCn"}, {0x1C4, "D\xC5\xBD"},
        {0x1C5, "D\xC5\xBE"},  {0x1C6, "d\xC5\xBE"}, {0x1C7, "LJ"},        {0x1C8, "Lj"},
        {0x1C9, "lj"},         {0x1CA, "NJ"},        {0x1CB, "Nj"},        {0x1CC, "nj"},
        {0x1F1, "DZ"},         {0x1F2, "Dz"},        {0x1F3, "dz"},        {0xFB00, "ff"},
        {0xFB01, "fi"},        {0xFB02, "fl"},       {0xFB03, "ffi"},      {0xFB04, "ffl"},
        {0xFB05, "\xC5\xBFt"}, {0xFB06, "st"},
    };
    if ((c >= 0x132 && c <= 0x1F3) || (c >= 0xFB00 && c <= 0xFB06)) {
        for (size_t i = 0; i < sizeof lig / sizeof lig[0]; i++)
            if (lig[i].c == c)
                return vqc_strbuf_put(out, lig[i].s, strlen(lig[i].s));
    }
    return vqc_utf8_put(out, c);
}

static int fix_width(int32_t c, vqc_strbuf *out)
{
    if (c == 0x3000)
        return vqc_utf8_put(out, ' ');
    if (c < 0xFF01 || c > 0xFFEF)
        return vqc_utf8_put(out, c);
    /* ftfy maps each of U+FF01..U+FFEF to its NFKC form. */
    utf8proc_uint8_t one[4], *nfkc = NULL;
    utf8proc_ssize_t k = utf8proc_encode_char(c, one);
    utf8proc_ssize_t m =
        utf8proc_map(one, k, &nfkc, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (m < 0) /* only on allocation failure: the input is one valid character */
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory normalising text");
    int rc = vqc_strbuf_put(out, (const char *)nfkc, (size_t)m);
    free(nfkc);
    return rc;
}

static int fix_quotes(int32_t c, vqc_strbuf *out)
{
    if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B))
        c = '\'';
    else if (c >= 0x201C && c <= 0x201F)
        c = '"';
    return vqc_utf8_put(out, c);
}

static int drop_controls(int32_t c, vqc_strbuf *out)
{
    /* ftfy's CONTROL_CHARS: C0 controls but \t \n \f \r, DEL, deprecated format characters,
     * the BOM, interlinear annotations and U+FFFC. */
    if ((c >= 0 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
        (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
        return 0;
    return vqc_utf8_put(out, c);
}

/* ---------------------------------------------------------------- sequence fixes */

/* ftfy.fixes.fix_line_breaks: CRLF, CR, U+2028, U+2029 and U+0085 become "\n". */
static int fix_line_breaks(const char *s, size_t n, vqc_strbuf *out)
{
    for (size_t i = 0; i < n;) {
        int32_t c = vqc_utf8_next(s, n, &i);
        if (c == '\r' && i < n && s[i] == '\n')
            continue; /* the "\n" that follows is copied next */
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85)
            c = '\n';
        int rc = vqc_utf8_put(out, c);
        if (rc)
            return rc;
    }
    return 0;
}

/* Length in bytes of an ANSI escape at s[0..n) matching \033\[(\d|;)*[a-zA-Z] (\d being any
 * Unicode decimal digit, as in Python's re), or 0. */
static size_t ansi_escape_len(const char *s, size_t n)
{
    if (n < 3 || s[0] != '\033' || s[1] != '[')
        return 0;
    for (size_t i = 2; i < n;) {
        int32_t c = vqc_utf8_next(s, n, &i);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            return i;
        if (c != ';' && utf8proc_category(c) != UTF8PROC_CATEGORY_ND)
            return 0;
    }
    return 0;
}

/* ftfy.fixes.remove_terminal_escapes. */
static int remove_terminal_escapes(const char *s, size_t n, vqc_strbuf *out)
{
    size_t i = 0, run = 0;
    while (i < n) {
        size_t k = s[i] == '\033' ? ansi_escape_len(s + i, n - i) : 0;
        if (!k) {
            i++;
            continue;
        }
        int rc = vqc_strbuf_put(out, s + run, i - run);
        if (rc)
            return rc;
        i += k;
        run = i;
    }
    return vqc_strbuf_put(out, s + run, n - run);
}

static int normalize_nfc(const char *s, size_t n, vqc_strbuf *out)
{
    if (n == 0)
        return 0;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0)
        return vqc_error_set(VQC_ERR_NOMEM, "cannot normalise text: %s", utf8proc_errmsg(m));
    int rc = vqc_strbuf_put(out, (const char *)nfc, (size_t)m);
    free(nfc);
    return rc;
}

/* ---------------------------------------------------------------- ftfy.fix_text */

typedef int (*text_pass_fn)(const char *s, size_t n, vqc_strbuf *out);

static int pass_c1(const char *s, size_t n, vqc_strbuf *out)
{
    return map_chars(s, n, out, fix_c1);
}

static int pass_ligatures(const char *s, size_t n, vqc_strbuf *out)
{
    return map_chars(s, n, out, fix_ligature);
}

static int pass_width(const char *s, size_t n, vqc_strbuf *out)
{
    return map_chars(s, n, out, fix_width);
}

static int pass_quotes(const char *s, size_t n, vqc_strbuf *out)
{
    return map_chars(s, n, out, fix_quotes);
}

static int pass_controls(const char *s, size_t n, vqc_strbuf *out)
{
    return map_chars(s, n, out, drop_controls);
}

/* One round of ftfy's fix_and_explain loop, in ftfy's order, on `cur` (`tmp` is scratch; both
 * must be allocated). The first pass, HTML unescaping, runs only when `unescape` is set. */
static int fix_round(vqc_strbuf *cur, vqc_strbuf *tmp, int unescape)
{
    static const text_pass_fn passes[] = {
        vqc_text_ftfy_unescape,
        vqc_text_fix_encoding,
        pass_c1,
        pass_ligatures,
        pass_width,
        pass_quotes,
        fix_line_breaks,
        remove_terminal_escapes,
        pass_controls,
        normalize_nfc,
    };
    for (size_t i = unescape ? 0 : 1; i < sizeof passes / sizeof passes[0]; i++) {
        vqc_strbuf_clear(tmp);
        int rc = passes[i](cur->p, cur->n, tmp);
        if (rc)
            return rc;
        vqc_strbuf swap = *cur;
        *cur = *tmp;
        *tmp = swap;
    }
    return 0;
}

/* ftfy's fix_and_explain on one segment: rounds until the text stops changing. */
static int fix_segment(const char *s, size_t n, int unescape, vqc_strbuf *out)
{
    vqc_strbuf cur = {0}, tmp = {0}, before = {0};
    int rc = vqc_strbuf_put(&cur, s, n);
    if (!rc)
        rc = vqc_strbuf_put(&tmp, "", 0);
    for (int round = 0; !rc && round < FIX_MAX_ROUNDS; round++) {
        vqc_strbuf_clear(&before);
        rc = vqc_strbuf_put(&before, cur.p, cur.n);
        if (!rc)
            rc = fix_round(&cur, &tmp, unescape);
        if (!rc && cur.n == before.n && memcmp(cur.p, before.p, cur.n) == 0)
            break;
    }
    if (!rc)
        rc = vqc_strbuf_put(out, cur.p, cur.n);
    vqc_strbuf_free(&cur);
    vqc_strbuf_free(&tmp);
    vqc_strbuf_free(&before);
    return rc;
}

/* End of the fix_text segment starting at `pos`: just after the next '\n', or after
 * FIX_MAX_SEGMENT characters, or the end of the text. */
static size_t segment_end(const char *s, size_t n, size_t pos)
{
    size_t chars = 0;
    for (size_t i = pos; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == FIX_MAX_SEGMENT)
            return i;
        if (s[i] == '\n')
            return i + 1;
    }
    return n;
}

int vqc_text_fix(const char *s, size_t n, vqc_strbuf *out)
{
    int unescape = 1; /* unescape_html="auto": off from the first segment containing '<' on */
    for (size_t pos = 0; pos < n;) {
        size_t end = segment_end(s, n, pos);
        if (memchr(s + pos, '<', end - pos))
            unescape = 0;
        int rc = fix_segment(s + pos, end - pos, unescape, out);
        if (rc)
            return rc;
        pos = end;
    }
    return 0;
}

/* ---------------------------------------------------------------- whitespace and case */

/* basic_clean's strip() followed by whitespace_clean(): each run of whitespace becomes one space,
 * and there is none at either end. */
static int collapse_whitespace(const char *s, size_t n, vqc_strbuf *out)
{
    int space = 0, any = 0;
    for (size_t i = 0; i < n;) {
        size_t at = i;
        int rc = 0;
        if (vqc_text_isspace(vqc_utf8_next(s, n, &i))) {
            space = any;
            continue;
        }
        if (space)
            rc = vqc_strbuf_put(out, " ", 1);
        if (!rc)
            rc = vqc_strbuf_put(out, s + at, i - at);
        if (rc)
            return rc;
        space = 0, any = 1;
    }
    return 0;
}

/* The code point that ends just before byte *pos (> 0) of valid UTF-8; moves *pos to its start. */
static int32_t utf8_prev(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos;
    do
        i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    *pos = i;
    return vqc_utf8_next(s, n, &i);
}

/* Python's Final_Sigma test for the U+03A3 at s[at..end): it lowercases to U+03C2 when a cased
 * character precedes it and none follows, skipping case-ignorable characters both ways. */
static int is_final_sigma(const char *s, size_t n, size_t at, size_t end)
{
    int cased_before = 0;
    for (size_t i = at; i > 0;) {
        int32_t c = utf8_prev(s, n, &i);
        if (!is_case_ignorable(c)) {
            cased_before = is_cased(c);
            break;
        }
    }
    if (!cased_before)
        return 0;
    for (size_t i = end; i < n;) {
        int32_t c = vqc_utf8_next(s, n, &i);
        if (!is_case_ignorable(c))
            return !is_cased(c);
    }
    return 1;
}

/* Python's str.lower(): utf8proc's simple lowercase mapping, plus the one unconditional
 * multi-character mapping (U+0130 -> "i" U+0307) and the final-sigma rule. */
static int lower_text(const char *s, size_t n, vqc_strbuf *out)
{
    for (size_t i = 0; i < n;) {
        size_t at = i;
        int32_t c = vqc_utf8_next(s, n, &i);
        int rc;
        if (c == 0x130)
            rc = vqc_strbuf_put(out, "i\xCC\x87", 3);
        else if (c == 0x3A3)
            rc = vqc_utf8_put(out, is_final_sigma(s, n, at, i) ? 0x3C2 : 0x3C3);
        else
            rc = vqc_utf8_put(out, utf8proc_tolower(c));
        if (rc)
            return rc;
    }
    return 0;
}

int vqc_text_clean(const char *s, size_t n, vqc_strbuf *out)
{
    vqc_strbuf a = {0}, b = {0};
    int rc = vqc_strbuf_put(&a, "", 0);
    if (!rc)
        rc = vqc_strbuf_put(&b, "", 0);
    if (!rc)
        rc = vqc_text_repair_utf8(s, n, &a);
    if (!rc)
        rc = vqc_text_fix(a.p, a.n, &b);
    vqc_strbuf_clear(&a);
    if (!rc)
        rc = vqc_text_html_unescape(b.p, b.n, &a);
    vqc_strbuf_clear(&b);
    if (!rc)
        rc = vqc_text_html_unescape(a.p, a.n, &b);
    vqc_strbuf_clear(&a);
    if (!rc)
        rc = collapse_whitespace(b.p, b.n, &a);
    if (!rc)
        rc = lower_text(a.p, a.n, out);
    vqc_strbuf_free(&a);
    vqc_strbuf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- pre-tokenizer */

/* Characters that no alternative of the pattern matches, so findall skips them: the regex
 * module's \s (the White_Space property: str.isspace without U+001C..U+001F), and U+0345
 * COMBINING GREEK YPOGEGRAMMENI, which IGNORECASE puts outside both [\p{L}] and its negation
 * because it case-folds to a letter (iota). Found by testing every code point. */
static int is_skipped(int32_t c)
{
    return (vqc_text_isspace(c) && !(c >= 0x1C && c <= 0x1F)) || c == 0x345;
}

/* Length in bytes of the ASCII literal `lit` at s[i..n) under IGNORECASE (letters match either
 * case, and 's' also matches U+017F LONG S, as in Python's regex module), or 0. */
static size_t match_literal(const char *s, size_t n, size_t i, const char *lit)
{
    size_t start = i;
    for (; *lit; lit++) {
        if (i >= n)
            return 0;
        int32_t c = vqc_utf8_next(s, n, &i), l = (unsigned char)*lit;
        if (c != l && !(l >= 'a' && l <= 'z' && c == l - 32) && !(l == 's' && c == 0x17F))
            return 0;
    }
    return i - start;
}

/* Length in bytes of the pattern's match at s[i] (alternatives tried in order), or 0. */
static size_t match_at(const char *s, size_t n, size_t i)
{
    static const char *const literals[] = {
        "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    if (s[i] == '<' || s[i] == '\'') {
        for (size_t k = 0; k < sizeof literals / sizeof literals[0]; k++) {
            size_t m = match_literal(s, n, i, literals[k]);
            if (m)
                return m;
        }
    }
    size_t j = i;
    int32_t c = vqc_utf8_next(s, n, &j);
    int letters = is_letter(c);
    if (!letters && is_number(c))
        return j - i;
    if (!letters && is_skipped(c))
        return 0;
    while (j < n) { /* [\p{L}]+ or [^\s\p{L}\p{N}]+ */
        size_t k = j;
        int32_t d = vqc_utf8_next(s, n, &k);
        if (letters ? !is_letter(d) : (is_skipped(d) || is_letter(d) || is_number(d)))
            break;
        j = k;
    }
    return j - i;
}

int vqc_text_next_piece(const char *s, size_t n, size_t *pos, size_t *start, size_t *len)
{
    size_t i = *pos;
    while (i < n) {
        size_t m = match_at(s, n, i);
        if (m) {
            *start = i;
            *len = m;
            *pos = i + m;
            return 1;
        }
        vqc_utf8_next(s, n, &i);
    }
    *pos = n;
    return 0;
}

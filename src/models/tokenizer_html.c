/* HTML character references, decoded as Python's html.unescape and ftfy.fixes.unescape_html
 * decode them.
 *
 * The named-entity table below is vqclip's own subset of HTML5's 2231 names: the 252 entities of
 * HTML 4 (Latin-1, symbols and Greek letters, special characters), the all-caps aliases &AMP;
 * &COPY; &GT; &LT; &QUOT; &REG; &TRADE;, and some common HTML5 names (&apos; &hyphen; &check;
 * &lpar; ...). `legacy` marks the 106 names that HTML5, and so Python, also accept without the
 * ';' ("&amp", "&copy", "&eacute"). All of those are in the table, so semicolon-less decoding,
 * including Python's longest-legacy-prefix rule ("&notit;" -> "¬it;"), matches the reference.
 * Difference from the reference: HTML5 names outside the table ("&NotEqualTilde;", "&Jscr;")
 * are left as typed. */
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "models/tokenizer_text.h"
#include "util/error.h"

typedef struct {
    const char *name; /* without '&' and ';' */
    uint32_t cp;
    uint8_t legacy; /* also valid without ';' */
} entity;

/* Sorted by name, byte order (binary search). */
static const entity entities[] = {
    {"AElig", 0xC6, 1},       {"AMP", 0x26, 1},         {"Aacute", 0xC1, 1},
    {"Acirc", 0xC2, 1},       {"Agrave", 0xC0, 1},      {"Alpha", 0x391, 0},
    {"Aring", 0xC5, 1},       {"Atilde", 0xC3, 1},      {"Auml", 0xC4, 1},
    {"Beta", 0x392, 0},       {"COPY", 0xA9, 1},        {"Ccedil", 0xC7, 1},
    {"Chi", 0x3A7, 0},        {"Dagger", 0x2021, 0},    {"Delta", 0x394, 0},
    {"ETH", 0xD0, 1},         {"Eacute", 0xC9, 1},      {"Ecirc", 0xCA, 1},
    {"Egrave", 0xC8, 1},      {"Epsilon", 0x395, 0},    {"Eta", 0x397, 0},
    {"Euml", 0xCB, 1},        {"GT", 0x3E, 1},          {"Gamma", 0x393, 0},
    {"Hat", 0x5E, 0},         {"Iacute", 0xCD, 1},      {"Icirc", 0xCE, 1},
    {"Igrave", 0xCC, 1},      {"Iota", 0x399, 0},       {"Iuml", 0xCF, 1},
    {"Kappa", 0x39A, 0},      {"LT", 0x3C, 1},          {"Lambda", 0x39B, 0},
    {"Mu", 0x39C, 0},         {"Ntilde", 0xD1, 1},      {"Nu", 0x39D, 0},
    {"OElig", 0x152, 0},      {"Oacute", 0xD3, 1},      {"Ocirc", 0xD4, 1},
    {"Ograve", 0xD2, 1},      {"Omega", 0x3A9, 0},      {"Omicron", 0x39F, 0},
    {"Oslash", 0xD8, 1},      {"Otilde", 0xD5, 1},      {"Ouml", 0xD6, 1},
    {"Phi", 0x3A6, 0},        {"Pi", 0x3A0, 0},         {"Prime", 0x2033, 0},
    {"Psi", 0x3A8, 0},        {"QUOT", 0x22, 1},        {"REG", 0xAE, 1},
    {"Rho", 0x3A1, 0},        {"Scaron", 0x160, 0},     {"Sigma", 0x3A3, 0},
    {"THORN", 0xDE, 1},       {"TRADE", 0x2122, 0},     {"Tau", 0x3A4, 0},
    {"Theta", 0x398, 0},      {"Uacute", 0xDA, 1},      {"Ucirc", 0xDB, 1},
    {"Ugrave", 0xD9, 1},      {"Upsilon", 0x3A5, 0},    {"Uuml", 0xDC, 1},
    {"Xi", 0x39E, 0},         {"Yacute", 0xDD, 1},      {"Yuml", 0x178, 0},
    {"Zeta", 0x396, 0},       {"aacute", 0xE1, 1},      {"acirc", 0xE2, 1},
    {"acute", 0xB4, 1},       {"aelig", 0xE6, 1},       {"agrave", 0xE0, 1},
    {"alefsym", 0x2135, 0},   {"alpha", 0x3B1, 0},      {"amp", 0x26, 1},
    {"and", 0x2227, 0},       {"ang", 0x2220, 0},       {"angle", 0x2220, 0},
    {"apos", 0x27, 0},        {"aring", 0xE5, 1},       {"ast", 0x2A, 0},
    {"asymp", 0x2248, 0},     {"atilde", 0xE3, 1},      {"auml", 0xE4, 1},
    {"bdquo", 0x201E, 0},     {"beta", 0x3B2, 0},       {"brvbar", 0xA6, 1},
    {"bsol", 0x5C, 0},        {"bull", 0x2022, 0},      {"bullet", 0x2022, 0},
    {"cap", 0x2229, 0},       {"ccedil", 0xE7, 1},      {"cedil", 0xB8, 1},
    {"cent", 0xA2, 1},        {"centerdot", 0xB7, 0},   {"check", 0x2713, 0},
    {"checkmark", 0x2713, 0}, {"chi", 0x3C7, 0},        {"circ", 0x2C6, 0},
    {"clubs", 0x2663, 0},     {"colon", 0x3A, 0},       {"comma", 0x2C, 0},
    {"commat", 0x40, 0},      {"cong", 0x2245, 0},      {"copy", 0xA9, 1},
    {"crarr", 0x21B5, 0},     {"cross", 0x2717, 0},     {"cup", 0x222A, 0},
    {"curren", 0xA4, 1},      {"dArr", 0x21D3, 0},      {"dagger", 0x2020, 0},
    {"darr", 0x2193, 0},      {"dash", 0x2010, 0},      {"deg", 0xB0, 1},
    {"delta", 0x3B4, 0},      {"diams", 0x2666, 0},     {"divide", 0xF7, 1},
    {"dollar", 0x24, 0},      {"downarrow", 0x2193, 0}, {"eacute", 0xE9, 1},
    {"ecirc", 0xEA, 1},       {"egrave", 0xE8, 1},      {"empty", 0x2205, 0},
    {"emsp", 0x2003, 0},      {"ensp", 0x2002, 0},      {"epsilon", 0x3B5, 0},
    {"equals", 0x3D, 0},      {"equiv", 0x2261, 0},     {"eta", 0x3B7, 0},
    {"eth", 0xF0, 1},         {"euml", 0xEB, 1},        {"euro", 0x20AC, 0},
    {"excl", 0x21, 0},        {"exist", 0x2203, 0},     {"fnof", 0x192, 0},
    {"forall", 0x2200, 0},    {"frac12", 0xBD, 1},      {"frac14", 0xBC, 1},
    {"frac34", 0xBE, 1},      {"frasl", 0x2044, 0},     {"gamma", 0x3B3, 0},
    {"ge", 0x2265, 0},        {"grave", 0x60, 0},       {"gt", 0x3E, 1},
    {"hArr", 0x21D4, 0},      {"half", 0xBD, 0},        {"harr", 0x2194, 0},
    {"hbar", 0x210F, 0},      {"hearts", 0x2665, 0},    {"hellip", 0x2026, 0},
    {"hyphen", 0x2010, 0},    {"iacute", 0xED, 1},      {"icirc", 0xEE, 1},
    {"iexcl", 0xA1, 1},       {"igrave", 0xEC, 1},      {"image", 0x2111, 0},
    {"infin", 0x221E, 0},     {"int", 0x222B, 0},       {"iota", 0x3B9, 0},
    {"iquest", 0xBF, 1},      {"isin", 0x2208, 0},      {"iuml", 0xEF, 1},
    {"kappa", 0x3BA, 0},      {"lArr", 0x21D0, 0},      {"lambda", 0x3BB, 0},
    {"lang", 0x27E8, 0},      {"laquo", 0xAB, 1},       {"larr", 0x2190, 0},
    {"lbrace", 0x7B, 0},      {"lbrack", 0x5B, 0},      {"lceil", 0x2308, 0},
    {"lcub", 0x7B, 0},        {"ldquo", 0x201C, 0},     {"le", 0x2264, 0},
    {"leftarrow", 0x2190, 0}, {"lfloor", 0x230A, 0},    {"lowast", 0x2217, 0},
    {"lowbar", 0x5F, 0},      {"loz", 0x25CA, 0},       {"lpar", 0x28, 0},
    {"lrm", 0x200E, 0},       {"lsaquo", 0x2039, 0},    {"lsqb", 0x5B, 0},
    {"lsquo", 0x2018, 0},     {"lt", 0x3C, 1},          {"macr", 0xAF, 1},
    {"mdash", 0x2014, 0},     {"micro", 0xB5, 1},       {"midast", 0x2A, 0},
    {"middot", 0xB7, 1},      {"minus", 0x2212, 0},     {"mu", 0x3BC, 0},
    {"nabla", 0x2207, 0},     {"nbsp", 0xA0, 1},        {"ndash", 0x2013, 0},
    {"ne", 0x2260, 0},        {"ni", 0x220B, 0},        {"not", 0xAC, 1},
    {"notin", 0x2209, 0},     {"nsub", 0x2284, 0},      {"ntilde", 0xF1, 1},
    {"nu", 0x3BD, 0},         {"num", 0x23, 0},         {"oacute", 0xF3, 1},
    {"ocirc", 0xF4, 1},       {"oelig", 0x153, 0},      {"ograve", 0xF2, 1},
    {"oline", 0x203E, 0},     {"omega", 0x3C9, 0},      {"omicron", 0x3BF, 0},
    {"oplus", 0x2295, 0},     {"or", 0x2228, 0},        {"ordf", 0xAA, 1},
    {"ordm", 0xBA, 1},        {"oslash", 0xF8, 1},      {"otilde", 0xF5, 1},
    {"otimes", 0x2297, 0},    {"ouml", 0xF6, 1},        {"para", 0xB6, 1},
    {"part", 0x2202, 0},      {"percnt", 0x25, 0},      {"period", 0x2E, 0},
    {"permil", 0x2030, 0},    {"perp", 0x22A5, 0},      {"phi", 0x3C6, 0},
    {"pi", 0x3C0, 0},         {"piv", 0x3D6, 0},        {"planck", 0x210F, 0},
    {"plus", 0x2B, 0},        {"plusmn", 0xB1, 1},      {"pound", 0xA3, 1},
    {"prime", 0x2032, 0},     {"prod", 0x220F, 0},      {"prop", 0x221D, 0},
    {"psi", 0x3C8, 0},        {"quest", 0x3F, 0},       {"quot", 0x22, 1},
    {"rArr", 0x21D2, 0},      {"radic", 0x221A, 0},     {"rang", 0x27E9, 0},
    {"raquo", 0xBB, 1},       {"rarr", 0x2192, 0},      {"rbrace", 0x7D, 0},
    {"rbrack", 0x5D, 0},      {"rceil", 0x2309, 0},     {"rcub", 0x7D, 0},
    {"rdquo", 0x201D, 0},     {"real", 0x211C, 0},      {"reg", 0xAE, 1},
    {"rfloor", 0x230B, 0},    {"rho", 0x3C1, 0},        {"rightarrow", 0x2192, 0},
    {"rlm", 0x200F, 0},       {"rpar", 0x29, 0},        {"rsaquo", 0x203A, 0},
    {"rsqb", 0x5D, 0},        {"rsquo", 0x2019, 0},     {"sbquo", 0x201A, 0},
    {"scaron", 0x161, 0},     {"sdot", 0x22C5, 0},      {"sect", 0xA7, 1},
    {"semi", 0x3B, 0},        {"shy", 0xAD, 1},         {"sigma", 0x3C3, 0},
    {"sigmaf", 0x3C2, 0},     {"sim", 0x223C, 0},       {"sol", 0x2F, 0},
    {"spades", 0x2660, 0},    {"star", 0x2606, 0},      {"starf", 0x2605, 0},
    {"sub", 0x2282, 0},       {"sube", 0x2286, 0},      {"sum", 0x2211, 0},
    {"sup", 0x2283, 0},       {"sup1", 0xB9, 1},        {"sup2", 0xB2, 1},
    {"sup3", 0xB3, 1},        {"supe", 0x2287, 0},      {"szlig", 0xDF, 1},
    {"tau", 0x3C4, 0},        {"there4", 0x2234, 0},    {"theta", 0x3B8, 0},
    {"thetasym", 0x3D1, 0},   {"thinsp", 0x2009, 0},    {"thorn", 0xFE, 1},
    {"tilde", 0x2DC, 0},      {"times", 0xD7, 1},       {"trade", 0x2122, 0},
    {"uArr", 0x21D1, 0},      {"uacute", 0xFA, 1},      {"uarr", 0x2191, 0},
    {"ucirc", 0xFB, 1},       {"ugrave", 0xF9, 1},      {"uml", 0xA8, 1},
    {"uparrow", 0x2191, 0},   {"upsih", 0x3D2, 0},      {"upsilon", 0x3C5, 0},
    {"uuml", 0xFC, 1},        {"verbar", 0x7C, 0},      {"vert", 0x7C, 0},
    {"weierp", 0x2118, 0},    {"xi", 0x3BE, 0},         {"yacute", 0xFD, 1},
    {"yen", 0xA5, 1},         {"yuml", 0xFF, 1},        {"zeta", 0x3B6, 0},
    {"zwj", 0x200D, 0},       {"zwnj", 0x200C, 0},
};

/* The entity named s[0..len), or NULL. */
static const entity *entity_find(const char *s, size_t len)
{
    size_t lo = 0, hi = sizeof entities / sizeof entities[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(s, entities[mid].name, len);
        if (c == 0 && entities[mid].name[len] != '\0')
            c = -1; /* s is a proper prefix of the name */
        if (c == 0)
            return &entities[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------- html.unescape */

/* What Python's html.unescape makes of numeric reference `v`: a code point, or -1 for nothing. */
static int32_t charref_value(uint32_t v)
{
    if (v == 0)
        return 0xFFFD;
    if (v == 0x0D || (v >= 0x80 && v <= 0x9F))
        return vqc_text_cp1252((int32_t)v);
    if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
        return 0xFFFD;
    if ((v >= 0x01 && v <= 0x08) || v == 0x0B || (v >= 0x0E && v <= 0x1F) || v == 0x7F ||
        (v >= 0xFDD0 && v <= 0xFDEF) || (v & 0xFFFE) == 0xFFFE)
        return -1;
    return (int32_t)v;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* html.unescape's numeric reference at s[0..n), s[0] == '#': #[0-9]+;? or #[xX][0-9a-fA-F]+;?
 * Returns the bytes it spans (0 when none) and its value in *cp (-1: decodes to nothing). */
static size_t numeric_ref(const char *s, size_t n, int32_t *cp)
{
    size_t i = 1;
    unsigned base = 10;
    if (i < n && (s[i] == 'x' || s[i] == 'X'))
        base = 16, i++;
    size_t first = i;
    uint32_t v = 0;
    for (int d; i < n && (d = hex_digit(s[i])) >= 0 && (unsigned)d < base; i++)
        v = v > 0x10FFFF ? v : v * base + (uint32_t)d; /* saturates above the Unicode range */
    if (i == first)
        return 0;
    if (i < n && s[i] == ';')
        i++;
    *cp = charref_value(v);
    return i;
}

/* html.unescape's named reference at s[0..n) (just after '&'): [^\t\n\f <&#;]{1,32};? decoded as
 * a whole name (with ';', or a legacy name without), else as its longest legacy prefix. Returns
 * the bytes decoded (the rest of the name stays as text) and the character in *cp, or 0. */
static size_t named_ref(const char *s, size_t n, int32_t *cp)
{
    size_t i = 0, chars = 0, ascii = 0;
    while (i < n && chars < 32 && !strchr("\t\n\f <&#;", s[i])) {
        size_t at = i;
        vqc_utf8_next(s, n, &i);
        if (i - at == 1 && ascii == chars)
            ascii++;
        chars++;
    }
    if (chars == 0)
        return 0;
    int semi = i < n && s[i] == ';';
    const entity *e = entity_find(s, i);
    if (e && (semi || e->legacy)) {
        *cp = (int32_t)e->cp;
        return i + (size_t)semi;
    }
    size_t x = semi ? chars : chars - 1; /* Python tries s[:x] for x = len(s)-1 .. 2 */
    for (x = x < ascii ? x : ascii; x >= 2; x--) {
        e = entity_find(s, x);
        if (e && e->legacy) {
            *cp = (int32_t)e->cp;
            return x;
        }
    }
    return 0;
}

/* The length and value of html.unescape's reference at s[0..n) (just after '&'), or 0. */
static size_t html_ref(const char *s, size_t n, int32_t *cp)
{
    if (n == 0)
        return 0;
    return s[0] == '#' ? numeric_ref(s, n, cp) : named_ref(s, n, cp);
}

int vqc_text_html_unescape(const char *s, size_t n, vqc_strbuf *out)
{
    size_t i = 0, run = 0; /* s[run..) is not yet copied */
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        if (!amp)
            break;
        i = (size_t)(amp - s) + 1;
        int32_t cp = -1;
        size_t used = html_ref(s + i, n - i, &cp);
        if (!used)
            continue;
        int rc = vqc_strbuf_put(out, s + run, i - 1 - run);
        if (!rc && cp >= 0)
            rc = vqc_utf8_put(out, cp);
        if (rc)
            return rc;
        i += used;
        run = i;
    }
    return vqc_strbuf_put(out, s + run, n - run);
}

/* ---------------------------------------------------------------- ftfy's unescape_html */

static int is_ascii_alnum(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Length of ftfy's HTML_ENTITY_RE match, &#?[0-9A-Za-z]{1,24};, at s[0..n) (just after '&'),
 * through the ';', or 0. */
static size_t ftfy_entity_len(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '#' ? 1 : 0, first = i;
    while (i < n && is_ascii_alnum(s[i]))
        i++;
    if (i == first || i - first > 24 || i >= n || s[i] != ';')
        return 0;
    return i + 1;
}

/* ftfy also decodes the all-caps form of a lower-case entity name ("&EACUTE;" -> "É", upper-cased)
 * when html.unescape would leave that form alone. name[0..len) is followed by ';'. */
static int ftfy_caps_entity(const char *name, size_t len, int32_t *cp)
{
    char lower[32];
    for (size_t i = 0; i < len; i++) {
        if (name[i] >= 'a' && name[i] <= 'z')
            return 0;
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] | 0x20 : name[i]);
    }
    const entity *e = entity_find(lower, len);
    int32_t ignored;
    if (!e || named_ref(name, len + 1, &ignored))
        return 0;
    *cp = (int32_t)e->cp;
    return 1;
}

/* Appends ftfy's replacement for the entity "&" s[0..len) (len includes the ';'). */
static int ftfy_entity(const char *s, size_t len, vqc_strbuf *out)
{
    int32_t cp = -1;
    if (s[0] == '#') {
        /* Only a reference that html.unescape decodes through its ';' (and not to ';'). */
        if (numeric_ref(s, len, &cp) == len && cp != ';')
            return cp >= 0 ? vqc_utf8_put(out, cp) : 0;
    } else {
        const entity *e = entity_find(s, len - 1);
        if (e)
            return vqc_utf8_put(out, (int32_t)e->cp);
        if (ftfy_caps_entity(s, len - 1, &cp)) /* str.upper(): full mapping for U+00DF */
            return cp == 0xDF ? vqc_strbuf_put(out, "SS", 2)
                              : vqc_utf8_put(out, utf8proc_toupper(cp));
    }
    int rc = vqc_strbuf_put(out, "&", 1);
    return rc ? rc : vqc_strbuf_put(out, s, len);
}

int vqc_text_ftfy_unescape(const char *s, size_t n, vqc_strbuf *out)
{
    size_t i = 0, run = 0; /* s[run..) is not yet copied */
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        if (!amp)
            break;
        i = (size_t)(amp - s) + 1;
        size_t len = ftfy_entity_len(s + i, n - i);
        if (!len)
            continue;
        int rc = vqc_strbuf_put(out, s + run, i - 1 - run);
        if (!rc)
            rc = ftfy_entity(s + i, len, out);
        if (rc)
            return rc;
        i += len;
        run = i;
    }
    return vqc_strbuf_put(out, s + run, n - run);
}

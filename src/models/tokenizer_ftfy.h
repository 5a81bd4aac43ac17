/* Internal to the tokenizer: ftfy's mojibake repair (ftfy.fix_encoding, ftfy 6.3.1 with
 * fix_text's default settings), which the CLIP reference runs inside ftfy.fix_text before it
 * tokenizes. tokenizer_ftfy.c has the algorithm, tokenizer_ftfy_data.c its tables; docs/
 * tokenizer.md describes what is repaired. Functions taking (s, n) read exactly n bytes of valid
 * UTF-8 (no NUL needed). Not part of the public API. */
#ifndef VQC_MODELS_TOKENIZER_FTFY_H
#define VQC_MODELS_TOKENIZER_FTFY_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* ftfy.fix_encoding(s): undoes UTF-8 that was decoded as a single-byte code page (once or
 * several times), when ftfy's heuristic finds the text "bad" and the bytes decode; text that does
 * not look like mojibake is copied unchanged. Appends the result to `out`; returns 0 or
 * VQC_ERR_NOMEM. */
int vqc_text_fix_encoding(const char *s, size_t n, vqc_strbuf *out);

/* ftfy.badness.is_bad(s): whether s[0..n) contains a character sequence that is far more likely
 * mojibake than intended text. */
int vqc_text_is_bad(const char *s, size_t n);

/* The code pages that ftfy tries, in its order. The Windows ones are used "sloppily": a byte the
 * code page leaves undefined stands for the Latin-1 character of that byte, and byte 0x1A for
 * U+FFFD. */
enum {
    VQC_CP_LATIN1,
    VQC_CP_CP1252,
    VQC_CP_CP1251,
    VQC_CP_CP1250,
    VQC_CP_CP1253,
    VQC_CP_CP1254,
    VQC_CP_CP1257,
    VQC_CP_ISO8859_2,
    VQC_CP_MACROMAN,
    VQC_CP_CP437,
    VQC_CP_COUNT
};

/* The character that `byte` (0..255) stands for in code page `page` (strictly: -1 where the page
 * leaves the byte undefined). (tokenizer_ftfy_data.c) */
int32_t vqc_codepage_char(int page, unsigned byte);

/* A byte 0x80..0xFF of a code page and the character it stands for (strictly). */
typedef struct {
    uint16_t c;
    uint8_t page, byte;
} vqc_cp_entry;

/* The bytes 0x80..0xFF that stand for c in any code page, strictly: stores the first in *first
 * and returns how many there are (sorted by page, then byte; 0 when none). Thread-safe.
 * (tokenizer_ftfy_data.c) */
size_t vqc_codepage_lookup(int32_t c, const vqc_cp_entry **first);

/* Classes of ftfy's badness heuristic, as bits. */
enum {
    B_COMMON = 1 << 0,    /* common in any context: NBSP, soft hyphen, dashes, ellipsis... */
    B_C1 = 1 << 1,        /* C1 controls */
    B_BAD = 1 << 2,       /* almost only seen in mojibake: broken bar, currency sign, macron... */
    B_LAW = 1 << 3,       /* section and pilcrow signs */
    B_CURRENCY = 1 << 4,  /* cent, pound, yen, peseta, euro */
    B_START = 1 << 5,     /* punctuation that starts something: inverted marks, left quotes... */
    B_END = 1 << 6,       /* punctuation that ends something: registered, right quotes... */
    B_NUMERIC = 1 << 7,   /* superscripts, fractions, math operators */
    B_KAOMOJI = 1 << 8,   /* letters that emoticons use (O and U variants, degree sign) */
    B_UPPER_ACC = 1 << 9, /* accented capital letters */
    B_LOWER_ACC = 1 << 10,
    B_UPPER = 1 << 11, /* common capitals of other alphabets: thorn, Greek, Cyrillic */
    B_LOWER = 1 << 12,
    B_BOX = 1 << 13, /* box drawing and block elements */
};

/* The B_* classes of code point c (0 for most characters). (tokenizer_ftfy_data.c) */
unsigned vqc_badness_class(int32_t c);

#endif

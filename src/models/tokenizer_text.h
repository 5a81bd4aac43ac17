/* Internal to the tokenizer (tokenizer.c, tokenizer_text.c, tokenizer_html.c): the text
 * normalisation that OpenAI's SimpleTokenizer applies before BPE, and its pre-tokenizer.
 * Every function works on UTF-8; those taking (s, n) read exactly n bytes (no NUL needed) and
 * expect valid UTF-8 unless they say otherwise. Not part of the public API. */
#ifndef VQC_MODELS_TOKENIZER_TEXT_H
#define VQC_MODELS_TOKENIZER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* Appends the UTF-8 encoding of code point `cp` (0..0x10FFFF) to b; returns 0 or
 * VQC_ERR_NOMEM. */
int vqc_utf8_put(vqc_strbuf *b, int32_t cp);

/* Decodes the next code point of valid UTF-8 at s[*pos] (n bytes in all) and advances *pos. */
int32_t vqc_utf8_next(const char *s, size_t n, size_t *pos);

/* Appends `s` (any bytes) to `out` as valid UTF-8: each maximal invalid subsequence becomes
 * U+FFFD, as Python's bytes.decode("utf-8", "replace") does. Returns 0 or VQC_ERR_NOMEM. */
int vqc_text_repair_utf8(const char *s, size_t n, vqc_strbuf *out);

/* Whether s[0..n) is valid UTF-8 (no surrogates, no overlong forms). */
int vqc_text_utf8_valid(const char *s, size_t n);

/* Python's str.isspace(), which is also what `re`'s \s matches in str patterns. */
int vqc_text_isspace(int32_t c);

/* Windows-1252's character for a C1 control code point (U+0080..U+009F); the five bytes it leaves
 * undefined map to themselves. Other code points are returned unchanged. */
int32_t vqc_text_cp1252(int32_t c);

/* Python's html.unescape: appends `s` with character references decoded to `out`.
 * Returns 0 or VQC_ERR_NOMEM. (tokenizer_html.c) */
int vqc_text_html_unescape(const char *s, size_t n, vqc_strbuf *out);

/* ftfy.fixes.unescape_html: decodes only references of the form &#?[0-9A-Za-z]{1,24}; that are
 * known entities (also in all-caps form) or complete numeric references. Appends to `out`;
 * returns 0 or VQC_ERR_NOMEM. (tokenizer_html.c) */
int vqc_text_ftfy_unescape(const char *s, size_t n, vqc_strbuf *out);

/* The implemented subset of ftfy.fix_text (default settings) of `s`, appended to `out`.
 * Returns 0 or VQC_ERR_NOMEM. */
int vqc_text_fix(const char *s, size_t n, vqc_strbuf *out);

/* SimpleTokenizer's full cleaning of raw bytes: UTF-8 repair, vqc_text_fix, html.unescape twice,
 * strip, whitespace collapsing, str.lower(). Appends to `out`; returns 0 or VQC_ERR_NOMEM. */
int vqc_text_clean(const char *s, size_t n, vqc_strbuf *out);

/* The reference's pre-tokenizer, re.findall(pat, text) with
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (IGNORECASE): finds the next match in cleaned text s[*pos..n). Returns 1 and sets *start, *len
 * (bytes) and advances *pos past it, or returns 0 when no match is left. */
int vqc_text_next_piece(const char *s, size_t n, size_t *pos, size_t *start, size_t *len);

#endif

/* OpenAI CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py and clip.tokenize), in C.
 *
 *     vqc_tokenizer *tok;
 *     if (vqc_tokenizer_load("bpe_simple_vocab_16e6.txt.gz", &tok) != 0) {
 *         fprintf(stderr, "%s\n", vqc_error_get());
 *         return 1;
 *     }
 *     int64_t ctx[VQC_TOKENIZER_CONTEXT];
 *     int dropped;
 *     vqc_tokenizer_tokenize(tok, "a painting of a fox", VQC_TOKENIZER_CONTEXT, ctx, &dropped);
 *     // ctx = 49406 320 3086 539 320 3240 49407 0 0 ...
 *     vqc_tokenizer_free(tok);
 *
 * Text goes through the reference's normalisation before the BPE: ftfy.fix_text, html.unescape
 * twice, whitespace collapsing, str.lower(), then the reference's pre-tokenizer regex. All of
 * fix_text's default steps are done (HTML entities, mojibake repair "cafÃ©" -> "café" as ftfy
 * 6.3.1 does it (tokenizer_ftfy.c, docs/tokenizer.md), C1 controls, Latin ligatures, character
 * width, curly quotes, line breaks, terminal escapes, control characters, NFC). Where vqclip's
 * normalisation differs from the reference, see the comment at the top of tokenizer_text.c; in
 * short:
 *   - HTML entities: all numeric references and HTML 4's 252 named entities, the HTML5 legacy
 *     names accepted without ';' (&amp &lt &copy &eacute ...), and some common HTML5 names
 *     (&apos; &hyphen; &check; ...); the rarer HTML5 names (&NotEqualTilde; ...) stay as typed.
 *   - Unicode tables come from utf8proc, whose Unicode version may differ from Python's.
 * Input that is not valid UTF-8 is decoded as Python's bytes.decode("utf-8", "replace") does:
 * each maximal invalid subsequence becomes U+FFFD.
 *
 * Thread safety: a loaded tokenizer is immutable; any number of threads may encode with it. */
#ifndef VQC_MODELS_TOKENIZER_H
#define VQC_MODELS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* CLIP's text context length (clip.tokenize's default). */
#define VQC_TOKENIZER_CONTEXT 77

/* Number of merges that OpenAI's SimpleTokenizer reads from the merges file: 49152 - 256 - 2. */
#define VQC_TOKENIZER_MERGES 48894

typedef struct vqc_tokenizer vqc_tokenizer;

/* Loads a tokenizer from `path`, one of:
 *   - OpenAI's bpe_simple_vocab_16e6.txt.gz, gzip-compressed or not: a header line, then at least
 *     VQC_TOKENIZER_MERGES lines "A B" (later lines are ignored, as in the reference; they are not
 *     even decompressed, so damage past them goes unnoticed). The vocabulary is built as
 *     SimpleTokenizer builds it: 256 byte symbols, the same with "</w>", the merged pairs, then
 *     <|startoftext|> and <|endoftext|> (49408 ids).
 *   - Hugging Face's layout: a vocab.json (a JSON object token -> id), with merges.txt in the same
 *     folder (a header line, then up to VQC_TOKENIZER_MERGES merges; later lines are ignored).
 *     Fewer merges are fine here, as in the reference, since vocab.json defines the ids: the
 *     vocabulary of vqclip's demo CLIP (models/demo) is such a pair, learned from its captions.
 * The layout is recognised by content (a file starting with '{' is a vocab.json).
 * On success stores a new tokenizer in *out (free it with vqc_tokenizer_free) and returns 0.
 * Errors (with vqc_error_get() describing them; *out is set to NULL): VQC_ERR_IO (cannot open or
 * read), VQC_ERR_FORMAT (corrupt gzip, bad JSON, too few or malformed merges, missing special or
 * byte tokens, invalid UTF-8), VQC_ERR_NOMEM, VQC_ERR_USAGE (NULL arguments). */
int vqc_tokenizer_load(const char *path, vqc_tokenizer **out);

/* Frees a tokenizer; NULL is allowed. */
void vqc_tokenizer_free(vqc_tokenizer *tok);

/* SimpleTokenizer.encode(text): the BPE ids of the normalised `text` (NUL-terminated UTF-8;
 * invalid bytes are replaced, see above), without start or end tokens. On success stores a
 * malloc'ed array in *ids (the caller frees it with free(); NULL when *n is 0) and its length in
 * *n, and returns 0. Errors: VQC_ERR_USAGE (NULL arguments), VQC_ERR_NOMEM. */
int vqc_tokenizer_encode(const vqc_tokenizer *tok, const char *text, int32_t **ids, size_t *n);

/* clip.tokenize(text, context_length, truncate=True)[0]: writes `context_length` ids to `out`:
 * the start token, the BPE ids, the end token, then zeros. When that is longer than the context,
 * keeps the first `context_length` ids and makes the last one the end token. Stores in *n_dropped
 * (when not NULL) how many ids were cut (0 when none). Returns 0, or VQC_ERR_USAGE (NULL
 * arguments, context_length < 1) or VQC_ERR_NOMEM; `out` is left unspecified on error. */
int vqc_tokenizer_tokenize(const vqc_tokenizer *tok, const char *text, int context_length,
                           int64_t *out, int *n_dropped);

/* Number of ids (49408 for OpenAI's file; for a vocab.json, the largest id + 1). */
int vqc_tokenizer_vocab_size(const vqc_tokenizer *tok);

/* Id of <|startoftext|> (49406 for OpenAI's file). */
int vqc_tokenizer_start_token(const vqc_tokenizer *tok);

/* Id of <|endoftext|> (49407 for OpenAI's file). */
int vqc_tokenizer_end_token(const vqc_tokenizer *tok);

/* The text that the BPE stage sees: `text` (NUL-terminated, any bytes) after UTF-8 repair, the
 * ftfy.fix_text subset, html.unescape twice, whitespace collapsing and lowercasing. Stores a
 * malloc'ed NUL-terminated UTF-8 string in *out (the caller frees it) and returns 0, or
 * VQC_ERR_USAGE (NULL arguments) or VQC_ERR_NOMEM. For tests and `vqclip tokenize` diagnostics. */
int vqc_tokenizer_normalize(const char *text, char **out);

#endif

/* Tests for the CLIP tokenizer (src/models/tokenizer*.c).
 *
 * Unit tests first (text normalisation, pre-tokenizer, load errors), which need nothing; then the
 * parity tests against OpenAI's tokenizer, which read $VQCLIP_FIXTURES/clip/ (the BPE merges file
 * and tokenizer_cases.json) and are skipped (exit 77) without it. Expected normalisation results
 * come from Python's html.unescape / str.lower and ftfy 6's documented steps. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "models/tokenizer.h"
#include "models/tokenizer_text.h"
#include "testhelp.h"
#include "util/error.h"

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define SLOW 10                   /* sanitizer builds run several times slower */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define SLOW 10
#endif
#endif
#ifndef SLOW
#define SLOW 1
#endif

/* Process CPU time in ms: time limits in these tests use it, so a busy machine does not make
 * them fail. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void check_normalize(const char *in, const char *want)
{
    char *got = NULL;
    ASSERT_OK(vqc_tokenizer_normalize(in, &got));
    if (strcmp(got, want) != 0)
        TEST_FAIL("normalize(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

/* ---------------------------------------------------------------- unit: normalisation */

static void test_normalize_html(void)
{
    /* ftfy unescapes repeatedly while the text has no '<'; then html.unescape runs twice. */
    check_normalize("&amp;amp;lt;", "<");
    check_normalize("<b>&amp;amp;</b>", "<b>&</b>");
    check_normalize("line1 <\n&amp;amp;lt;", "line1 < &lt;"); /* '<' turns ftfy's off for good */
    check_normalize("&EACUTE;t&eacute", "été");
    check_normalize("&SZLIG; &ALPHA;", "ss α");
    check_normalize("&#x1F600; &#0; &#128; &#x110000; &#1; &copy &ampxyz &notit; &#39 &#65a; "
                    "&lt&gt",
                    "😀 \xEF\xBF\xBD € \xEF\xBF\xBD © &xyz ¬it; ' aa; <>");
    check_normalize("&#59; &#x3b;", "; ;");
    check_normalize("AT&T &c", "at&t &c");
    check_normalize("&hellip;&mdash;&nbsp;x", "…— x");
    check_normalize("&quot;quoted&quot; &#39;x&#39; &apos;", "\"quoted\" 'x' '");
    check_normalize("<b> &TRADE; &trade; &reg</b>", "<b> ™ ™ ®</b>");
    check_normalize("&NotEqualTilde; &unknown;", "&notequaltilde; &unknown;"); /* not in table */
}

static void test_normalize_ftfy(void)
{
    check_normalize("it’s “quoted” ﬁne ＬＯＵＤ\xE3\x80\x80ＮＯＩＳＥ",
                    "it's \"quoted\" fine loud noise");
    check_normalize("don\xC2\x92t \xC2\x85", "don't …"); /* C1 controls read as Windows-1252 */
    check_normalize("e\xCC\x81", "é");                   /* NFC */
    check_normalize("\x1B[31mred\x1B[0m", "red");        /* terminal escapes */
    check_normalize("a\x0B"
                    "b\x1C"
                    "c\x7F"
                    "d",
                    "abcd");                       /* control characters removed */
    check_normalize("\xEF\xBB\xBFhello", "hello"); /* byte order mark */
    check_normalize("ŉ Ǆ", "'n dž");               /* ligatures, then uncurled quote */
    check_normalize("ｶﾞ", "ガ");                   /* half width, then NFC */
}

static void test_normalize_space_case(void)
{
    check_normalize("   leading and   trailing   ", "leading and trailing");
    check_normalize("a\xC2\xA0"
                    "b\xE2\x80\xA8"
                    "c\xE3\x80\x80"
                    "d\te\r\nf",
                    "a b c d e f");
    check_normalize("", "");
    check_normalize(" \t\r\n\xC2\xA0 ", "");
    check_normalize("İSTANBUL ΟΔΟΣ Σ ΑΣ. Α'Σ ΑΣΑ", "i\xCC\x87stanbul οδος σ ας. α'ς ασα");
    check_normalize("UPPER lower MiXeD", "upper lower mixed");
}

static void test_invalid_utf8(void)
{
    /* Each maximal invalid subsequence becomes one U+FFFD, as in Python's errors="replace". */
    check_normalize("\xFF\xFE"
                    "abc \xC3",
                    "\xEF\xBF\xBD\xEF\xBF\xBD"
                    "abc \xEF\xBF\xBD");
    check_normalize("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
    check_normalize("\xE2\x82|\xF0\x9F\x98|\xC0\x80", "\xEF\xBF\xBD|\xEF\xBF\xBD|"
                                                      "\xEF\xBF\xBD\xEF\xBF\xBD");
    ASSERT(vqc_text_utf8_valid("caf\xC3\xA9", 5));
    ASSERT(!vqc_text_utf8_valid("caf\xC3", 4));
}

/* ---------------------------------------------------------------- unit: pre-tokenizer */

static void check_pieces(const char *text, const char *const *want, size_t nwant)
{
    size_t pos = 0, start, len, k = 0, n = strlen(text);
    while (vqc_text_next_piece(text, n, &pos, &start, &len)) {
        if (k >= nwant)
            TEST_FAIL("\"%s\": extra piece \"%.*s\"", text, (int)len, text + start);
        if (len != strlen(want[k]) || memcmp(text + start, want[k], len) != 0)
            TEST_FAIL("\"%s\": piece %zu is \"%.*s\", want \"%s\"", text, k, (int)len, text + start,
                      want[k]);
        k++;
    }
    ASSERT_EQ(k, nwant);
}

static void test_pretokenizer(void)
{
    /* Expected pieces from Python's regex.findall with the reference's pattern. */
    static const char *const a[] = {"it", "'s", "a",    "'ſ",        "'",  "test",
                                    "1",  "2",  "!!<|", "endoftext", "|>", "<|endoftext|>",
                                    "x"};
    check_pieces("it's a 'ſ ' test 12 !!<|endoftext|> <|endoftext|>x", a, 13);
    static const char *const b[] = {"'", "sand", "'ll", "'d", "'re", "'ve", "'m", "'t", "'", "x"};
    check_pieces("' sand 'll 'd 're 've 'm 't 'x", b, 10);
    /* U+0345 matches no alternative under IGNORECASE (it case-folds to iota) and is skipped. */
    static const char *const c[] = {"α", "β", "...", "!"};
    check_pieces("α\xCD\x85β ...\xCD\x85!", c, 4);
    static const char *const d[] = {"東京の夜景", "😀", "½", "٣", "ⅻ"};
    check_pieces("東京の夜景 😀 ½٣ⅻ", d, 5);
}

/* ---------------------------------------------------------------- unit: load errors */

/* Path of `name` in the scratch folder `dir` (created); a static buffer. */
static const char *tmp_path(const char *dir, const char *name)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(dir), name);
    return path;
}

static void write_file(const char *path, const void *data, size_t n, int gzip)
{
    if (gzip) {
        gzFile g = gzopen(path, "wb");
        ASSERT(g && gzwrite(g, data, (unsigned)n) == (int)n);
        ASSERT_EQ(gzclose(g), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    ASSERT(f && fwrite(data, 1, n, f) == n);
    ASSERT_EQ(fclose(f), 0);
}

/* A merges text: a header, then `n` merges of pseudo-random letters (with `bad_line` >= 0: that
 * merge line has three fields). */
static char *fake_merges(int n, int bad_line, size_t *len)
{
    char *s = malloc((size_t)n * 8 + 64);
    ASSERT(s);
    size_t k = (size_t)sprintf(s, "#version: 0.2\n");
    unsigned x = 12345;
    for (int i = 0; i < n; i++) {
        char l[5];
        for (int j = 0; j < 5; j++)
            x = x * 1103515245u + 12345u, l[j] = (char)('a' + (x >> 16) % 26);
        k += (size_t)sprintf(s + k, i == bad_line ? "%c %c %c\n" : "%c%c%c %c%c\n", l[0], l[1],
                             l[2], l[3], l[4]);
    }
    *len = k;
    return s;
}

static void expect_load_error(const char *path, int code, const char *needle)
{
    vqc_tokenizer *tok = (vqc_tokenizer *)1;
    int rc = vqc_tokenizer_load(path, &tok);
    if (rc != code)
        TEST_FAIL("loading %s returned %d (%s), want %d", path, rc, vqc_error_get(), code);
    ASSERT(tok == NULL);
    if (!strstr(vqc_error_get(), needle))
        TEST_FAIL("error \"%s\" does not mention \"%s\"", vqc_error_get(), needle);
}

static void test_load_errors(void)
{
    const char *dir = "tokenizer";
    expect_load_error(tmp_path(dir, "missing.txt.gz"), VQC_ERR_IO, "missing.txt.gz");
    const char garbage[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage, not deflate data";
    write_file(tmp_path(dir, "corrupt.txt.gz"), garbage, sizeof garbage, 0);
    expect_load_error(tmp_path(dir, "corrupt.txt.gz"), VQC_ERR_FORMAT, "corrupt gzip");

    size_t n;
    char *m = fake_merges(60000, -1, &n), buf[20000];
    write_file(tmp_path(dir, "whole.txt.gz"), m, n, 1);
    FILE *f = fopen(tmp_path(dir, "whole.txt.gz"), "rb");
    ASSERT(f && fread(buf, 1, sizeof buf, f) == sizeof buf);
    fclose(f);
    write_file(tmp_path(dir, "truncated.txt.gz"), buf, sizeof buf, 0);
    expect_load_error(tmp_path(dir, "truncated.txt.gz"), VQC_ERR_FORMAT, "truncated.txt.gz");
    free(m);

    m = fake_merges(1000, -1, &n);
    write_file(tmp_path(dir, "few.txt.gz"), m, n, 1);
    expect_load_error(tmp_path(dir, "few.txt.gz"), VQC_ERR_FORMAT, "only 1000 merges");
    write_file(tmp_path(dir, "few.txt"), m, n, 0); /* uncompressed: same verdict */
    expect_load_error(tmp_path(dir, "few.txt"), VQC_ERR_FORMAT, "only 1000 merges");
    free(m);
    m = fake_merges(VQC_TOKENIZER_MERGES, 7, &n);
    write_file(tmp_path(dir, "badline.txt"), m, n, 0);
    expect_load_error(tmp_path(dir, "badline.txt"), VQC_ERR_FORMAT, "line 9 is not a merge");
    free(m);
}

static void test_load_errors_json(void)
{
    const char *dir = "tokenizer-json-alone";
    remove(tmp_path(dir, "merges.txt"));
    write_file(tmp_path(dir, "vocab.json"), "{\"a\": 0}", 8, 0);
    expect_load_error(tmp_path(dir, "vocab.json"), VQC_ERR_IO, "merges.txt");

    dir = "tokenizer-json";
    size_t n;
    char *m = fake_merges(VQC_TOKENIZER_MERGES, -1, &n);
    write_file(tmp_path(dir, "merges.txt"), m, n, 0);
    free(m);
    write_file(tmp_path(dir, "bad.json"), "{\"a\": 0,", 8, 0);
    expect_load_error(tmp_path(dir, "bad.json"), VQC_ERR_FORMAT, "not a JSON object");
    write_file(tmp_path(dir, "ids.json"), "{\"a\": 0, \"b\": 0}", 16, 0);
    expect_load_error(tmp_path(dir, "ids.json"), VQC_ERR_FORMAT, "id 0 is used twice");
    write_file(tmp_path(dir, "nobytes.json"), "{\"a\": 0, \"b\": 1}", 16, 0);
    expect_load_error(tmp_path(dir, "nobytes.json"), VQC_ERR_FORMAT, "no token for byte 0x00");

    vqc_tokenizer *tok;
    ASSERT_EQ(vqc_tokenizer_load(NULL, &tok), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_tokenizer_load("x", NULL), VQC_ERR_USAGE);
}

/* ------------------------------------------------------------ parity with OpenAI's tokenizer */

static char *read_text(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb"); /* plain files are read as they are */
    ASSERT(f);
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
    for (int got; s && (got = gzread(f, s + n, (unsigned)(cap - n - 1))) > 0;) {
        n += (size_t)got;
        if (cap - n < 2)
            s = realloc(s, cap *= 2);
    }
    ASSERT(s);
    gzclose(f);
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

static vqc_tokenizer *load_fixture_tokenizer(void)
{
    const char *path = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"); /* VQCLIP_FIXTURES */
    vqc_tokenizer *tok;
    double t0 = cpu_ms();
    ASSERT_OK(vqc_tokenizer_load(path, &tok));
    double ms = cpu_ms() - t0;
    printf("loaded %s in %.1f ms of CPU time\n", path, ms);
    ASSERT(ms < 400 * SLOW); /* about 30 ms; the bound catches linear scans and the like */
    ASSERT_EQ(vqc_tokenizer_vocab_size(tok), 49408);
    ASSERT_EQ(vqc_tokenizer_start_token(tok), 49406);
    ASSERT_EQ(vqc_tokenizer_end_token(tok), 49407);
    return tok;
}

static void check_ids(const vqc_tokenizer *tok, const char *text, const cJSON *want)
{
    int32_t *ids;
    size_t n;
    ASSERT_OK(vqc_tokenizer_encode(tok, text, &ids, &n));
    if (n != (size_t)cJSON_GetArraySize(want))
        TEST_FAIL("\"%s\": %zu ids, want %d", text, n, cJSON_GetArraySize(want));
    size_t i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++)
        if (ids[i] != w->valueint)
            TEST_FAIL("\"%s\": id %zu is %d, want %d", text, i, (int)ids[i], w->valueint);
    free(ids);
}

static void check_context(const vqc_tokenizer *tok, const char *text, const cJSON *bpe,
                          const cJSON *want)
{
    int64_t out[VQC_TOKENIZER_CONTEXT];
    int dropped = -1, n = cJSON_GetArraySize(bpe);
    ASSERT_EQ(cJSON_GetArraySize(want), VQC_TOKENIZER_CONTEXT);
    ASSERT_OK(vqc_tokenizer_tokenize(tok, text, VQC_TOKENIZER_CONTEXT, out, &dropped));
    int i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++)
        if (out[i] != (int64_t)w->valuedouble)
            TEST_FAIL("\"%s\": context[%d] is %lld, want %.0f", text, i, (long long)out[i],
                      w->valuedouble);
    ASSERT_EQ(dropped, n + 2 > VQC_TOKENIZER_CONTEXT ? n + 2 - VQC_TOKENIZER_CONTEXT : 0);
}

/* Every case of tokenizer_cases.json: SimpleTokenizer.encode and clip.tokenize(truncate=True). */
static void test_fixture_cases(const vqc_tokenizer *tok, int context_too)
{
    char *json = read_text(fixture_path("clip/tokenizer_cases.json"), NULL);
    cJSON *root = cJSON_Parse(json);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    ASSERT(cJSON_IsArray(cases) && cJSON_GetArraySize(cases) > 0);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"));
        const cJSON *bpe = cJSON_GetObjectItem(c, "bpe");
        ASSERT(text && cJSON_IsArray(bpe));
        check_ids(tok, text, bpe);
        if (context_too)
            check_context(tok, text, bpe, cJSON_GetObjectItem(c, "context77"));
    }
    printf("%d reference cases match\n", cJSON_GetArraySize(cases));
    cJSON_Delete(root);
    free(json);
}

static void check_encode(const vqc_tokenizer *tok, const char *text, const int32_t *want,
                         size_t nwant)
{
    int32_t *ids;
    size_t n;
    ASSERT_OK(vqc_tokenizer_encode(tok, text, &ids, &n));
    ASSERT_EQ(n, nwant);
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i])
            TEST_FAIL("\"%s\": id %zu is %d, want %d", text, i, (int)ids[i], (int)want[i]);
    free(ids);
}

/* Cases checked against the reference by hand (Python, SimpleTokenizer). */
static void test_more_cases(const vqc_tokenizer *tok)
{
    check_encode(tok, "<|startoftext|>hi<|endoftext|>", (const int32_t[]){49406, 1883, 49407}, 3);
    check_encode(tok, "it's 'ſ", (const int32_t[]){585, 568, 6, 129, 379}, 5);
    check_encode(tok, "α\xCD\x85β", (const int32_t[]){157, 122, 111, 138, 366}, 5);
    check_encode(tok,
                 "\xFF\xFE"
                 "abc \xC3",
                 (const int32_t[]){47356, 39802, 5334, 39802}, 4);
    check_encode(tok, "\xED\xA0\x80", (const int32_t[]){47356, 47356, 39802}, 3);
    check_encode(tok, "a painting of a fox", (const int32_t[]){320, 3086, 539, 320, 3240}, 5);
    check_encode(tok, "", NULL, 0);
    check_encode(tok, " \t\n\xC2\xA0 ", NULL, 0);
}

static void check_context_ids(const int64_t *out, int n, const int64_t *want)
{
    for (int i = 0; i < n; i++)
        if (out[i] != want[i])
            TEST_FAIL("context[%d] is %lld, want %lld", i, (long long)out[i], (long long)want[i]);
}

static void test_truncation(const vqc_tokenizer *tok)
{
    char text[600] = "";
    for (int i = 0; i < 100; i++)
        strcat(text, "word ");
    int64_t out[VQC_TOKENIZER_CONTEXT];
    int dropped;
    ASSERT_OK(vqc_tokenizer_tokenize(tok, text, VQC_TOKENIZER_CONTEXT, out, &dropped));
    ASSERT_EQ(dropped, 102 - VQC_TOKENIZER_CONTEXT);
    ASSERT_EQ(out[0], 49406);
    for (int i = 1; i < VQC_TOKENIZER_CONTEXT - 1; i++)
        ASSERT_EQ(out[i], 2653); /* "word</w>" */
    ASSERT_EQ(out[VQC_TOKENIZER_CONTEXT - 1], 49407);
    ASSERT_OK(vqc_tokenizer_tokenize(tok, text, 2, out, &dropped));
    check_context_ids(out, 2, (const int64_t[]){49406, 49407});
    ASSERT_EQ(dropped, 100);
    ASSERT_OK(vqc_tokenizer_tokenize(tok, text, 1, out, &dropped));
    check_context_ids(out, 1, (const int64_t[]){49407});
    ASSERT_EQ(dropped, 101);
    ASSERT_EQ(vqc_tokenizer_tokenize(tok, text, 0, out, &dropped), VQC_ERR_USAGE);
    ASSERT_OK(vqc_tokenizer_tokenize(tok, "", 5, out, &dropped));
    check_context_ids(out, 5, (const int64_t[]){49406, 49407, 0, 0, 0});
    ASSERT_EQ(dropped, 0);
    ASSERT_OK(vqc_tokenizer_tokenize(tok, "word word word", 5, out, NULL));
    check_context_ids(out, 5, (const int64_t[]){49406, 2653, 2653, 2653, 49407});
}

/* A 100,000-character prompt, and a 100,000-letter word (BPE is O(n log n) per word). */
static void test_long_prompt(const vqc_tokenizer *tok)
{
    const size_t n = 100000;
    char *s = malloc(n + 1);
    ASSERT(s);
    for (size_t i = 0; i < n; i++)
        s[i] = "a painting of a fox, "[i % 21];
    s[n] = '\0';
    int32_t *ids;
    size_t count;
    double t0 = cpu_ms();
    ASSERT_OK(vqc_tokenizer_encode(tok, s, &ids, &count));
    double ms = cpu_ms() - t0;
    ASSERT_EQ(count, 4761 * 6 + 5);
    free(ids);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i * 7 % 26);
    double t1 = cpu_ms();
    ASSERT_OK(vqc_tokenizer_encode(tok, s, &ids, &count));
    double ms_word = cpu_ms() - t1;
    ASSERT(count > 1000 && count < n);
    free(ids);
    free(s);
    printf("100k-character prompt in %.1f ms, 100k-letter word in %.1f ms (CPU time)\n", ms,
           ms_word);
    ASSERT(ms < 2000 * SLOW && ms_word < 2000 * SLOW);
}

/* ---------------------------------------------------------------- Hugging Face layout */

static int printable_byte(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* The UTF-8 of code point c (< 0x800) at out, NUL-terminated; returns its length. */
static size_t put_utf8(char *out, unsigned c)
{
    size_t k = 0;
    if (c < 0x80) {
        out[k++] = (char)c;
    } else {
        out[k++] = (char)(0xC0 | c >> 6);
        out[k++] = (char)(0x80 | (c & 0x3F));
    }
    out[k] = '\0';
    return k;
}

/* Adds the 512 byte tokens (OpenAI's bytes_to_unicode order) to a vocab.json object. */
static int add_byte_tokens(cJSON *vocab)
{
    char sym[256][8], tmp[16];
    int k = 0, extra = 0, id = 0;
    for (int b = 0; b < 256; b++)
        if (printable_byte(b))
            put_utf8(sym[k++], (unsigned)b);
    for (int b = 0; b < 256; b++)
        if (!printable_byte(b))
            put_utf8(sym[k++], 256u + (unsigned)extra++);
    for (int i = 0; i < 256; i++)
        cJSON_AddNumberToObject(vocab, sym[i], id++);
    for (int i = 0; i < 256; i++) {
        snprintf(tmp, sizeof tmp, "%s</w>", sym[i]);
        cJSON_AddNumberToObject(vocab, tmp, id++);
    }
    return id;
}

/* Writes vocab.json and merges.txt equivalent to OpenAI's merges file; returns vocab.json's
 * path. */
static const char *write_hf_layout(void)
{
    const char *dir = "tokenizer-hf";
    char *text = read_text(fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"), NULL);
    cJSON *vocab = cJSON_CreateObject();
    int id = add_byte_tokens(vocab);
    char *line = strchr(text, '\n') + 1, joined[256];
    for (int r = 0; r < VQC_TOKENIZER_MERGES; r++) {
        char *nl = strchr(line, '\n'), *sp = strchr(line, ' ');
        ASSERT(nl && sp && sp < nl && nl - line < (long)sizeof joined);
        snprintf(joined, sizeof joined, "%.*s%.*s", (int)(sp - line), line, (int)(nl - sp - 1),
                 sp + 1);
        cJSON_AddNumberToObject(vocab, joined, id++);
        line = nl + 1;
    }
    write_file(tmp_path(dir, "merges.txt"), text, (size_t)(line - text), 0);
    cJSON_AddNumberToObject(vocab, "<|startoftext|>", id++);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", id++);
    char *json = cJSON_PrintUnformatted(vocab);
    write_file(tmp_path(dir, "vocab.json"), json, strlen(json), 0);
    free(json);
    cJSON_Delete(vocab);
    free(text);
    return tmp_path(dir, "vocab.json");
}

static void test_hf_layout(void)
{
    vqc_tokenizer *tok;
    ASSERT_OK(vqc_tokenizer_load(write_hf_layout(), &tok));
    ASSERT_EQ(vqc_tokenizer_vocab_size(tok), 49408);
    ASSERT_EQ(vqc_tokenizer_start_token(tok), 49406);
    ASSERT_EQ(vqc_tokenizer_end_token(tok), 49407);
    test_fixture_cases(tok, 0);
    vqc_tokenizer_free(tok);
}

/* A vocab.json with a short merges.txt (as the demo CLIP's, learned from its captions): the
 * vocabulary is the JSON file's, the merges apply in order. */
static void test_hf_small(void)
{
    const char *dir = "tokenizer-hf-small";
    const char merges[] = "#version: 0.2\nr e\nre d</w>\nc a\nca t</w>\n";
    write_file(tmp_path(dir, "merges.txt"), merges, sizeof merges - 1, 0);
    cJSON *vocab = cJSON_CreateObject();
    int id = add_byte_tokens(vocab);
    const char *joined[] = {"re", "red</w>", "ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"};
    for (int i = 0; i < 6; i++)
        cJSON_AddNumberToObject(vocab, joined[i], id++);
    char *json = cJSON_PrintUnformatted(vocab);
    write_file(tmp_path(dir, "vocab.json"), json, strlen(json), 0);
    free(json);
    cJSON_Delete(vocab);
    vqc_tokenizer *tok;
    ASSERT_OK(vqc_tokenizer_load(tmp_path(dir, "vocab.json"), &tok));
    ASSERT_EQ(vqc_tokenizer_vocab_size(tok), 518);
    ASSERT_EQ(vqc_tokenizer_start_token(tok), 516);
    ASSERT_EQ(vqc_tokenizer_end_token(tok), 517);
    int64_t ctx[8];
    ASSERT_OK(vqc_tokenizer_tokenize(tok, "Red cat, rec", 8, ctx, NULL));
    /* red</w> cat</w> ,</w> re c</w> */
    const int64_t want[8] = {516, 513, 515, 11 + 256, 512, 'c' - 33 + 256, 517, 0};
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(ctx[i], want[i]);
    vqc_tokenizer_free(tok);
}

int main(void)
{
    test_normalize_html();
    test_normalize_ftfy();
    test_normalize_space_case();
    test_invalid_utf8();
    test_pretokenizer();
    test_load_errors();
    test_load_errors_json();
    test_hf_small();
    printf("unit tests passed\n");

    vqc_tokenizer *tok = load_fixture_tokenizer(); /* skips (77) without the fixtures */
    test_fixture_cases(tok, 1);
    test_more_cases(tok);
    test_truncation(tok);
    test_long_prompt(tok);
    vqc_tokenizer_free(tok);
    test_hf_layout();
    printf("test-tokenizer: all passed\n");
    return 0;
}

/* CLIP's tokenizer on real-world text, mojibake included (src/models/tokenizer_ftfy.c).
 *
 * Unit tests of ftfy's fix_encoding first (they need nothing), then every line of
 * $VQCLIP_FIXTURES/clip/tokenizer_realworld.json through vqc_tokenizer_encode and
 * vqc_tokenizer_tokenize (what the generation loop calls for a prompt), compared with the
 * reference's SimpleTokenizer.encode and clip.tokenize. Misses are counted per kind (plain,
 * unicode, mojibake); the test fails on any. Skipped (77) without the fixtures. Expected texts of
 * the unit tests are ftfy 6.3.1's fix_encoding / fix_text results. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "models/tokenizer.h"
#include "models/tokenizer_ftfy.h"
#include "models/tokenizer_text.h"
#include "testhelp.h"
#include "util/error.h"
#include "util/strbuf.h"

/* ---------------------------------------------------------------- unit: fix_encoding */

static void check_fix_encoding(const char *in, const char *want)
{
    vqc_strbuf out = {0};
    ASSERT_OK(vqc_text_fix_encoding(in, strlen(in), &out));
    ASSERT_OK(vqc_strbuf_put(&out, "", 1)); /* NUL */
    if (strcmp(out.p, want) != 0)
        TEST_FAIL("fix_encoding(\"%s\") = \"%s\", want \"%s\"", in, out.p, want);
    vqc_strbuf_free(&out);
}

static void test_is_bad(void)
{
    static const char *const bad[] = {
        "Â©",    "cafÃ©",     "\xC2\x85", /* a C1 control */
        "â€™",   "Ã\xC2\xA0", "sÃ³",
        "Ã  la", "Â ",        "ÐŸÑ€Ð¸Ð²ÐµÑ‚", /* Cyrillic read as Windows-1252 */
        "вЂ™s",  "├ö",
    };
    static const char *const good[] = {
        "plain ASCII",
        "café",
        "naïve façade",
        "Ünïcödé",
        "© 2017 Endless Mobile",
        "“quoted”",
        "Привет мир",
        "日本語",
        "Björn Axelsson",
        "2 × 3 = 6",
        "(╯°□°)╯",
        "Â",
        "Ã",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!vqc_text_is_bad(bad[i], strlen(bad[i])))
            TEST_FAIL("is_bad(\"%s\") is 0, want 1", bad[i]);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (vqc_text_is_bad(good[i], strlen(good[i])))
            TEST_FAIL("is_bad(\"%s\") is 1, want 0", good[i]);
}

static void test_fix_encoding(void)
{
    check_fix_encoding("", "");
    check_fix_encoding("plain text", "plain text");
    check_fix_encoding("cafÃ©", "café");                         /* Windows-1252 */
    check_fix_encoding("sÃ³", "só");                             /* Latin-1 */
    check_fix_encoding("Copyright Â© 2007", "Copyright © 2007"); /* 2 chars */
    check_fix_encoding("dâ€™autore", "d’autore");                /* 3 chars */
    check_fix_encoding("#é\xC2\x8F\xC2\x97"
                       "1",
                       "#鏗1");                                  /* C1 bytes kept */
    check_fix_encoding("ÃƒÂ©", "é");                             /* twice */
    check_fix_encoding("voilÃ  le travail", "voilà le travail"); /* restore_byte_a0 */
    check_fix_encoding("â€œ like this â€\xEF\xBF\xBD", "“ like this \xEF\xBF\xBD"); /* lossy */
    check_fix_encoding("Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "привет");
    check_fix_encoding("naïve café", "naïve café"); /* good text stays */
    check_fix_encoding("Ã\x20\x20", "à\x20");       /* restore_byte_a0 again */
    check_fix_encoding("Ã\xC2\xA0", "à");           /* NBSP continuation */
    check_fix_encoding("\xC3\xAD\xC2\xA0\xC2\xBD\xC3\xAD\xC2\xB2\xC2\xA9", "\xF0\x9F\x92\xA9");
    check_fix_encoding("It was â€œfixedâ€ and Ã©", "It was “fixed†and é");
    /* decode_inconsistent_utf8: good and bad text on one line */
    check_fix_encoding("Ã©tÃ© in an ultra-é summer", "été in an ultra-é summer");
    check_fix_encoding("Ãƒ", "Ã");                       /* C3 83 in Windows-1252 */
    check_fix_encoding("\xC2\x80\xC2\x81", "€\xC2\x81"); /* fix_c1_controls fallback */
    /* the other code pages, and the byte-level repairs */
    check_fix_encoding("g√¢teaux et r√©gime", "gâteaux et régime");         /* MacRoman */
    check_fix_encoding("РґРѕСЂРѕРіРµ Р\xC2\x98Р·-РїРѕРґ", "дороге Из-под"); /* Windows-1251 */
    check_fix_encoding("├Ñ", "å");                                          /* CP437 */
    check_fix_encoding("â”œâ”€", "├─");
    check_fix_encoding("ÄŸÃ¼", "ğü");
    check_fix_encoding("â€?", "\xEF\xBF\xBD"); /* a lost byte */
    check_fix_encoding("ÃŽÂ±", "α");           /* twice */
    vqc_strbuf out = {0}; /* Java's encoding of U+0000, C0 80, read as Latin-1 */
    ASSERT_OK(vqc_text_fix_encoding("null! À\xC2\x80", 10, &out));
    ASSERT_EQ(out.n, 7);
    ASSERT(memcmp(out.p, "null! \0", 7) == 0);
    vqc_strbuf_free(&out);
}

/* The whole normalisation: fix_encoding inside ftfy's fix_text loop, then the rest. */
static void test_normalize(void)
{
    static const char *const cases[][2] = {
        {"Copyright Â© 2007-2009 Red Hat Inc.", "copyright © 2007-2009 red hat inc."},
        {"BjÃ¸rn", "bjørn"},
        {"dâ€™autore", "d'autore"}, /* then uncurl_quotes */
        {"Ã‰tÃ©\nÃ‰tÃ©", "été été"},
        {"&lt;Ã©&gt;", "<é>"}, /* unescape_html first, then fix_encoding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = NULL;
        ASSERT_OK(vqc_tokenizer_normalize(cases[i][0], &got));
        if (strcmp(got, cases[i][1]) != 0)
            TEST_FAIL("normalize(\"%s\") = \"%s\", want \"%s\"", cases[i][0], got, cases[i][1]);
        free(got);
    }
}

/* ---------------------------------------------------------------- parity: real-world lines */

static char *read_text(const char *path)
{
    gzFile f = gzopen(path, "rb");
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
    return s;
}

/* Whether the tokenizer gives the reference's ids for one case (both encode and tokenize). */
static int case_matches(const vqc_tokenizer *tok, const char *text, const cJSON *bpe,
                        const cJSON *ctx77)
{
    int32_t *ids;
    size_t n, i = 0;
    ASSERT_OK(vqc_tokenizer_encode(tok, text, &ids, &n));
    int ok = n == (size_t)cJSON_GetArraySize(bpe);
    for (const cJSON *w = bpe->child; ok && w; w = w->next, i++)
        ok = ids[i] == w->valueint;
    free(ids);
    int64_t out[VQC_TOKENIZER_CONTEXT];
    ASSERT_EQ(cJSON_GetArraySize(ctx77), VQC_TOKENIZER_CONTEXT);
    ASSERT_OK(vqc_tokenizer_tokenize(tok, text, VQC_TOKENIZER_CONTEXT, out, NULL));
    i = 0;
    for (const cJSON *w = ctx77->child; ok && w; w = w->next, i++)
        ok = out[i] == (int64_t)w->valuedouble;
    return ok;
}

static void test_realworld(void)
{
    static const char *const kinds[] = {"plain", "unicode", "mojibake"};
    int total[3] = {0}, missed[3] = {0}, shown = 0;
    vqc_tokenizer *tok;
    const char *vocab = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"); /* VQCLIP_FIXTURES */
    char *json = read_text(fixture_path("clip/tokenizer_realworld.json"));
    ASSERT_OK(vqc_tokenizer_load(vocab, &tok));
    cJSON *root = cJSON_Parse(json);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    ASSERT(cJSON_IsArray(cases));
    cJSON_ArrayForEach(c, cases)
    {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(c, "kind"));
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"));
        const cJSON *bpe = cJSON_GetObjectItem(c, "bpe"),
                    *ctx = cJSON_GetObjectItem(c, "context77");
        ASSERT(kind && text && cJSON_IsArray(bpe) && cJSON_IsArray(ctx));
        int k = 0;
        while (k < 3 && strcmp(kind, kinds[k]) != 0)
            k++;
        ASSERT(k < 3);
        total[k]++;
        if (case_matches(tok, text, bpe, ctx))
            continue;
        missed[k]++;
        if (shown++ < 10) {
            char *norm = NULL;
            ASSERT_OK(vqc_tokenizer_normalize(text, &norm));
            printf("miss (%s): \"%s\" -> \"%s\"\n", kind, text, norm);
            free(norm);
        }
    }
    for (int k = 0; k < 3; k++)
        printf("%-8s %3d of %3d match\n", kinds[k], total[k] - missed[k], total[k]);
    ASSERT_EQ(total[0] + total[1] + total[2], 400);
    ASSERT_EQ(missed[0] + missed[1] + missed[2], 0);
    cJSON_Delete(root);
    free(json);
    vqc_tokenizer_free(tok);
}

int main(void)
{
    test_is_bad();
    test_fix_encoding();
    test_normalize();
    printf("unit tests passed\n");
    test_realworld(); /* skips (77) without the fixtures */
    printf("test-tokenizer-realworld: all passed\n");
    return 0;
}

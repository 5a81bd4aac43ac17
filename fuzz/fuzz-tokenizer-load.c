/* libFuzzer target: loading a BPE vocabulary (vqc_tokenizer_load) from arbitrary bytes. The
 * first input byte picks the layout, the rest is the file:
 *   0: an OpenAI merges file (plain or gzip), as it is;
 *   1: the input, then OpenAI's real merges: damage at the start of an otherwise full file;
 *   2: a Hugging Face vocab.json, beside a merges.txt holding OpenAI's real merges.
 * A tokenizer that loads must encode text. */
#include <zlib.h>

#include "fuzzhelp.h"
#include "models/tokenizer.h"

static char *merges; /* OpenAI's file, decompressed, cut after the lines the loader reads */
static size_t merges_len;

/* Reads the fixture's header line and VQC_TOKENIZER_MERGES merges into `merges`. */
static void read_real_merges(void)
{
    gzFile g = gzopen(fuzz_fixture("clip/bpe_simple_vocab_16e6.txt.gz"), "rb");
    size_t cap = 1 << 21;
    merges = malloc(cap);
    if (!g || !merges)
        abort();
    int lines = 0;
    while (lines < VQC_TOKENIZER_MERGES + 1 && merges_len + 1024 < cap &&
           gzgets(g, merges + merges_len, (int)(cap - merges_len)))
        merges_len += strlen(merges + merges_len), lines++;
    gzclose(g);
    if (lines != VQC_TOKENIZER_MERGES + 1)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_silence();
    read_real_merges();
    fuzz_write_file("merges.txt", (const uint8_t *)merges, merges_len);
    return 0;
}

/* The path of the file to load for `mode`, written from `data`. */
static const char *prepare(int mode, const uint8_t *data, size_t size)
{
    if (mode == 2)
        return fuzz_write_file("vocab.json", data, size);
    if (mode == 0)
        return fuzz_write_file("bpe.txt", data, size);
    uint8_t *all = malloc(size + 1 + merges_len);
    if (!all)
        abort();
    memcpy(all, data, size);
    all[size] = '\n';
    memcpy(all + size + 1, merges, merges_len);
    const char *path = fuzz_write_file("bpe.txt", all, size + 1 + merges_len);
    free(all);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *path = prepare(data[0] % 3, data + 1, size - 1);
    vqc_tokenizer *tok = NULL;
    int rc = vqc_tokenizer_load(path, &tok);
    fuzz_check_error(rc, data, size);
    FUZZ_CHECK((rc == 0) == (tok != NULL));
    if (rc == 0) {
        int64_t ctx[VQC_TOKENIZER_CONTEXT];
        FUZZ_CHECK(
            vqc_tokenizer_tokenize(tok, "a photo of a fox", VQC_TOKENIZER_CONTEXT, ctx, NULL) == 0);
        vqc_tokenizer_free(tok);
    }
    return 0;
}

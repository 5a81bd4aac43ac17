/* libFuzzer target: CLIP's tokenizer on arbitrary bytes (vqc_tokenizer_encode, _tokenize and
 * _normalize), with OpenAI's BPE file from the fixtures. Every id is inside the vocabulary and
 * the context is framed by <|startoftext|> and <|endoftext|>. */
#include "fuzzhelp.h"
#include "models/tokenizer.h"

static vqc_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_silence();
    if (vqc_tokenizer_load(fuzz_fixture("clip/bpe_simple_vocab_16e6.txt.gz"), &tok) != 0) {
        fprintf(stderr, "fuzz-tokenizer-encode: %s\n", vqc_error_get());
        abort();
    }
    return 0;
}

/* The context is <|startoftext|>, ids, <|endoftext|>, zeros. The text may itself hold the
 * special tokens ("<|endoftext|>" typed in a prompt), as OpenAI's tokenizer allows. */
static void check_context(const int64_t *ctx, int dropped)
{
    int vocab = vqc_tokenizer_vocab_size(tok), end = vqc_tokenizer_end_token(tok), last = -1;
    FUZZ_CHECK(dropped >= 0);
    FUZZ_CHECK(ctx[0] == vqc_tokenizer_start_token(tok));
    for (int i = 0; i < VQC_TOKENIZER_CONTEXT; i++) {
        FUZZ_CHECK(ctx[i] >= 0 && ctx[i] < vocab);
        if (ctx[i] == end)
            last = i;
    }
    FUZZ_CHECK(last > 0);
    for (int i = last + 1; i < VQC_TOKENIZER_CONTEXT; i++)
        FUZZ_CHECK(ctx[i] == 0);
    FUZZ_CHECK(dropped == 0 || last == VQC_TOKENIZER_CONTEXT - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = vqc_tokenizer_encode(tok, s, &ids, &n);
    fuzz_check_error(rc, data, size);
    for (size_t i = 0; rc == 0 && i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < vqc_tokenizer_vocab_size(tok));
    free(ids);
    int64_t ctx[VQC_TOKENIZER_CONTEXT];
    int dropped = -1;
    rc = vqc_tokenizer_tokenize(tok, s, VQC_TOKENIZER_CONTEXT, ctx, &dropped);
    fuzz_check_error(rc, data, size);
    if (rc == 0)
        check_context(ctx, dropped);
    char *norm = NULL;
    rc = vqc_tokenizer_normalize(s, &norm);
    fuzz_check_error(rc, data, size);
    free(norm);
    free(s);
    return 0;
}

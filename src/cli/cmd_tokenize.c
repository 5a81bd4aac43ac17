/* vqclip tokenize: prints CLIP token ids for texts, as OpenAI's clip.tokenize makes them. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "vqclip.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vqclip tokenize [--bpe FILE] [--context] TEXT...\n\n"
            "Prints one line per TEXT: the CLIP token ids that clip.tokenize(TEXT, truncate=True)\n"
            "gives, from the start token (49406) to the end token (49407). A text longer than the\n"
            "%d-token context is cut to fit, with a warning on stderr.\n\n"
            "  --bpe FILE   the BPE vocabulary: OpenAI's " VQC_DEFAULT_BPE "\n"
            "               (default: found in $VQCLIP_MODELS, then ~/.cache/vqclip; the demo\n"
            "               models' vocabulary when none is), or a Hugging Face vocab.json\n"
            "               with merges.txt beside it\n"
            "  --context    print the whole %d-id context, padded with 0s\n"
            "  -h, --help   show this help\n\n"
            "Put -- before texts that start with '-'.\n",
            VQC_TOKENIZER_CONTEXT, VQC_TOKENIZER_CONTEXT);
}

typedef struct {
    const char *bpe;
    int context; /* print the padded context */
    int first;   /* argv index of the first text */
} tokenize_opts;

/* Parses the options. Returns 0 to go on, 1 after printing the help, or a negative error code. */
static int parse_options(int argc, char **argv, tokenize_opts *o)
{
    enum { O_BPE = 256, O_CONTEXT, O_HELP };
    static const struct option lo[] = {{"bpe", required_argument, 0, O_BPE},
                                       {"context", no_argument, 0, O_CONTEXT},
                                       {"help", no_argument, 0, O_HELP},
                                       {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1;) {
        switch (c) {
        case O_BPE: o->bpe = optarg; break;
        case O_CONTEXT: o->context = 1; break;
        case 'h':
        case O_HELP: usage(stdout); return 1;
        default: return cli_option_error("tokenize", c, argv);
        }
    }
    o->first = optind;
    return 0;
}

/* Tokenizes text number `index` (from 1) and prints its line. */
static int print_tokens(const vqc_tokenizer *tok, const char *text, int index, int context)
{
    int64_t ids[VQC_TOKENIZER_CONTEXT];
    int dropped = 0;
    int rc = vqc_tokenize(tok, text, VQC_TOKENIZER_CONTEXT, ids, &dropped);
    if (rc)
        return rc;
    if (dropped) /* worded as the library's log lines (vqclip.h's default sink) */
        fprintf(stderr,
                "vqclip: warning: text %d is %d token(s) longer than CLIP's %d-token context; "
                "they were dropped\n",
                index, dropped, VQC_TOKENIZER_CONTEXT);
    int n = VQC_TOKENIZER_CONTEXT;
    while (!context && ids[n - 1] == 0) /* padding follows the end token, which is not 0 */
        n--;
    for (int i = 0; i < n; i++)
        printf(i ? " %lld" : "%lld", (long long)ids[i]);
    putchar('\n');
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_opts o = {0};
    int rc = parse_options(argc, argv, &o);
    if (rc > 0)
        return 0;
    if (rc) {
        cli_print_error(NULL);
        return cli_exit_status(rc);
    }
    if (o.first >= argc) {
        fprintf(stderr, "vqclip: error: tokenize needs at least one TEXT "
                        "(see vqclip tokenize --help)\n");
        return 1;
    }
    vqc_tokenizer *tok = NULL;
    rc = vqc_tokenizer_open(o.bpe, &tok);
    for (int i = o.first; !rc && i < argc; i++)
        rc = print_tokens(tok, argv[i], i - o.first + 1, o.context);
    vqc_tokenizer_free(tok);
    if (rc) {
        cli_print_error(NULL);
        return cli_exit_status(rc);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "vqclip: error: cannot write the token ids: %s\n", strerror(errno));
        return cli_exit_status(VQC_ERR_IO);
    }
    return 0;
}

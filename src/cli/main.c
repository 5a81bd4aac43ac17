/* vqclip: the command-line entry point. It only dispatches: to a subcommand by name, else to the
 * generator (`vqclip -p PROMPT -o OUT.png`). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd_doctor.h"
#include "cli/commands.h"
#include "cli/options.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"reconstruct", cmd_reconstruct, "encode, quantise and decode an image with a VQGAN"},
    {"info", cmd_info, "describe a VQGAN or CLIP model file"},
    {"tokenize", cmd_tokenize, "CLIP token ids of texts"},
    {"score", cmd_score, "CLIP similarity of images and texts"},
    {"doctor", cmd_doctor, "check libtorch, BLAS, threads, GPUs and models"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip -p PROMPT [-o OUT.png] [options]   (see vqclip --help)\n"
               "       vqclip COMMAND [options]\n\ncommands:\n");
    for (int i = 0; commands[i].name; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'vqclip COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    /* A file size limit (ulimit -f) must fail the write with EFBIG, reported and cleaned up,
     * not kill the process with SIGXFSZ and leave a temporary file behind. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        gen_opts_usage(stdout);
        printf("\n");
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vqclip %s (libtorch %s)\n", vqc_version(), vqc_torch_version());
        return 0;
    }
    for (int i = 0; commands[i].name; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    return cmd_generate(argc, argv);
}

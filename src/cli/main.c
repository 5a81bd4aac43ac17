/* vqclip: command-line entry point. Dispatches to subcommands (see commands.h). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd_doctor.h"
#include "cli/commands.h"
#include "cli/gen_opts.h"
#include "torch/shim.h"
#include "util/error.h"

int cli_exit_status(int err)
{
    switch (err) {
    case 0: return 0;
    case VQC_ERR_USAGE: return 1;
    case VQC_ERR_IO:
    case VQC_ERR_FORMAT:
    case VQC_ERR_MODEL: return 2;
    case VQC_ERR_INTERRUPTED: return 130;
    default: return 3;
    }
}

void cli_print_error(const char *fallback)
{
    const char *msg = vqc_error_get();
    fprintf(stderr, "vqclip: error: %s\n", msg && *msg ? msg : fallback ? fallback : "failed");
}

int cli_option_error(const char *cmd, int c, char **argv)
{
    char letter[3] = {'-', (char)optopt, '\0'};
    const char *opt = optopt > 0 && optopt < 128 ? letter : argv[optind - 1];
    const char *sp = *cmd ? " " : "";
    if (c == ':')
        return vqc_error_set(VQC_ERR_USAGE, "%s%soption '%s' needs a value", cmd, *cmd ? ": " : "",
                             opt);
    return vqc_error_set(VQC_ERR_USAGE, "%s%sunknown option '%s' (see vqclip %s%s--help)", cmd,
                         *cmd ? ": " : "", opt, cmd, sp);
}

int cli_pick_device(const char *opt, vqt_device *out)
{
    vqt_init(0);
    if (!opt) {
        *out = (vqt_device){vqt_cuda_device_count() > 0 ? VQT_DEVICE_CUDA : VQT_DEVICE_CPU, 0};
        if (out->type == VQT_DEVICE_CPU)
            vqc_log(VQC_LOG_INFO, "no CUDA device found: running on the CPU");
        return 0;
    }
    int rc = vqt_device_parse(opt, out);
    if (rc != 0) {
        fprintf(stderr, "vqclip: error: %s\n", vqt_last_error());
        return rc == -2 ? 3 : 1;
    }
    return 0;
}

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
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        gen_opts_usage();
        printf("\n");
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("vqclip %s (libtorch %s)\n", VQCLIP_VERSION, vqt_version());
        return 0;
    }
    if (argc >= 2) {
        for (int i = 0; commands[i].name; i++)
            if (strcmp(argv[1], commands[i].name) == 0)
                return commands[i].fn(argc - 1, argv + 1);
    }
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    /* No command name: the generator, as `vqclip -p PROMPT -o OUT.png`. */
    return cmd_generate(argc, argv);
}

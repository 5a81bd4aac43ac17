/* Subcommands of the vqclip CLI. Each takes the arguments after the subcommand name
 * (argv[0] is the subcommand) and returns the process exit status:
 * 0 ok, 1 bad usage, 2 unreadable model or input, 3 runtime or device failure. */
#ifndef VQC_CLI_COMMANDS_H
#define VQC_CLI_COMMANDS_H

#include "torch/shim.h"

int cmd_generate(int argc, char **argv);    /* default: vqclip -p PROMPT -o OUT.png */
int cmd_reconstruct(int argc, char **argv); /* vqclip reconstruct --vqgan CKPT -i IN -o OUT */
int cmd_info(int argc, char **argv);        /* vqclip info --vqgan CKPT | --clip MODEL */
int cmd_tokenize(int argc, char **argv);    /* vqclip tokenize [--bpe FILE] TEXT... */
int cmd_score(int argc, char **argv);       /* vqclip score --clip MODEL -i IMG -p TEXT */

/* Exit status for a negative VQC_ERR_* code. */
int cli_exit_status(int err);

/* Prints "vqclip: error: <message>" for the current library error (or `fallback`). */
void cli_print_error(const char *fallback);

/* Records the usage error for a getopt result `c` ('?' unknown option, ':' missing value) of
 * command `cmd` ("reconstruct", or "" for the generator) and returns VQC_ERR_USAGE. Use with
 * opterr = 0 and an optstring that starts with ':'. */
int cli_option_error(const char *cmd, int c, char **argv);

/* Resolves --device for reconstruct and score: NULL means CUDA when available, else the CPU.
 * (with one notice when that is the CPU). Also initialises libtorch's threads. Returns 0, or
 * prints an error and returns the exit status: 1 for a name that is no device, 3 for a CUDA
 * device that is not present.
 * (The generator resolves its device in vqc_init.) */
int cli_pick_device(const char *opt, vqt_device *out);

#endif

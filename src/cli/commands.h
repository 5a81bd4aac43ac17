/* Subcommands of the vqclip CLI. Each takes the arguments after the subcommand name
 * (argv[0] is the subcommand) and returns the process exit status:
 * 0 ok, 1 bad usage, 2 unreadable model or input, 3 runtime or device failure. */
#ifndef VQC_CLI_COMMANDS_H
#define VQC_CLI_COMMANDS_H

#include "cli/common.h"

int cmd_generate(int argc, char **argv);    /* default: vqclip -p PROMPT -o OUT.png */
int cmd_reconstruct(int argc, char **argv); /* vqclip reconstruct --vqgan CKPT -i IN -o OUT */
int cmd_info(int argc, char **argv);        /* vqclip info --vqgan CKPT | --clip MODEL */
int cmd_tokenize(int argc, char **argv);    /* vqclip tokenize [--bpe FILE] TEXT... */
int cmd_score(int argc, char **argv);       /* vqclip score --clip MODEL -i IMG -p TEXT */
int cmd_upscale(int argc, char **argv);     /* vqclip upscale -m MODEL -i IN -o OUT.png */

#endif

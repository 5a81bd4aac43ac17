/* What the vqclip commands share: exit statuses, error lines, log lines, option errors, JSON
 * strings and random seeds. */
#ifndef VQC_CLI_COMMON_H
#define VQC_CLI_COMMON_H

#include <stdint.h>

#include "vqclip.h"

/* Exit status for a negative VQC_ERR_* code: 1 usage, 2 unreadable or malformed input, 130
 * interrupted, 3 anything else (runtime, device, memory). */
int cli_exit_status(int err);

/* Prints "vqclip: error: <message>" for the current error (vqc_last_error), or `fallback`. */
void cli_print_error(const char *fallback);

/* Records the usage error for a getopt result `c` ('?' unknown option, ':' missing value) of
 * command `cmd` ("reconstruct", or "" for the generator) and returns VQC_ERR_USAGE. Use with
 * opterr = 0 and an optstring that starts with ':'. */
int cli_option_error(const char *cmd, int c, char **argv);

/* A log line of the command line's own, formatted as the library's default sink does:
 * "vqclip: <text>", "vqclip: warning: <text>". */
void cli_log(vqc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s as a JSON string literal, quotes included (malloc'ed; NULL when out of memory). */
char *cli_json_string(const char *s);

/* A random seed below 2^32, from /dev/urandom (the clock and pid without it). */
uint64_t cli_random_seed(void);

#endif

/* Batches (`vqclip --batch FILE`) and what the generate command shares with them. */
#ifndef VQC_CLI_BATCH_H
#define VQC_CLI_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/options.h"

/* Exit status for a library result, printing the error line when there is one; with the run's
 * result (may be NULL), an out-of-memory error also says what would fit (cmd_generate.c). */
int cli_status_of(int rc, const vqc_generate_result *res);

/* Runs every job of o->batch with the models loaded once; returns the exit status: 0 when
 * every job succeeded (or was skipped), else the status of the first failure (130/143 when
 * interrupted, which ends the batch). */
int cli_run_batch(gen_opts *o);

/* Expands an output template: {index}, {index:0N}, {slug}, {seed}, {date}. Writes into out.
 * Returns 0, or VQC_ERR_USAGE for an unknown placeholder. */
int cli_expand_template(const char *tmpl, int index, const char *prompt, uint64_t seed, char *out,
                        size_t len);

/* Creates the missing folders above the file `path` (mkdir -p of its folder). Returns 0 or
 * VQC_ERR_IO with a message naming the folder. */
int cli_make_parent_dirs(const char *path);

#endif

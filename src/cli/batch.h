/* Batches (`vqclip --batch FILE`) and what the generate command shares with them. */
#ifndef VQC_CLI_BATCH_H
#define VQC_CLI_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/gen_opts.h"

/* Progress and output state of the command line, passed as the callbacks' user pointer. */
typedef struct cli_ui {
    const vqc_generate_params *gp; /* the run's parameters, for its regeneration command */
    bool quiet, json, line_open;
    double t_first;
    int steps_seen;
} cli_ui;

/* Installs the command line's progress, abort (SIGINT/SIGTERM), image and describe (the PNG's
 * regeneration command) callbacks. */
void cli_ui_attach(cli_ui *ui, vqc_generate_params *gp);
/* Ends an open progress line. */
void cli_end_progress(cli_ui *ui);

/* The signal that asked to stop (0: none). */
int cli_interrupted(void);
/* A random seed below 2^32. */
uint64_t cli_random_seed(void);
/* A JSON string literal for s (malloc'ed), or NULL. */
char *cli_json_string(const char *s);
/* Exit status for a library result, printing the error line when there is one; with the run's
 * result (may be NULL), an out-of-memory error also says what would fit. */
int cli_status_of(int rc, const vqc_generate_result *res);
int cli_status(int rc);

/* Runs every job of o->batch with the models loaded once; returns the exit status: 0 when
 * every job succeeded (or was skipped), else the status of the first failure (130/143 when
 * interrupted, which ends the batch). */
int cli_run_batch(gen_opts *o);

/* Expands an output template: {index}, {index:0N}, {slug}, {seed}, {date}. Writes into out.
 * Returns 0, or VQC_ERR_USAGE for an unknown placeholder. */
int cli_expand_template(const char *tmpl, int index, const char *prompt, uint64_t seed, char *out,
                        size_t len);

#endif

/* The generate command's view of a run: the progress line, the JSON lines of saved images, the
 * abort on SIGINT/SIGTERM, and the PNG's regeneration command, as the library's callbacks. */
#ifndef VQC_CLI_PROGRESS_H
#define VQC_CLI_PROGRESS_H

#include <stdbool.h>

#include "vqclip.h"

/* The callbacks' shared state (their user pointer). */
typedef struct cli_ui {
    const vqc_generate_params *gp; /* the run's parameters, for its regeneration command */
    bool quiet, json, line_open;
    double t_first;
    int steps_seen;
    double last_time; /* of the last progress line without a terminal */
    int last_step;
    bool precision_given;             /* say once that --precision does nothing on the CPU */
    float clip_losses[VQC_MAX_CLIPS]; /* several CLIP models: each one's part of the last loss */
    int n_clip_losses;                /* 0 with one model */
} cli_ui;

/* Makes SIGINT and SIGTERM ask the running generation to stop (it writes its image first). */
void cli_install_signals(void);

/* The signal that asked to stop, 0 when none. */
int cli_signal(void);

/* Installs the progress, abort, image, frame and describe callbacks of ui into gp. */
void cli_ui_attach(cli_ui *ui, vqc_generate_params *gp);

/* Ends an open progress line. */
void cli_end_progress(cli_ui *ui);

#endif

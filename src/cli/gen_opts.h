/* Options of the generate command (`vqclip -p PROMPT -o OUT.png`), with the spellings of
 * nerdyrodent's generate.py accepted as aliases (-ip, -ii, -iw, -se, -cutn, -opt, ...). */
#ifndef VQC_CLI_GEN_OPTS_H
#define VQC_CLI_GEN_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "gen/loop.h"

#define GEN_MAX_LIST 64

typedef struct gen_opts {
    const char *prompts;                     /* -p */
    const char *image_prompts[GEN_MAX_LIST]; /* -ip, repeatable; each may hold '|' lists */
    int n_image_prompts;
    const char *noise_prompts[GEN_MAX_LIST]; /* --noise-prompt SEED[:W], repeatable */
    int n_noise_prompts;
    const char *nps, *npw; /* the peer's -nps "1|2" -npw "0.5|1" form */
    const char *vqgan, *vqgan_config, *clip, *bpe;
    const char *init_image, *init_noise;
    const char *output, *device;
    int iterations, save_every;
    int width, height; /* 0: the device's default */
    double init_weight, lr, cut_pow, cut_noise;
    const char *mse_mode, *cut_method, *augments, *optimiser, *clip_precision;
    int mse_decay_every, mse_epochs, cutn, threads;
    uint64_t seed;
    bool seed_given, quiet, json;
} gen_opts;

/* Fills o from argv (argv[0] is the program or command name). Prints a one-line error and
 * returns 1 on bad usage; returns -1 after printing --help (exit 0); 0 on success. */
int gen_opts_parse(int argc, char **argv, gen_opts *o);

/* Prints the generate command's help. */
void gen_opts_usage(void);

/* Turns the string options into loop parameters (after the size is known). Returns 0, or
 * prints an error and returns 1. */
int gen_opts_loop_params(const gen_opts *o, vqc_loop_params *p);

#endif

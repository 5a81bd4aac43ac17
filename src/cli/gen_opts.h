/* Options of the generate command (`vqclip -p PROMPT -o OUT.png`, and `--batch FILE`), with
 * the spellings of nerdyrodent's generate.py accepted as aliases (-ip, -ii, -iw, -se, -cutn,
 * -opt, ...). They fill the library's parameter structs (include/vqclip.h) plus the options
 * that only the command line has. */
#ifndef VQC_CLI_GEN_OPTS_H
#define VQC_CLI_GEN_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "vqclip.h"

#define GEN_MAX_LIST 64

typedef struct gen_opts {
    vqc_context_params cp;
    vqc_generate_params gp;
    const char *image_prompts[GEN_MAX_LIST]; /* storage behind gp.image_prompts */
    const char *noise_prompts[GEN_MAX_LIST]; /* storage behind gp.noise_prompts */
    char *noise_owned[GEN_MAX_LIST];         /* entries made from the peer's -nps/-npw */
    bool output_given, seed_given, size_given, quiet, json;
    const char *batch; /* --batch FILE ('-' = stdin) */
    const char *video; /* --video OUT.mp4 (ffmpeg) */
    int video_fps;
    bool skip_existing;
    int variations;               /* seeds per prompt; 1 */
    int shard_index, shard_count; /* --shard I/N (count 0: not sharded) */
    int shard_count_opt;          /* --shard-count N, for JOB_COMPLETION_INDEX */
    int given[GEN_MAX_LIST];      /* option codes seen on the command line (the first ones) */
    int n_given;
} gen_opts;

/* Fills o from argv (argv[0] is the program or command name). Prints a one-line error and
 * returns 1 on bad usage; returns -1 after printing --help (exit 0); 0 on success. */
int gen_opts_parse(int argc, char **argv, gen_opts *o);

/* Settings for the demo models (vqc_uses_demo_models): 64x64 pictures, fewer steps and cutouts,
 * no colour jitter, a smooth start, for each of these the user did not give on the command line. */
void gen_opts_demo_defaults(gen_opts *o);

/* Releases what gen_opts_parse allocated. */
void gen_opts_free(gen_opts *o);

/* Prints the generate command's help. */
void gen_opts_usage(void);

#endif

/* The generate command's options (`vqclip -p PROMPT -o OUT.png`, `--batch FILE`) as one
 * declarative table: each row names a setting once, with its command-line spellings (the peer's
 * generate.py aliases included), its batch JSON key, its type and range, its help line and how
 * it appears in the regeneration command written into the PNG. The parser, --help, the batch
 * keys, the defaults shown in the help (read from the library's *_default_params()), the range
 * checks and the regeneration command all come from the table (options.c). */
#ifndef VQC_CLI_OPTIONS_H
#define VQC_CLI_OPTIONS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vqclip.h"

#define CLI_MAX_LIST 64

/* Everything the generate command's options set: the library's two parameter structs plus the
 * settings only the command line has. */
typedef struct gen_opts {
    vqc_context_params cp;
    vqc_generate_params gp;
    const char *image_prompts[CLI_MAX_LIST]; /* storage behind gp.image_prompts */
    const char *noise_prompts[CLI_MAX_LIST]; /* storage behind gp.noise_prompts */
    char *owned[CLI_MAX_LIST];               /* strings made while parsing (peer noise prompts) */
    int n_owned;
    const char *peer_seeds, *peer_weights; /* the peer's -nps / -npw, joined at the end */
    char aug_words[256];                   /* the -aug words so far (a repeated -aug adds) */
    const char *cut_method_text; /* the -cutm value as given ("original" is generate.py's) */
    bool output_given, seed_given, size_given, quiet, json, list_options;
    bool precision_given; /* --precision: warned about once when the run is on the CPU */
    const char *batch;    /* --batch FILE ('-' = stdin) */
    const char *video;    /* --video OUT.mp4 (ffmpeg) */
    int video_fps;
    bool peer_video, peer_zoom_video;           /* generate.py's -vid, -zvid */
    double video_length, output_fps, input_fps; /* its -vl, -ofps, -ifps */
    char peer_video_name[4096];                 /* OUTPUT.mp4 for -vid / -zvid */
    const char *upscale;    /* --upscale MODEL: Real-ESRGAN after each picture */
    int upscale_tile;       /* --upscale-tile N (0: whole picture) */
    vqc_upscaler *upscaler; /* loaded once, before the first picture */
    bool skip_existing;
    int variations;               /* seeds per prompt; 1 */
    int shard_index, shard_count; /* --shard I/N (count 0: not sharded) */
    int shard_count_opt;          /* --shard-count N, for JOB_COMPLETION_INDEX */
    unsigned char given[128];     /* 1 for each table row set on the command line */
    vqc_saved_run *saved;         /* --resume: the state's settings, under the ones given */
    const char *video_style;      /* -vsd DIR|VIDEO: video style transfer (video_style.c) */
    double video_style_blend;     /* --video-style-blend W: the previous frame's share of z */
    bool no_auto_low_memory;      /* --no-auto-low-memory: cp.auto_low_memory off */
} gen_opts;

/* The defaults: the library's parameters, then the command line's own. */
void gen_opts_init(gen_opts *o);

/* Fills o from argv (argv[0] is the program name); with --resume, the state's settings fill
 * what is not given. Returns 0; the exit status after printing a one-line error (1 bad usage, 2
 * an unreadable state file); -1 after printing --help or --list-options (exit 0). */
int gen_opts_parse(int argc, char **argv, gen_opts *o);

/* Applies one batch job's JSON object to gp (a copy of the command line's parameters) and cp
 * (a copy of the command line's models: the "clip" key): each key through the table row that
 * names it, with the same checks as the command line. *seeded
 * is set when the job gives a seed. The job's image and noise prompt lists live in `lists`
 * (2 * CLI_MAX_LIST entries) while the job runs. Returns 0 or VQC_ERR_USAGE with a message
 * naming the key. */
int gen_opts_apply_json(const cJSON *obj, vqc_generate_params *gp, vqc_context_params *cp,
                        const char **lists, bool *seeded);

/* One batch line's parameters into gp and cp: a prompt line, or a JSON object of options
 * (through gen_opts_apply_json). *json gets the parsed object, which owns the strings gp and cp
 * point to (cJSON_Delete it after the job). Returns 0 or VQC_ERR_USAGE with a message. */
int gen_opts_job_params(const char *line, vqc_generate_params *gp, vqc_context_params *cp,
                        cJSON **json, bool *seeded);

/* Settings for the demo models (vqc_uses_demo_models): 64x64 pictures, fewer steps and
 * cutouts, no colour jitter, a smooth start, for each of these not given on the command line. */
void gen_opts_demo_defaults(gen_opts *o);

/* Releases what gen_opts_parse allocated. */
void gen_opts_free(gen_opts *o);

/* Prints the generate command's help, from the table. */
void gen_opts_usage(FILE *f);

/* Prints one line per option: its spellings separated by spaces, a TAB, its batch JSON key or
 * "-", a TAB, its value type (`vqclip --list-options`). */
void gen_opts_list(FILE *f);

/* A command line that regenerates the picture of g, from the table (the rows' regeneration
 * spellings in their order), with the resolved size and model files of `info`. malloc'ed, or
 * NULL when out of memory. */
char *gen_opts_regeneration(const vqc_generate_params *g, const vqc_run_info *info);

#endif

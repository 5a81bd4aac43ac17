/* The generate command's option table, shared by the files that use it: option_rows.c (the
 * rows), options.c (the parser, batch keys) and options_text.c (--help, --list-options, the
 * regeneration command). Not used outside src/cli. */
#ifndef VQC_CLI_OPTION_TABLE_H
#define VQC_CLI_OPTION_TABLE_H

#include <stddef.h>

#include "cli/options.h"

typedef enum {
    T_STR,      /* const char * */
    T_INT,      /* int in [lo, hi] */
    T_DOUBLE,   /* double in [lo, hi] */
    T_SEED,     /* uint64_t, any non-negative integer */
    T_FLAG,     /* bool, no value */
    T_CHOICE,   /* an enum, through its library parser */
    T_AUGMENTS, /* gp.augments / gp.n_augments */
    T_LIST,     /* a repeatable string (image or noise prompts) */
    T_SIZE,     /* W [H] into gp.width / gp.height */
    T_SPECIAL   /* handled by the row's own function */
} opt_type;

typedef enum { IN_GP, IN_CP, IN_CLI } opt_target;

/* When and how a row appears in the regeneration command. */
typedef enum {
    R_NEVER = 0,
    R_ALWAYS, /* its value, unquoted */
    R_SET,    /* when set (not NULL, not 0, not none), quoted when a string */
    R_EACH,   /* every element of a list, quoted */
    R_QUOTED, /* always, quoted */
} regen_kind;

typedef struct gen_target gen_target;

typedef struct cli_option {
    const char *names; /* spellings, space-separated: "-x" the peer's single-dash forms, "--x"
                        * the long ones; the first "--" one is canonical (help, messages); a
                        * spelling matches with one dash or two */
    const char *key;   /* batch JSON key, or NULL */
    opt_type type;
    opt_target in;
    size_t off; /* the field's offset in its struct */
    double lo, hi;
    int (*parse)(const char *text, void *out);    /* T_CHOICE */
    const char *(*name)(int value);               /* T_CHOICE: canonical name */
    int (*special)(gen_target *t, const char *v); /* T_SPECIAL */
    int section;
    const char *arg;  /* the value's placeholder in --help */
    const char *help; /* "{D}" is replaced by the default value */
    int regen_at;     /* position in the regeneration command (0: not there); a row at N*10+k
                       * (k > 0) follows the row at N*10 and appears only when that one does */
    regen_kind regen;
    const char *regen_flag;
    char words; /* generate.py's nargs='+': the value may go on over the following words (-aug Ji
                 * Sh, -nps 1 2), joined by this separator; 0: one word */
} cli_option;

/* What a value is set into: the command line's options, or a batch job's parameters. */
struct gen_target {
    gen_opts *o;             /* NULL for a batch job */
    vqc_generate_params *gp; /* o->gp, or the job's */
    const char **lists;      /* a batch job's image and noise prompt storage */
    bool *seeded;            /* a batch job's "seed given" */
    char where[80];          /* "--cutn", or "batch job: \"cutn\"" */
    vqc_context_params *cp;  /* a batch job's models (its "clip"); NULL: o->cp */
};

enum { S_PROMPTS, S_OUTPUT, S_BATCH, S_MODELS, S_START, S_OPTIM, S_DEVICE, S_HIDDEN };

/* The help sections' titles, in order (S_HIDDEN has none). */
extern const char *const cli_sections[];

/* The table and its length. */
extern const cli_option cli_options[];
extern const int cli_n_options;

/* The row's canonical spelling: its first "--" one, else its first. */
void cli_option_name(const cli_option *r, char *buf, size_t len);

/* Sets an int row's field from text v, checked against the row's range; a usage error
 * naming t->where otherwise. */
int cli_option_set_int(const cli_option *r, gen_target *t, const char *v, int *out);

/* A usage error "WHERE 'v': what" (returns its negative code). */
int cli_option_bad(const gen_target *t, const char *v, const char *what);

/* The field a row sets in t (NULL when t has no such struct: a batch job's context). */
void *cli_option_field(const cli_option *r, gen_target *t);

#endif

/* The generate command's option table and everything made from it (see options.h). */
#include "cli/options.h"
#include "cli/common.h"
#include "cli/option_table.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define GP(f) IN_GP, offsetof(vqc_generate_params, f)
#define CP(f) IN_CP, offsetof(vqc_context_params, f)
#define CLI(f) IN_CLI, offsetof(gen_opts, f)

/* Choice parsers and names, typed for the table. */
static int p_noise(const char *s, void *out)
{
    return vqc_init_noise_parse(s, out);
}
static const char *n_noise(int v)
{
    return vqc_init_noise_name((vqc_init_noise)v);
}
static int p_mse(const char *s, void *out)
{
    return vqc_mse_mode_parse(s, out);
}
static const char *n_mse(int v)
{
    return vqc_mse_mode_name((vqc_mse_mode)v);
}
static int p_optim(const char *s, void *out)
{
    return vqc_optim_parse(s, out);
}
static const char *n_optim(int v)
{
    return vqc_optim_name((vqc_optim_kind)v);
}
static int p_cut(const char *s, void *out)
{
    return vqc_cut_method_parse(s, out);
}
static const char *n_cut(int v)
{
    return vqc_cut_method_name((vqc_cut_method)v);
}
static int p_precision(const char *s, void *out)
{
    return vqc_precision_parse(s, out);
}
static const char *n_precision(int v)
{
    return vqc_precision_name((vqc_precision)v);
}

static int sp_nps(gen_target *t, const char *v);
static int sp_npw(gen_target *t, const char *v);
static int sp_shard(gen_target *t, const char *v);
static int sp_clip_precision(gen_target *t, const char *v);
static int sp_width(gen_target *t, const char *v);
static int sp_height(gen_target *t, const char *v);

#define NUM(lo, hi) (lo), (hi), NULL, NULL, NULL
#define NONE 0, 0, NULL, NULL, NULL
#define SPECIAL(f) T_SPECIAL, IN_CLI, 0, 0, 0, NULL, NULL, f

const char *const cli_sections[] = {"Prompts", "Output",       "Batches", "Models",
                                    "Start",   "Optimisation", "Device",  NULL};

const cli_option cli_options[] = {
    /* Prompts */
    {"-p --prompts", "prompts", T_STR, GP(prompts), NONE, S_PROMPTS, "TEXT",
     "'text[:weight[:stop]]|...' (negative weight: avoid); story mode: phrases separated by '^'",
     10, R_SET, "-p"},
    {"-ip --image-prompts --image_prompts", "image_prompts", T_LIST, GP(image_prompts), NONE,
     S_PROMPTS, "IMG", "image prompt(s) 'path[:weight[:stop]]|...' (repeatable)", 20, R_EACH,
     "-ip"},
    {"--noise-prompt", "noise_prompts", T_LIST, GP(noise_prompts), NONE, S_PROMPTS, "SEED[:W]",
     "random embedding prompt (repeatable)", 30, R_EACH, "--noise-prompt"},
    {"-nps --noise_prompt_seeds", NULL, SPECIAL(sp_nps), S_PROMPTS, "S|S...",
     "generate.py's noise prompt seeds, with -npw W|W... their weights", 0, R_NEVER, NULL},
    {"-npw --noise_prompt_weights", NULL, SPECIAL(sp_npw), S_HIDDEN, "W|W...", NULL, 0, R_NEVER,
     NULL},
    {"-cpe --change-prompt-every --change_prompt_every", "change_prompt_every", T_INT,
     GP(change_prompt_every), NUM(0, INT_MAX), S_PROMPTS, "N",
     "story mode: next phrase every N steps", 40, R_SET, "--change-prompt-every"},
    /* Output */
    {"-o --output", "output", T_STR, GP(output), NONE, S_OUTPUT, "FILE",
     "PNG to write (default {D}); written atomically; may hold {index} {index:04} {slug} "
     "{seed} {date}",
     0, R_NEVER, NULL},
    {"-s --size", "size", T_SIZE, GP(width), NUM(1, VQC_MAX_SIDE), S_OUTPUT, "W [H]",
     "image size (default 512x512 on a GPU, 256x256 on the CPU), rounded down to the VQGAN's "
     "factor",
     50, R_ALWAYS, "-s"},
    {"-i --iterations", "iterations", T_INT, GP(iterations), NUM(0, 10000000), S_OUTPUT, "N",
     "optimisation steps (default {D})", 60, R_ALWAYS, "-i"},
    {"-se --save-every --save_every", "save_every", T_INT, GP(save_every), NUM(0, INT_MAX),
     S_OUTPUT, "N",
     "rewrite the output every N steps (default {D}); the final image is always written", 0,
     R_NEVER, NULL},
    {"--save-frames", NULL, T_STR, GP(save_frames), NONE, S_OUTPUT, "DIR",
     "also write every --frame-every'th step as DIR/NNNNN.png", 0, R_NEVER, NULL},
    {"--frame-every", NULL, T_INT, GP(frame_every), NUM(1, INT_MAX), S_OUTPUT, "N",
     "with --save-frames: every N steps (default {D})", 0, R_NEVER, NULL},
    {"-sd --seed", "seed", T_SEED, GP(seed), NONE, S_OUTPUT, "N",
     "random seed (default: random, printed)", 70, R_ALWAYS, "--seed"},
    {"--video", NULL, T_STR, CLI(video), NONE, S_OUTPUT, "FILE.mp4",
     "also encode the frames as a video (needs ffmpeg)", 0, R_NEVER, NULL},
    {"--video-fps", NULL, T_INT, CLI(video_fps), NUM(1, 240), S_OUTPUT, "N",
     "the video's frame rate (default {D})", 0, R_NEVER, NULL},
    {"-zse --zoom-every", NULL, T_INT, GP(zoom_every), NUM(0, INT_MAX), S_OUTPUT, "N",
     "zoom video: every N steps zoom the image by --zoom-scale, shift it by --zoom-shift-x/-y "
     "pixels and re-encode it, from step --zoom-start",
     200, R_SET, "--zoom-every"},
    {"-zs --zoom-start", NULL, T_INT, GP(zoom_start), NUM(0, INT_MAX), S_OUTPUT, "N",
     "the first step that zooms (default {D})", 201, R_ALWAYS, "--zoom-start"},
    {"-zsc --zoom-scale", NULL, T_DOUBLE, GP(zoom_scale), NUM(0.01, 100), S_OUTPUT, "X",
     "zoom factor per zoom (default {D}; below 1 zooms in)", 202, R_ALWAYS, "--zoom-scale"},
    {"-zsx --zoom-shift-x", NULL, T_INT, GP(zoom_shift_x), NUM(-100000, 100000), S_OUTPUT, "N",
     "pixels to the right per zoom, wrapping around (default {D})", 203, R_ALWAYS,
     "--zoom-shift-x"},
    {"-zsy --zoom-shift-y", NULL, T_INT, GP(zoom_shift_y), NUM(-100000, 100000), S_OUTPUT, "N",
     "pixels down per zoom, wrapping around (default {D})", 204, R_ALWAYS, "--zoom-shift-y"},
    {"--save-state", NULL, T_STR, GP(save_state), NONE, S_OUTPUT, "FILE",
     "write a resumable state with each snapshot", 0, R_NEVER, NULL},
    {"--resume", NULL, T_STR, GP(resume), NONE, S_OUTPUT, "FILE",
     "continue a run from its state (same settings; -i may grow)", 0, R_NEVER, NULL},
    {"--json", NULL, T_FLAG, CLI(json), NONE, S_OUTPUT, NULL,
     "JSON lines on stdout: each saved image, then a summary", 0, R_NEVER, NULL},
    {"-q --quiet", NULL, T_FLAG, CLI(quiet), NONE, S_OUTPUT, NULL, "no progress line", 0, R_NEVER,
     NULL},
    /* Batches */
    {"--batch", NULL, T_STR, CLI(batch), NONE, S_BATCH, "FILE",
     "one job per line ('-': stdin): a prompt, or a JSON object of options ({\"prompts\": "
     "\"...\", \"seed\": 3, ...}, the keys are listed in the man page); models load once; -o "
     "is a template (default {index:04}-{slug}.png)",
     0, R_NEVER, NULL},
    {"--skip-existing", NULL, T_FLAG, CLI(skip_existing), NONE, S_BATCH, NULL,
     "skip jobs whose output exists", 0, R_NEVER, NULL},
    {"--variations", NULL, T_INT, CLI(variations), NUM(1, 100000), S_BATCH, "N",
     "N seeds per prompt (default {D})", 0, R_NEVER, NULL},
    {"--shard", NULL, SPECIAL(sp_shard), S_BATCH, "I/N",
     "run only the jobs with index % N == I; without it, SLURM_ARRAY_TASK_ID/COUNT or "
     "JOB_COMPLETION_INDEX and --shard-count N are honoured",
     0, R_NEVER, NULL},
    {"--shard-count", NULL, T_INT, CLI(shard_count_opt), NUM(1, 1000000), S_BATCH, "N",
     "the number of shards, with JOB_COMPLETION_INDEX", 0, R_NEVER, NULL},
    /* Models */
    {"-ckpt --vqgan --vqgan_checkpoint", NULL, T_STR, CP(vqgan), NONE, S_MODELS, "NAME|CKPT",
     "VQGAN checkpoint (default " VQC_DEFAULT_VQGAN ")", 80, R_QUOTED, "--vqgan"},
    {"-conf --vqgan-config --vqgan_config", NULL, T_STR, CP(vqgan_config), NONE, S_MODELS, "YAML",
     "its config (found beside the checkpoint)", 0, R_NEVER, NULL},
    {"-m --clip --clip_model", NULL, T_STR, CP(clip), NONE, S_MODELS, "NAME|FILE",
     "CLIP model (default " VQC_DEFAULT_CLIP ")", 90, R_QUOTED, "--clip"},
    {"--bpe", NULL, T_STR, CP(bpe), NONE, S_MODELS, "FILE",
     "CLIP BPE vocabulary (default " VQC_DEFAULT_BPE "); names are looked up in "
     "$VQCLIP_MODELS, ~/.cache/vqclip",
     0, R_NEVER, NULL},
    /* Start */
    {"-ii --init-image --init_image", "init_image", T_STR, GP(init_image), NONE, S_START, "IMG",
     "start from this image (resized to the output size)", 170, R_SET, "-ii"},
    {"-in --init-noise --init_noise", "init_noise", T_CHOICE, GP(init_noise), 0, 0, p_noise,
     n_noise, NULL, S_START, "KIND", "start from 'pixels' or 'gradient' noise", 180, R_SET, "-in"},
    {"-iw --init-weight --init_weight", "init_weight", T_DOUBLE, GP(init_weight), NUM(-1e6, 1e6),
     S_START, "W", "weight of the MSE term (default {D})", 190, R_SET, "-iw"},
    {"--init-weight-mode", "init_weight_mode", T_CHOICE, GP(init_weight_mode), 0, 0, p_mse, n_mse,
     NULL, S_START, "M",
     "seed (decaying pull to 0; the default), anchor (pull to the start), stepped "
     "(re-anchored every --mse-decay-every steps, --mse-epochs times)",
     191, R_ALWAYS, "--init-weight-mode"},
    {"--mse-decay-every", NULL, T_INT, GP(mse_decay_every), NUM(1, INT_MAX), S_START, "N",
     "stepped mode: steps between re-anchoring (default {D})", 0, R_NEVER, NULL},
    {"--mse-epochs", NULL, T_INT, GP(mse_epochs), NUM(1, 100000), S_START, "N",
     "stepped mode: how many times (default {D})", 0, R_NEVER, NULL},
    /* Optimisation */
    {"-lr --learning-rate --learning_rate", "lr", T_DOUBLE, GP(lr), NUM(0, 1e6), S_OPTIM, "X",
     "step size (default {D})", 100, R_ALWAYS, "-lr"},
    {"-opt --optimiser --optimizer", "optimiser", T_CHOICE, GP(optimiser), 0, 0, p_optim, n_optim,
     NULL, S_OPTIM, "NAME",
     "Adam, AdamW, Adagrad, Adamax, DiffGrad, AdamP, RAdam, RMSprop (default {D})", 110, R_ALWAYS,
     "-opt"},
    {NULL, "optimizer", T_CHOICE, GP(optimiser), 0, 0, p_optim, n_optim, NULL, S_HIDDEN, NULL, NULL,
     0, R_NEVER, NULL},
    {"-cutm --cut-method --cut_method", "cut_method", T_CHOICE, GP(cut_method), 0, 0, p_cut, n_cut,
     NULL, S_OPTIM, "M", "pooling or original (default {D})", 120, R_ALWAYS, "--cut-method"},
    {"-cutn --cutn --num_cuts --cuts", "cutn", T_INT, GP(cutn), NUM(1, VQC_MAX_CUTN), S_OPTIM, "N",
     "cutouts per step (default {D})", 130, R_ALWAYS, "--cutn"},
    {"-cutp --cut-pow --cut_power", "cut_pow", T_DOUBLE, GP(cut_pow), NUM(0, 1000), S_OPTIM, "X",
     "cutout size distribution (default {D})", 140, R_ALWAYS, "--cut-pow"},
    {"--cut-noise", "cut_noise", T_DOUBLE, GP(cut_noise), NUM(0, 100), S_OPTIM, "X",
     "noise factor per cutout (default {D})", 150, R_ALWAYS, "--cut-noise"},
    {"-aug --augments", "augments", T_AUGMENTS, GP(augments), NONE, S_OPTIM, "LIST",
     "Af, Pe, Ji, Er, Sh, Gn, Ro, Hf, Cr, Re, or none (default {D})", 160, R_QUOTED, "--augments"},
    /* Device */
    {"-cd --device --cuda_device", NULL, T_STR, CP(device), NONE, S_DEVICE, "D",
     "cpu, cuda, cuda:N (default: cuda when available)", 0, R_NEVER, NULL},
    {"--clip-precision", NULL, SPECIAL(sp_clip_precision), S_DEVICE, "P",
     "fp16 (the CUDA default) or fp32", 0, R_NEVER, NULL},
    {"--precision", NULL, T_CHOICE, CP(precision), 0, 0, p_precision, n_precision, NULL, S_DEVICE,
     "P",
     "on CUDA: fast (the default: CLIP in fp16, the decoder in bf16), mixed (CLIP in fp16) or "
     "exact (float32 everywhere, no TF32)",
     0, R_NEVER, NULL},
    {"--deterministic", NULL, T_FLAG, CP(deterministic), NONE, S_DEVICE, NULL,
     "on CUDA, cuDNN's deterministic algorithms, so a seed repeats a picture up to the last "
     "bits (the CPU always repeats it exactly)",
     0, R_NEVER, NULL},
    {"--low-memory", NULL, T_FLAG, CP(low_memory), NONE, S_DEVICE, NULL,
     "recompute the decoder's activations in the backward pass: the same pictures for much "
     "less memory at large sizes, about a third slower per step",
     0, R_NEVER, NULL},
    {"--profile", NULL, T_FLAG, GP(profile), NONE, S_DEVICE, NULL,
     "log where a step's time goes, stage by stage", 0, R_NEVER, NULL},
    {"--threads", NULL, T_INT, CP(n_threads), NUM(1, 4096), S_DEVICE, "N",
     "CPU threads (default: all cores)", 0, R_NEVER, NULL},
    /* Batch-only keys */
    {NULL, "width", SPECIAL(sp_width), S_HIDDEN, NULL, NULL, 0, R_NEVER, NULL},
    {NULL, "height", SPECIAL(sp_height), S_HIDDEN, NULL, NULL, 0, R_NEVER, NULL},
};
const int cli_n_options = (int)(sizeof cli_options / sizeof cli_options[0]);
#define N_ROWS ((int)(sizeof cli_options / sizeof cli_options[0]))
#define table cli_options

_Static_assert(sizeof cli_options / sizeof cli_options[0] <= sizeof((gen_opts *)0)->given,
               "gen_opts.given needs a slot per row");

/* ---- spellings ----------------------------------------------------------------------------- */

void cli_option_name(const cli_option *r, char *buf, size_t len)
{
    const char *n = r->names, *first = n, *two = NULL;
    for (const char *p = n; p && *p;) {
        size_t l = strcspn(p, " ");
        if (!two && l > 2 && p[1] == '-')
            two = p;
        p += l + (p[l] == ' ');
    }
    const char *c = two ? two : first;
    snprintf(buf, len, "%.*s", (int)strcspn(c ? c : "", " "), c ? c : "");
}

/* Whether `word` (without dashes, `len` bytes) is one of the row's spellings; with `prefix`,
 * whether it starts one of its long spellings. */
static bool spelled(const cli_option *r, const char *word, size_t len, bool prefix)
{
    for (const char *p = r->names; p && *p;) {
        size_t l = strcspn(p, " ");
        const char *w = p + strspn(p, "-");
        size_t wl = l - (size_t)(w - p);
        if (prefix ? p[1] == '-' && len < wl && strncmp(w, word, len) == 0
                   : wl == len && strncmp(w, word, len) == 0)
            return true;
        p += l + (p[l] == ' ');
    }
    return false;
}

/* The row for option word `word` (dashes removed): an exact spelling, else the only long
 * spelling it abbreviates (as getopt_long_only allows). -1 none, -2 ambiguous. */
static int find_row(const char *word, size_t len)
{
    for (int i = 0; i < N_ROWS; i++)
        if (spelled(&table[i], word, len, false))
            return i;
    int found = -1;
    for (int i = 0; len >= 2 && i < N_ROWS; i++)
        if (spelled(&table[i], word, len, true)) {
            if (found >= 0 && (table[found].in != table[i].in || table[found].off != table[i].off))
                return -2;
            found = found < 0 ? i : found;
        }
    return found;
}

/* ---- setting values ------------------------------------------------------------------------ */

void *cli_option_field(const cli_option *r, gen_target *t)
{
    switch (r->in) {
    case IN_GP: return (char *)t->gp + r->off;
    case IN_CP: return t->o ? (char *)&t->o->cp + r->off : NULL;
    default: return t->o ? (char *)t->o + r->off : NULL;
    }
}

static int bad(const gen_target *t, const char *v, const char *what)
{
    return vqc_set_error(VQC_ERR_USAGE, "%s '%s': %s", t->where, v, what);
}

static int set_int(const cli_option *r, gen_target *t, const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < r->lo || x > r->hi) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer from %.0f to %.0f", r->lo, r->hi);
        return bad(t, v, what);
    }
    *out = (int)x;
    return 0;
}

static int set_double(const cli_option *r, gen_target *t, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x) || x < r->lo || x > r->hi) {
        char what[96];
        snprintf(what, sizeof what, "expected a number from %g to %g", r->lo, r->hi);
        return bad(t, v, what);
    }
    *out = x;
    return 0;
}

static int set_seed(gen_target *t, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno || v[0] == '-' || v[0] == '+')
        return bad(t, v, "expected a non-negative integer");
    *out = x;
    if (t->o)
        t->o->seed_given = true;
    if (t->seeded)
        *t->seeded = true;
    return 0;
}

/* Appends v to the list behind a T_LIST row. */
static int add_to_list(const cli_option *r, gen_target *t, const char *v)
{
    bool img = r->off == offsetof(vqc_generate_params, image_prompts);
    int *n = img ? &t->gp->n_image_prompts : &t->gp->n_noise_prompts;
    const char **store = t->o ? (img ? t->o->image_prompts : t->o->noise_prompts)
                              : t->lists + (img ? 0 : CLI_MAX_LIST);
    if (*n >= CLI_MAX_LIST)
        return bad(t, v, "given too many times");
    store[(*n)++] = v;
    *(const char *const **)cli_option_field(r, t) = store;
    return 0;
}

static int set_value(const cli_option *r, gen_target *t, const char *v)
{
    void *f = cli_option_field(r, t);
    int rc;
    switch (r->type) {
    case T_STR: *(const char **)f = v; return 0;
    case T_INT: return set_int(r, t, v, f);
    case T_DOUBLE: return set_double(r, t, v, f);
    case T_SEED: return set_seed(t, v, f);
    case T_FLAG: *(bool *)f = true; return 0;
    case T_CHOICE:
        rc = r->parse(v, f);
        return rc ? vqc_set_error(VQC_ERR_USAGE, "%s: %s", t->where, vqc_last_error()) : 0;
    case T_AUGMENTS:
        rc = vqc_augments_parse(v, t->gp->augments, &t->gp->n_augments);
        return rc ? vqc_set_error(VQC_ERR_USAGE, "%s: %s", t->where, vqc_last_error()) : 0;
    case T_LIST: return add_to_list(r, t, v);
    case T_SIZE:
        rc = set_int(r, t, v, &t->gp->width);
        t->gp->height = t->gp->width;
        if (!rc && t->o)
            t->o->size_given = true;
        return rc;
    case T_SPECIAL: return r->special(t, v);
    }
    return bad(t, v, "cannot be set");
}

/* The peer's "-nps 1|2 -npw 0.5|1", joined into "SEED:W" noise prompts after parsing. */
static int sp_nps(gen_target *t, const char *v)
{
    t->o->peer_seeds = v;
    return 0;
}

static int sp_npw(gen_target *t, const char *v)
{
    t->o->peer_weights = v;
    return 0;
}

static int peer_noise_prompts(gen_opts *o)
{
    const char *s = o->peer_seeds, *w = o->peer_weights;
    while (s && *s) {
        char *end, *wend = NULL;
        unsigned long long seed = strtoull(s, &end, 10);
        double weight = w && *w ? strtod(w, &wend) : 1.0;
        if (end == s || (*end && *end != '|') || (wend && (wend == w || !isfinite(weight))))
            return vqc_set_error(VQC_ERR_USAGE,
                                 "-nps/-npw '%s': expected SEED|SEED... and "
                                 "W|W...",
                                 o->peer_seeds);
        char *text = malloc(64);
        if (!text || o->gp.n_noise_prompts >= CLI_MAX_LIST || o->n_owned >= CLI_MAX_LIST) {
            free(text);
            return vqc_set_error(VQC_ERR_USAGE, "-nps '%s': too many noise prompts", o->peer_seeds);
        }
        snprintf(text, 64, "%llu:%.17g", seed, weight);
        o->owned[o->n_owned++] = text;
        o->noise_prompts[o->gp.n_noise_prompts++] = text;
        o->gp.noise_prompts = o->noise_prompts;
        s = *end == '|' ? end + 1 : end;
        w = wend && *wend == '|' ? wend + 1 : wend;
    }
    return 0;
}

static int sp_shard(gen_target *t, const char *v)
{
    int i, n, used = 0;
    if (sscanf(v, "%d/%d%n", &i, &n, &used) != 2 || v[used] || n < 1 || i < 0 || i >= n)
        return bad(t, v, "expected I/N with 0 <= I < N");
    t->o->shard_index = i;
    t->o->shard_count = n;
    return 0;
}

static int sp_clip_precision(gen_target *t, const char *v)
{
    if (strcmp(v, "fp16") && strcmp(v, "fp32"))
        return bad(t, v, "expected fp16 or fp32");
    t->o->cp.clip_fp32 = strcmp(v, "fp32") == 0;
    return 0;
}

static const cli_option side_row = {
    NULL, NULL, T_INT, GP(width), NUM(1, VQC_MAX_SIDE), S_HIDDEN, NULL, NULL, 0, R_NEVER, NULL};

static int sp_width(gen_target *t, const char *v)
{
    return set_int(&side_row, t, v, &t->gp->width);
}

static int sp_height(gen_target *t, const char *v)
{
    return set_int(&side_row, t, v, &t->gp->height);
}

/* ---- the command line ---------------------------------------------------------------------- */

void gen_opts_init(gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cp = vqc_context_default_params();
    o->gp = vqc_generate_default_params();
    o->gp.image_prompts = o->image_prompts;
    o->gp.noise_prompts = o->noise_prompts;
    o->variations = 1;
    o->video_fps = 30;
}

void gen_opts_free(gen_opts *o)
{
    for (int i = 0; i < o->n_owned; i++)
        free(o->owned[i]);
    o->n_owned = 0;
    vqc_saved_run_free(o->saved);
    o->saved = NULL;
}

/* Copies row r's field(s) from `from` into `to`. */
static void copy_row(const cli_option *r, gen_target *from, gen_target *to)
{
    void *src = cli_option_field(r, from), *dst = cli_option_field(r, to);
    size_t size = 0;
    switch (r->type) {
    case T_STR: size = sizeof(const char *); break;
    case T_INT:
    case T_CHOICE: size = sizeof(int); break;
    case T_DOUBLE: size = sizeof(double); break;
    case T_SEED: size = sizeof(uint64_t); break;
    case T_FLAG: size = sizeof(bool); break;
    case T_AUGMENTS:
        to->gp->n_augments = from->gp->n_augments;
        size = sizeof from->gp->augments;
        break;
    case T_LIST:
        if (r->off == offsetof(vqc_generate_params, image_prompts))
            to->gp->n_image_prompts = from->gp->n_image_prompts;
        else
            to->gp->n_noise_prompts = from->gp->n_noise_prompts;
        size = sizeof(const char *const *);
        break;
    case T_SIZE:
        to->gp->height = from->gp->height;
        size = sizeof(int);
        break;
    case T_SPECIAL: break;
    }
    if (src && dst && size)
        memcpy(dst, src, size);
}

/* --resume: the state's settings for every option not given on the command line (the ones
 * given must then agree with the state, which the library checks, naming what differs). */
static int apply_saved(gen_opts *o)
{
    int rc = vqc_saved_run_load(o->gp.resume, &o->saved);
    if (rc)
        return rc;
    gen_opts saved = *o; /* the command line's, the state's on top */
    vqc_saved_run_apply(o->saved, &saved.gp, &saved.cp);
    gen_target from = {&saved, &saved.gp, NULL, NULL, ""}, to = {o, &o->gp, NULL, NULL, ""};
    for (int i = 0; i < N_ROWS; i++)
        if (!o->given[i] && table[i].names && table[i].in != IN_CLI)
            copy_row(&table[i], &from, &to);
    o->seed_given = true;
    o->size_given = true;
    return 0;
}

/* Whether a token is a number (a negative one too): the value of an option, not an option. */
static bool numeric(const char *s)
{
    char *end;
    if (!*s)
        return false;
    strtod(s, &end);
    return *end == 0;
}

/* One option token at argv[*i]; consumes its value. Returns 0, or VQC_ERR_USAGE. */
static int one_option(int argc, char **argv, int *i, gen_opts *o)
{
    const char *tok = argv[*i], *word = tok + strspn(tok, "-"), *eq = strchr(word, '=');
    size_t len = eq ? (size_t)(eq - word) : strlen(word);
    int row = find_row(word, len);
    const char *value = eq ? eq + 1 : NULL;
    if (row == -1 && !eq && tok[1] != '-' && len > 1) {
        /* a one-letter option with its value attached: -i50, -itterations (-i 'tterations') */
        int r1 = find_row(word, 1);
        if (r1 >= 0 && table[r1].type != T_FLAG && table[r1].type != T_SPECIAL) {
            row = r1;
            value = word + 1;
        }
    }
    if (row == -2) {
        /* name the options it could be, as getopt_long_only does */
        char could[600] = "", name[64];
        for (int r = 0; r < N_ROWS; r++) {
            size_t used = strlen(could);
            if (!spelled(&table[r], word, len, true) || used > sizeof could - 80)
                continue;
            cli_option_name(&table[r], name, sizeof name);
            snprintf(could + used, sizeof could - used, "%s%s", used ? ", " : "", name);
        }
        return vqc_set_error(VQC_ERR_USAGE, "option '%.*s' is ambiguous: it could be %s",
                             (int)(len + (size_t)(word - tok)), tok, could);
    }
    if (row < 0)
        return vqc_set_error(VQC_ERR_USAGE, "unknown option '%.*s' (see vqclip --help)",
                             (int)(len + (size_t)(word - tok)), tok);
    const cli_option *r = &table[row];
    gen_target t = {o, &o->gp, NULL, NULL, ""};
    cli_option_name(r, t.where, sizeof t.where);
    o->given[row] = 1;
    if (r->type == T_FLAG) {
        if (value)
            return vqc_set_error(VQC_ERR_USAGE, "option '%s' takes no value", t.where);
        return set_value(r, &t, NULL);
    }
    if (!value) {
        if (*i + 1 >= argc)
            return vqc_set_error(VQC_ERR_USAGE, "option '%s' needs a value", tok);
        value = argv[++*i];
    }
    int rc = set_value(r, &t, value);
    /* A second number right after the size is the height, as generate.py takes "-s 512 384". */
    if (!rc && r->type == T_SIZE && *i + 1 < argc && argv[*i + 1][0] >= '0' &&
        argv[*i + 1][0] <= '9')
        rc = set_int(r, &t, argv[++*i], &o->gp.height);
    return rc;
}

static bool row_given(const gen_opts *o, const void *field_addr);

/* Options that would change nothing here are said once, not silently dropped. */
static void warn_unused(const gen_opts *o)
{
    if (!o->batch &&
        (o->skip_existing || o->variations != 1 || o->shard_count || o->shard_count_opt))
        cli_log(VQC_LOG_WARN, "--skip-existing, --variations and --shard apply to --batch runs "
                              "only: ignored");
    if (row_given(o, &o->gp.cut_pow) && o->gp.cut_method == VQC_CUT_POOLING)
        cli_log(VQC_LOG_WARN, "--cut-pow shapes the original cut method's random squares; the "
                              "pooling method (the default) ignores it");
}

int gen_opts_parse(int argc, char **argv, gen_opts *o)
{
    gen_opts_init(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "-help")) {
            gen_opts_usage(stdout);
            return -1;
        }
        if (!strcmp(a, "--list-options")) {
            gen_opts_list(stdout);
            return -1;
        }
        if (a[0] != '-' || !a[1] || numeric(a)) {
            vqc_set_error(VQC_ERR_USAGE, "unexpected argument '%s' (quote prompts with spaces)", a);
            goto fail;
        }
        if (one_option(argc, argv, &i, o))
            goto fail;
    }
    o->output_given = row_given(o, &o->gp.output);
    warn_unused(o);
    int rc;
    if (o->gp.resume && !o->batch && (rc = apply_saved(o))) {
        fprintf(stderr, "vqclip: error: %s\n", vqc_last_error());
        return cli_exit_status(rc);
    }
    if ((o->peer_seeds || o->peer_weights) && peer_noise_prompts(o))
        goto fail;
    if (o->batch && o->video) {
        vqc_set_error(VQC_ERR_USAGE, "--video makes one video per run; it cannot be used with "
                                     "--batch");
        goto fail;
    }
    if (!o->batch && !o->gp.prompts && !o->gp.n_image_prompts && !o->gp.n_noise_prompts) {
        vqc_set_error(VQC_ERR_USAGE, "no prompt: give -p TEXT or --batch FILE (see vqclip --help)");
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "vqclip: error: %s\n", vqc_last_error());
    return 1;
}

static bool row_given(const gen_opts *o, const void *field_addr)
{
    for (int i = 0; i < N_ROWS; i++)
        if (o->given[i] && table[i].in == IN_GP &&
            (const char *)&o->gp + table[i].off == (const char *)field_addr)
            return true;
    return false;
}

/* The demo models were trained on 64x64 pictures of flat coloured shapes (models/demo/README.md):
 * at that size every cutout is the whole picture, and colour jitter or erasing in the cutouts
 * would change the very colours the prompt names; a smooth start ('gradient' noise) gives
 * flatter backgrounds than random codes. */
void gen_opts_demo_defaults(gen_opts *o)
{
    vqc_generate_params *g = &o->gp;
    if (!o->size_given)
        g->width = g->height = 64;
    if (!row_given(o, &g->iterations))
        g->iterations = 200;
    if (!row_given(o, &g->cutn))
        g->cutn = 8;
    if (!row_given(o, &g->augments))
        vqc_augments_parse("Af,Pe", g->augments, &g->n_augments);
    if (!row_given(o, &g->init_noise) && !g->init_image && g->init_noise == VQC_NOISE_NONE)
        g->init_noise = VQC_NOISE_GRADIENT;
}

/* ---- batch jobs ---------------------------------------------------------------------------- */

/* A JSON scalar as the text the command line would give; NULL when its type does not suit
 * the row. */
static const char *json_text(const cli_option *r, const cJSON *v, char *buf, size_t len)
{
    bool numeric_row = r->type == T_INT || r->type == T_DOUBLE || r->type == T_SEED ||
                       r->type == T_SIZE || r->type == T_SPECIAL;
    if (numeric_row && cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e19)
            snprintf(buf, len, "%.0f", d);
        else
            snprintf(buf, len, "%.17g", d);
        return buf;
    }
    if (!numeric_row && cJSON_IsString(v))
        return v->valuestring;
    return NULL;
}

static int apply_key(const cli_option *r, const cJSON *v, gen_target *t)
{
    char buf[64];
    if (r->type == T_LIST && cJSON_IsArray(v)) {
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsString(e))
                return vqc_set_error(VQC_ERR_USAGE, "%s must be a list of strings", t->where);
            int rc = set_value(r, t, e->valuestring);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (r->type == T_SIZE && cJSON_IsArray(v)) {
        const cJSON *w = cJSON_GetArrayItem(v, 0), *h = cJSON_GetArrayItem(v, 1);
        if (cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(w) || !cJSON_IsNumber(h))
            return vqc_set_error(VQC_ERR_USAGE, "%s must be [width, height]", t->where);
        int rc = set_value(r, t, json_text(r, w, buf, sizeof buf));
        return rc ? rc : sp_height(t, json_text(r, h, buf, sizeof buf));
    }
    const char *text = json_text(r, v, buf, sizeof buf);
    if (!text)
        return vqc_set_error(VQC_ERR_USAGE, "%s must be %s", t->where,
                             r->type == T_LIST   ? "a string or a list of strings"
                             : r->type == T_SIZE ? "a number or [width, height]"
                             : cJSON_IsString(v) ? "a number"
                                                 : "a string");
    return set_value(r, t, text);
}

int gen_opts_apply_json(const cJSON *obj, vqc_generate_params *gp, const char **lists, bool *seeded)
{
    for (const cJSON *v = obj->child; v; v = v->next) {
        int row = -1;
        for (int i = 0; i < N_ROWS && row < 0; i++)
            if (table[i].key && strcmp(table[i].key, v->string) == 0)
                row = i;
        gen_target t = {NULL, gp, lists, seeded, ""};
        snprintf(t.where, sizeof t.where, "batch job: \"%.60s\"", v->string);
        if (row < 0)
            return vqc_set_error(VQC_ERR_USAGE, "%s is not an option a batch job can set", t.where);
        /* a job's lists replace the command line's */
        if (table[row].type == T_LIST) {
            bool img = table[row].off == offsetof(vqc_generate_params, image_prompts);
            *(img ? &gp->n_image_prompts : &gp->n_noise_prompts) = 0;
        }
        int rc = apply_key(&table[row], v, &t);
        if (rc)
            return rc;
    }
    return 0;
}

/* The generate command's parser: the command line and batch keys, read through the option rows
 * (option_rows.c; see options.h). */
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
#include <strings.h>

#define N_ROWS cli_n_options
#define table cli_options

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
    case IN_CP: return t->o ? (char *)&t->o->cp + r->off : t->cp ? (char *)t->cp + r->off : NULL;
    default: return t->o ? (char *)t->o + r->off : NULL;
    }
}

int cli_option_bad(const gen_target *t, const char *v, const char *what)
{
    return vqc_set_error(VQC_ERR_USAGE, "%s '%s': %s", t->where, v, what);
}

int cli_option_set_int(const cli_option *r, gen_target *t, const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < r->lo || x > r->hi) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer from %.0f to %.0f", r->lo, r->hi);
        return cli_option_bad(t, v, what);
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
        return cli_option_bad(t, v, what);
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
        return cli_option_bad(t, v, "expected a non-negative integer");
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
        return cli_option_bad(t, v, "given too many times");
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
    case T_INT: return cli_option_set_int(r, t, v, f);
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
        rc = cli_option_set_int(r, t, v, &t->gp->width);
        t->gp->height = t->gp->width;
        if (!rc && t->o)
            t->o->size_given = true;
        return rc;
    case T_SPECIAL: return r->special(t, v);
    }
    return cli_option_bad(t, v, "cannot be set");
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
    o->video_length = 10; /* generate.py's defaults */
    o->input_fps = 15;
}

void gen_opts_free(gen_opts *o)
{
    vqc_upscaler_free(o->upscaler);
    o->upscaler = NULL;
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
    gen_target from = {&saved, &saved.gp, NULL, NULL, "", NULL},
               to = {o, &o->gp, NULL, NULL, "", NULL};
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

/* Whether word w continues a multi-word value of row r: an augmentation code after -aug, a
 * number after -nps / -npw. */
static bool continues(const cli_option *r, const char *w)
{
    if (r->type != T_AUGMENTS)
        return numeric(w);
    vqc_augment one[VQC_MAX_AUGMENTS];
    int n;
    return w[0] != '-' && strlen(w) == 2 && vqc_augments_parse(w, one, &n) == 0;
}

/* The value of a row that takes several words (generate.py's nargs='+'): `value` and the words
 * after it that continue it, joined by the row's separator (*i moves past them); a repeated
 * -aug adds to the list given before it. The options keep the string. NULL (with a message)
 * when it is too long or memory is short. */
static const char *join_words(const cli_option *r, int argc, char **argv, int *i, const char *value,
                              gen_opts *o)
{
    char buf[1024];
    size_t n = 0;
    if (r->type == T_AUGMENTS && o->aug_words[0])
        n = (size_t)snprintf(buf, sizeof buf, "%s%c", o->aug_words, r->words);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", value);
    while (n < sizeof buf && *i + 1 < argc && continues(r, argv[*i + 1]))
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%c%s", r->words, argv[++*i]);
    bool aug = r->type == T_AUGMENTS;
    if (n >= (aug ? sizeof o->aug_words : sizeof buf)) {
        vqc_set_error(VQC_ERR_USAGE, "%s: too many values", argv[*i]);
        return NULL;
    }
    if (aug)
        return memcpy(o->aug_words, buf, n + 1);
    char *kept = o->n_owned < CLI_MAX_LIST ? strdup(buf) : NULL;
    if (!kept) {
        vqc_set_error(VQC_ERR_USAGE, "%s: too many values", argv[*i]);
        return NULL;
    }
    o->owned[o->n_owned++] = kept;
    return kept;
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
    gen_target t = {o, &o->gp, NULL, NULL, "", NULL};
    cli_option_name(r, t.where, sizeof t.where);
    o->given[row] = 1;
    if (r->type == T_FLAG) {
        /* generate.py's scripts write "-d True": a Python boolean after a flag is read too */
        if (!value && *i + 1 < argc &&
            (!strcmp(argv[*i + 1], "True") || !strcmp(argv[*i + 1], "False")))
            value = argv[++*i];
        if (value && strcmp(value, "True") && strcmp(value, "False"))
            return vqc_set_error(VQC_ERR_USAGE, "option '%s' takes no value", t.where);
        if (value && !strcmp(value, "False")) {
            o->given[row] = 0;
            return 0;
        }
        return set_value(r, &t, NULL);
    }
    if (!value) {
        if (*i + 1 >= argc)
            return vqc_set_error(VQC_ERR_USAGE, "option '%s' needs a value", tok);
        value = argv[++*i];
    }
    if (r->words && !(value = join_words(r, argc, argv, i, value, o)))
        return VQC_ERR_USAGE;
    if (r->in == IN_GP && r->off == offsetof(vqc_generate_params, cut_method))
        o->cut_method_text = value;
    int rc = set_value(r, &t, value);
    /* A second number right after the size is the height, as generate.py takes "-s 512 384". */
    if (!rc && r->type == T_SIZE && *i + 1 < argc && argv[*i + 1][0] >= '0' &&
        argv[*i + 1][0] <= '9')
        rc = cli_option_set_int(r, &t, argv[++*i], &o->gp.height);
    return rc;
}

/* generate.py's "-cutm original" (MakeCutoutsOrig) cuts squares with neither augmentation nor
 * noise; its "updated" and "nrupdated" add them. So the name "original" turns both off unless
 * they are given too. */
static void plain_original(vqc_generate_params *g, const char *name, bool aug_given,
                           bool noise_given)
{
    if (!name || strcasecmp(name, "original") != 0)
        return;
    if (!aug_given)
        g->n_augments = 0;
    if (!noise_given)
        g->cut_noise = 0;
}

static bool row_given(const gen_opts *o, const void *field_addr);

/* Options that would change nothing here are said once, not silently dropped. */
static void warn_unused(const gen_opts *o)
{
    if (!o->batch &&
        (o->skip_existing || o->variations != 1 || o->shard_count || o->shard_count_opt))
        cli_log(VQC_LOG_WARN, "--skip-existing, --variations and --shard apply to --batch runs "
                              "only: ignored");
    if (o->video_style_blend > 0 && !o->video_style)
        cli_log(VQC_LOG_WARN, "--video-style-blend applies to -vsd runs only: ignored");
    if (row_given(o, &o->gp.cut_pow) && o->gp.cut_method == VQC_CUT_POOLING)
        cli_log(VQC_LOG_WARN, "--cut-pow shapes the original cut method's random squares; the "
                              "pooling method (the default) ignores it");
}

/* A plain http URL among -ii/-ip without --allow-http: said here, with the flag's name (the
 * library refuses it too, in its own words). */
static int check_http(const gen_opts *o)
{
    const char *bad =
        o->gp.init_image && strcasestr(o->gp.init_image, "http://") ? o->gp.init_image : NULL;
    for (int i = 0; !bad && i < o->gp.n_image_prompts; i++)
        if (strcasestr(o->gp.image_prompts[i], "http://"))
            bad = o->gp.image_prompts[i];
    if (!bad || o->gp.allow_http)
        return 0;
    return vqc_set_error(VQC_ERR_USAGE,
                         "'%s': plain http URLs are refused (https only): add --allow-http to "
                         "fetch them",
                         bad);
}

/* generate.py's -vid / -zvid: the frames in steps/ under its names (every step, or each zoom),
 * and the video named after the output with .mp4 for .png. */
static int peer_video(gen_opts *o)
{
    if (o->video)
        return vqc_set_error(VQC_ERR_USAGE, "-vid/-zvid name the video after the output: drop "
                                            "--video, or use --video with --save-frames");
    if (o->batch)
        return vqc_set_error(VQC_ERR_USAGE, "-vid/-zvid make one video per run; they cannot be "
                                            "used with --batch");
    vqc_generate_params *g = &o->gp;
    if (o->peer_zoom_video && !row_given(o, &g->zoom_every))
        g->zoom_every = 10;
    if (!row_given(o, &g->save_frames))
        g->save_frames = "steps";
    g->frame_every = o->peer_zoom_video && g->zoom_every > 0 ? g->zoom_every : 1;
    g->peer_frame_names = true;
    const char *out = g->output ? g->output : "output.png";
    size_t n = strlen(out);
    bool png = n >= 4 && strcmp(out + n - 4, ".png") == 0;
    if (n + 5 > sizeof o->peer_video_name)
        return vqc_set_error(VQC_ERR_USAGE, "output name too long");
    snprintf(o->peer_video_name, sizeof o->peer_video_name, "%.*s.mp4", (int)(png ? n - 4 : n),
             out);
    o->video = o->peer_video_name;
    return 0;
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
    o->precision_given = row_given(o, &o->cp.precision);
    o->cp.auto_low_memory = !o->no_auto_low_memory;
    plain_original(&o->gp, o->cut_method_text, row_given(o, &o->gp.augments),
                   row_given(o, &o->gp.cut_noise));
    warn_unused(o);
    int rc;
    if (o->gp.resume && !o->batch && (rc = apply_saved(o))) {
        fprintf(stderr, "vqclip: error: %s\n", vqc_last_error());
        return cli_exit_status(rc);
    }
    if ((o->peer_seeds || o->peer_weights) && peer_noise_prompts(o))
        goto fail;
    if (check_http(o))
        goto fail;
    if ((o->peer_video || o->peer_zoom_video) && peer_video(o))
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

/* Whether a row writing the gp or cp field at field_addr was given on the command line. */
static bool row_given(const gen_opts *o, const void *field_addr)
{
    for (int i = 0; i < N_ROWS; i++) {
        const char *base = table[i].in == IN_GP   ? (const char *)&o->gp
                           : table[i].in == IN_CP ? (const char *)&o->cp
                                                  : NULL;
        if (o->given[i] && base && base + table[i].off == (const char *)field_addr)
            return true;
    }
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
    bool plain = o->cut_method_text && strcasecmp(o->cut_method_text, "original") == 0;
    if (!row_given(o, &g->augments) && !plain)
        vqc_augments_parse("Af,Pe", g->augments, &g->n_augments);
    if (!row_given(o, &g->init_noise) && !g->init_image && !o->video_style &&
        g->init_noise == VQC_NOISE_NONE)
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
        return rc ? rc : cli_option_set_int(r, t, json_text(r, h, buf, sizeof buf), &t->gp->height);
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

int gen_opts_apply_json(const cJSON *obj, vqc_generate_params *gp, vqc_context_params *cp,
                        const char **lists, bool *seeded)
{
    for (const cJSON *v = obj->child; v; v = v->next) {
        int row = -1;
        for (int i = 0; i < N_ROWS && row < 0; i++)
            if (table[i].key && strcmp(table[i].key, v->string) == 0)
                row = i;
        gen_target t = {NULL, gp, lists, seeded, "", cp};
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
    const cJSON *cut = cJSON_GetObjectItemCaseSensitive(obj, "cut_method");
    if (cJSON_IsString(cut))
        plain_original(gp, cut->valuestring, cJSON_HasObjectItem(obj, "augments"),
                       cJSON_HasObjectItem(obj, "cut_noise"));
    return 0;
}

int gen_opts_job_params(const char *line, vqc_generate_params *gp, vqc_context_params *cp,
                        cJSON **json, bool *seeded)
{
    static _Thread_local const char *lists[2 * CLI_MAX_LIST];
    *json = NULL;
    if (line[0] != '{') {
        gp->prompts = line;
        return 0;
    }
    cJSON *obj = cJSON_Parse(line);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return vqc_set_error(VQC_ERR_USAGE, "batch job: not a valid JSON object");
    }
    *json = obj;
    int rc = gen_opts_apply_json(obj, gp, cp, lists, seeded);
    if (!rc && !gp->prompts && !gp->n_image_prompts && !gp->n_noise_prompts)
        rc = vqc_set_error(VQC_ERR_USAGE, "batch job: no \"prompts\"");
    return rc;
}

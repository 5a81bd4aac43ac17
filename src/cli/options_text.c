/* What the option table prints: --help, --list-options and the regeneration command written
 * into the PNG (see options.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/option_table.h"

#define N_ROWS cli_n_options
#define table cli_options

/* ---- help ---------------------------------------------------------------------------------- */

/* The default value of a row, from the library's defaults (for "{D}" in its help). */
static void default_text(const cli_option *r, char *buf, size_t len)
{
    gen_opts d;
    gen_opts_init(&d);
    gen_target t = {&d, &d.gp, NULL, NULL, "", NULL};
    const void *f = cli_option_field(r, &t);
    buf[0] = 0;
    if (!f)
        return;
    switch (r->type) {
    case T_INT: snprintf(buf, len, "%d", *(const int *)f); break;
    case T_DOUBLE: snprintf(buf, len, "%g", *(const double *)f); break;
    case T_STR:
        snprintf(buf, len, "%s", *(const char *const *)f ? *(const char *const *)f : "");
        break;
    case T_CHOICE: snprintf(buf, len, "%s", r->name(*(const int *)f)); break;
    case T_AUGMENTS: {
        size_t at = 0;
        for (int i = 0; i < d.gp.n_augments && at < len; i++)
            at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "",
                                   vqc_augment_name(d.gp.augments[i]));
        break;
    }
    default: break;
    }
}

/* Prints text from column `col`, wrapped at 88 columns, continuation lines indented by
 * `indent`. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
    bool first = true;
    for (const char *p = text; *p; p += strspn(p, " ")) {
        int w = (int)strcspn(p, " ");
        if (!first && col + 1 + w > 88) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        col += fprintf(f, "%.*s", w, p);
        p += w;
        first = false;
    }
    fputc('\n', f);
}

/* "-p, --prompts TEXT": the single-dash spellings, then the canonical long one. */
static void left_column(const cli_option *r, char *buf, size_t len)
{
    char canon[64];
    cli_option_name(r, canon, sizeof canon);
    size_t at = 0;
    for (const char *p = r->names; *p && at < len;) {
        size_t l = strcspn(p, " ");
        if (p[1] != '-')
            at += (size_t)snprintf(buf + at, len - at, "%.*s, ", (int)l, p);
        p += l + (p[l] == ' ');
    }
    if (canon[1] != '-' && at >= 2) /* no long spelling: drop the last ", " */
        at -= 2;
    else if (at < len)
        at += (size_t)snprintf(buf + at, len - at, "%s", canon);
    if (r->arg && at < len)
        snprintf(buf + at, len - at, " %s", r->arg);
}

void gen_opts_usage(FILE *f)
{
    fprintf(f, "usage: vqclip -p PROMPT [-o OUT.png] [options]\n"
               "       vqclip --batch FILE [-o TEMPLATE] [options]\n"
               "Generates an image that CLIP sees as PROMPT by optimising a VQGAN latent.\n\n");
    for (int s = 0; cli_sections[s]; s++) {
        fprintf(f, "%s:\n", cli_sections[s]);
        for (int i = 0; i < N_ROWS; i++) {
            const cli_option *r = &table[i];
            if (r->section != s || !r->names || !r->help)
                continue;
            char left[128], help[1024], dflt[128];
            left_column(r, left, sizeof left);
            default_text(r, dflt, sizeof dflt);
            const char *d = strstr(r->help, "{D}");
            if (d)
                snprintf(help, sizeof help, "%.*s%s%s", (int)(d - r->help), r->help, dflt, d + 3);
            else
                snprintf(help, sizeof help, "%s", r->help);
            int col = fprintf(f, "  %-26s", left);
            if (strlen(left) >= 26) { /* a left column that fills its width: a space follows */
                fputc(' ', f);
                col++;
            }
            wrap(f, help, col, 28);
        }
    }
    fprintf(
        f, "\nComing from generate.py: its command lines work as they are, spellings and value\n"
           "syntax included (-p=\"a|b\", -s 512 384, -aug Ji Sh, -nps 1 2 -npw 0.5 0.5, -d True),\n"
           "and -vid/-zvid write steps/N.png and OUTPUT.mp4, and -vsd steps/NAME, as it does.\n"
           "Differences: the models are found by name (no -conf needed), the image is\n"
           "written atomically, and the default size on a CPU is 256x256.\n"
           "`vqclip --list-options` lists every spelling.\n"
           "Exit status: 0 ok, 1 bad usage, 2 unreadable model or input, 3 runtime or device\n"
           "failure, 130/143 interrupted (the current image is written first).\n");
}

static const char *type_word(const cli_option *r)
{
    static const char *const words[] = {"text",   "integer", "number",     "integer", "flag",
                                        "choice", "list",    "repeatable", "size",    "text"};
    return words[r->type];
}

void gen_opts_list(FILE *f)
{
    for (int i = 0; i < N_ROWS; i++)
        if (table[i].names)
            fprintf(f, "%s\t%s\t%s\n", table[i].names, table[i].key ? table[i].key : "-",
                    type_word(&table[i]));
}

/* ---- the regeneration command -------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len;
} text_buf;

static void add(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text_buf *b, const char *fmt, ...)
{
    if (!b->s)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = n < 0 ? NULL : realloc(b->s, b->len + (size_t)n + 1);
    if (!t) {
        free(b->s);
        b->s = NULL;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(t + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->s = t;
    b->len += (size_t)n;
}

/* ' FLAG 'VALUE'', the value single-quoted for a POSIX shell. */
static void add_quoted(text_buf *b, const char *flag, const char *v)
{
    add(b, " %s '", flag);
    for (; *v; v++)
        add(b, *v == '\'' ? "'\\''" : "%c", *v);
    add(b, "'");
}

/* The augmentations in the order given (which is the order they apply in), joined by commas,
 * or "none". */
static void augments_text(const vqc_generate_params *g, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < g->n_augments && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "," : "",
                               vqc_augment_name(g->augments[i]));
    if (!at)
        snprintf(buf, len, "none");
}

/* The shortest "%.Ng" (N = 1..17) that strtod reads back to the very same double, so that the
 * regeneration command repeats every value exactly (17 digits always do). */
static void exact_double(double v, char *buf, size_t len)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        double back = strtod(buf, NULL);
        if (memcmp(&back, &v, sizeof v) == 0)
            return;
    }
}

/* Appends row r's part of the regeneration command; returns whether it appeared. */
static bool regen_row(const cli_option *r, const vqc_generate_params *g, const vqc_run_info *in,
                      text_buf *b)
{
    char text[128];
    const void *f = (const char *)g + r->off;
    bool quote = r->regen != R_ALWAYS;
    if (r->in == IN_CP) { /* the model files actually used */
        const char *path = r->off == offsetof(vqc_context_params, vqgan)  ? in->vqgan_path
                           : r->off == offsetof(vqc_context_params, clip) ? in->clip_path
                                                                          : in->bpe_path;
        if (path)
            add_quoted(b, r->regen_flag, path);
        return path != NULL;
    }
    switch (r->type) {
    case T_SIZE: add(b, " %s %d %d", r->regen_flag, in->width, in->height); return true;
    case T_SEED: add(b, " %s %" PRIu64, r->regen_flag, *(const uint64_t *)f); return true;
    case T_FLAG:
        if (*(const bool *)f)
            add(b, " %s", r->regen_flag);
        return *(const bool *)f;
    case T_INT:
        if (r->regen == R_SET && !*(const int *)f)
            return false;
        add(b, " %s %d", r->regen_flag, *(const int *)f);
        return true;
    case T_DOUBLE:
        if (r->regen == R_SET && *(const double *)f == 0)
            return false;
        exact_double(*(const double *)f, text, sizeof text);
        add(b, " %s %s", r->regen_flag, text);
        return true;
    case T_CHOICE:
        if (r->regen == R_SET && *(const int *)f == 0)
            return false;
        snprintf(text, sizeof text, "%s", r->name(*(const int *)f));
        break;
    case T_AUGMENTS: augments_text(g, text, sizeof text); break;
    case T_STR:
        if (!*(const char *const *)f)
            return false;
        add_quoted(b, r->regen_flag, *(const char *const *)f);
        return true;
    case T_LIST: {
        int n = r->off == offsetof(vqc_generate_params, image_prompts) ? g->n_image_prompts
                                                                       : g->n_noise_prompts;
        for (int i = 0; i < n; i++)
            add_quoted(b, r->regen_flag, (*(const char *const *const *)f)[i]);
        return n > 0;
    }
    default: return false;
    }
    if (quote)
        add_quoted(b, r->regen_flag, text);
    else
        add(b, " %s %s", r->regen_flag, text);
    return true;
}

char *gen_opts_regeneration(const vqc_generate_params *g, const vqc_run_info *info)
{
    text_buf b = {calloc(1, 1), 0};
    add(&b, "vqclip");
    int shown_group = -1;
    for (int at = 1; at <= 1000; at++) /* the rows in the order of their positions */
        for (int i = 0; i < N_ROWS; i++) {
            const cli_option *r = &table[i];
            if (r->regen_at != at || r->regen == R_NEVER)
                continue;
            if (at % 10 && shown_group != at / 10)
                continue; /* a follower whose leader did not appear */
            if (regen_row(r, g, info, &b) && at % 10 == 0)
                shown_group = at / 10;
        }
    return b.s;
}

/* vqclip --batch FILE: one job per line (a prompt, or a JSON object of options), models loaded
 * once, output names from a template, --skip-existing, --variations, and sharding over
 * processes (--shard I/N, Slurm job arrays, Kubernetes indexed Jobs). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/batch.h"
#include "cli/upscale_after.h"
#include "cli/common.h"
#include "cli/progress.h"

#define DEFAULT_TEMPLATE "{index:04}-{slug}.png"

/* ---- output names ---------------------------------------------------------------------- */

static void slugify(const char *prompt, char *out, size_t len)
{
    size_t n = 0;
    bool dash = false;
    for (const char *p = prompt; *p && *p != '|' && *p != '^' && n + 1 < len && n < 48; p++) {
        if (isalnum((unsigned char)*p)) {
            if (dash && n > 0)
                out[n++] = '-';
            if (n + 1 < len)
                out[n++] = (char)tolower((unsigned char)*p);
            dash = false;
        } else if (*p == ':') {
            break; /* the weight */
        } else {
            dash = true;
        }
    }
    out[n] = 0;
    if (n == 0)
        snprintf(out, len, "image");
}

/* Appends the value of one placeholder (`name`, without braces) to out. */
static int placeholder(const char *name, size_t nl, int index, const char *prompt, uint64_t seed,
                       char *out, size_t len)
{
    size_t at = strlen(out);
    char buf[128];
    int width = 0;
    if (nl >= 5 && strncmp(name, "index", 5) == 0 &&
        (nl == 5 || (name[5] == ':' && sscanf(name + 6, "%d", &width) == 1 && width < 20)))
        snprintf(buf, sizeof buf, "%0*d", width, index);
    else if (nl == 4 && strncmp(name, "slug", 4) == 0)
        slugify(prompt, buf, sizeof buf);
    else if (nl == 4 && strncmp(name, "seed", 4) == 0)
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    else if (nl == 4 && strncmp(name, "date", 4) == 0) {
        time_t t = time(NULL);
        strftime(buf, sizeof buf, "%Y-%m-%d", localtime(&t));
    } else
        return vqc_set_error(VQC_ERR_USAGE, "unknown placeholder {%.*s} in the output name",
                             (int)nl, name);
    snprintf(out + at, len - at, "%s", buf);
    return 0;
}

int cli_expand_template(const char *tmpl, int index, const char *prompt, uint64_t seed, char *out,
                        size_t len)
{
    out[0] = 0;
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close) {
            int rc = placeholder(p + 1, (size_t)(close - p - 1), index, prompt, seed, out, len);
            if (rc)
                return rc;
            p = close + 1;
            continue;
        }
        size_t at = strlen(out);
        if (at + 1 < len) {
            out[at] = *p;
            out[at + 1] = 0;
        }
        p++;
    }
    return strlen(out) + 1 < len ? 0 : vqc_set_error(VQC_ERR_USAGE, "output name too long");
}

/* A template that names every job differently: the user's, with "-{index:04}" added before the
 * extension when it has no placeholder that differs between jobs. */
static void job_template(const gen_opts *o, char *out, size_t len)
{
    const char *t = o->output_given ? o->gp.output : DEFAULT_TEMPLATE;
    if (strstr(t, "{index") || strstr(t, "{slug}") || strstr(t, "{seed}")) {
        snprintf(out, len, "%s", t);
        return;
    }
    const char *dot = strrchr(t, '.'), *slash = strrchr(t, '/');
    if (!dot || (slash && dot < slash))
        dot = t + strlen(t);
    snprintf(out, len, "%.*s-{index:04}%s", (int)(dot - t), t, dot);
}

int cli_make_parent_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return vqc_set_error(VQC_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
        *p = '/';
    }
    return 0;
}

/* ---- sharding -------------------------------------------------------------------------- */

/* The environment variable `name` as a whole number into *out: 0; 1 when it is unset or empty;
 * VQC_ERR_USAGE, naming it, when it is set to anything else (a scheduler's variable that does
 * not parse must not make every task run the whole batch). */
static int env_int(const char *name, int *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return 1;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end || errno || x < 0 || x > 100000000)
        return vqc_set_error(VQC_ERR_USAGE, "%s='%.64s': expected a whole number from 0", name, v);
    *out = (int)x;
    return 0;
}

/* This process's shard: --shard, else Slurm's array variables, else a Kubernetes indexed Job's
 * JOB_COMPLETION_INDEX with --shard-count (or VQCLIP_SHARD_COUNT). */
static int pick_shard(const gen_opts *o, int *index, int *count)
{
    *index = 0;
    *count = 1;
    if (o->shard_count) {
        *index = o->shard_index;
        *count = o->shard_count;
        return 0;
    }
    int id, n, min = 0, rc, rc_n;
    if ((rc = env_int("SLURM_ARRAY_TASK_ID", &id)) < 0 ||
        (rc_n = env_int("SLURM_ARRAY_TASK_COUNT", &n)) < 0)
        return VQC_ERR_USAGE;
    if (rc == 0 && rc_n == 0) {
        if (env_int("SLURM_ARRAY_TASK_MIN", &min) < 0)
            return VQC_ERR_USAGE;
        *index = id - min;
        *count = n;
    } else if ((rc = env_int("JOB_COMPLETION_INDEX", &id)) <= 0) {
        if (rc < 0)
            return VQC_ERR_USAGE;
        n = o->shard_count_opt;
        if (!n && (rc = env_int("VQCLIP_SHARD_COUNT", &n)) != 0)
            return rc < 0 ? VQC_ERR_USAGE
                          : vqc_set_error(VQC_ERR_USAGE, "JOB_COMPLETION_INDEX is set: give the "
                                                         "number of shards with --shard-count N");
        *index = id;
        *count = n;
    }
    if (*count < 1 || *index < 0 || *index >= *count)
        return vqc_set_error(VQC_ERR_USAGE, "shard %d/%d is out of range", *index, *count);
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------ */

typedef struct {
    int line_no;
    char *text; /* the line */
} batch_line;

static int read_lines(const char *path, batch_line **out, int *n)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return vqc_set_error(VQC_ERR_IO, "batch file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int count = 0, no = 0;
    batch_line *lines = NULL;
    while ((len = getline(&line, &cap, f)) >= 0) {
        no++;
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            line[--len] = 0;
        const char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        batch_line *nl = realloc(lines, (size_t)(count + 1) * sizeof *nl);
        if (!nl)
            break;
        lines = nl;
        lines[count++] = (batch_line){no, strdup(s)};
    }
    free(line);
    if (f != stdin)
        fclose(f);
    *out = lines;
    *n = count;
    return 0;
}

/* Stable seed for a line when none is given: FNV-1a of its text, below 2^32. */
static uint64_t line_seed(const char *text)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h % 4294967296ULL;
}

typedef struct {
    gen_opts *o;
    cli_ui ui;
    vqc_context *ctx;
    char *ctx_clip;          /* the CLIP models ctx was made with (NULL: the default) */
    vqc_generate_result res; /* the last job's */
    int failed_status, ok, failed, skipped;
} batch_run;

static void job_line(const batch_run *b, int index, const char *status, const char *path,
                     uint64_t seed, int rc)
{
    if (!b->o->json)
        return;
    char *p = cli_json_string(path ? path : ""), *e = rc ? cli_json_string(vqc_last_error()) : NULL;
    printf("{\"event\":\"job\",\"index\":%d,\"status\":\"%s\",\"path\":%s,\"seed\":%llu", index,
           status, p ? p : "\"\"", (unsigned long long)seed);
    if (!strcmp(status, "ok") && b->res.plateaued)
        printf(",\"stopped\":\"plateau\"");
    if (e)
        printf(",\"error\":%s,\"exit\":%d", e, cli_exit_status(rc));
    printf("}\n");
    free(p);
    free(e);
    fflush(stdout);
}

/* Job `index` (variation k of line l): its parameters, seed and output path. *json owns the
 * strings of gp (free with cJSON_Delete). Returns 0 or the job's error. */
static int prepare_job(const batch_run *b, const batch_line *l, int k, int index, const char *tmpl,
                       vqc_generate_params *gp, vqc_context_params *cp, cJSON **json, char *path,
                       size_t len)
{
    *gp = b->o->gp;
    *cp = b->o->cp;
    bool seeded = b->o->seed_given;
    int rc = gen_opts_job_params(l->text, gp, cp, json, &seeded);
    uint64_t base = seeded ? gp->seed : line_seed(l->text);
    gp->seed = base + (uint64_t)k;
    /* A job's own "output" is its template. */
    const char *t = gp->output != b->o->gp.output ? gp->output : tmpl;
    path[0] = 0;
    rc = rc ? rc
            : cli_expand_template(t, index, gp->prompts ? gp->prompts : "", gp->seed, path, len);
    gp->output = path;
    return rc;
}

/* Whether the output of a job is a finished picture: a vqclip image whose recorded step
 * reaches the job's steps (a snapshot or an interrupted run's image does not), or a file
 * vqclip did not write (left alone, as --skip-existing promises). */
static bool finished(const char *path, const vqc_generate_params *gp, int index)
{
    int step;
    int rc = vqc_image_step(path, &step);
    if (rc == VQC_ERR_FORMAT)
        return true;
    if (rc == 0 && (step >= gp->iterations || vqc_image_plateaued(path)))
        return true;
    cli_log(VQC_LOG_INFO, "job %d: %s is unfinished (step %d of %d): running it again", index, path,
            rc ? 0 : step, gp->iterations);
    return false;
}

/* The context for a job's models: the one loaded, unless the job names other CLIP models
 * (its "clip" key), which are loaded in their place. */
static int job_context(batch_run *b, const vqc_context_params *cp)
{
    const char *want = cp->clip, *have = b->ctx_clip;
    if (b->ctx && (want == have || (want && have && strcmp(want, have) == 0)))
        return 0;
    vqc_free(b->ctx);
    b->ctx = NULL;
    free(b->ctx_clip);
    b->ctx_clip = want ? strdup(want) : NULL;
    if (want && !b->ctx_clip)
        return vqc_set_error(VQC_ERR_NOMEM, "out of memory");
    return vqc_init(cp, &b->ctx);
}

/* Runs one job; returns 0, 1 when skipped, or the job's library error code. */
static int run_job(batch_run *b, vqc_generate_params *gp, const vqc_context_params *cp, int index)
{
    int rc = cli_make_parent_dirs(gp->output);
    struct stat st;
    if (!rc && b->o->skip_existing && stat(gp->output, &st) == 0 &&
        finished(gp->output, gp, index)) {
        b->skipped++;
        job_line(b, index, "skipped", gp->output, gp->seed, 0);
        return 1;
    }
    if (!rc)
        rc = job_context(b, cp);
    if (!rc) {
        cli_ui_attach(&b->ui, gp);
        b->ui.precision_given = b->o->precision_given;
        rc = vqc_generate(b->ctx, gp, &b->res);
        cli_end_progress(&b->ui);
    }
    return rc ? rc : cli_upscale_output(b->o, gp->output);
}

static int one_line(batch_run *b, const batch_line *l, int first_index, int shard, int count,
                    const char *tmpl)
{
    for (int k = 0; k < b->o->variations; k++) {
        int index = first_index + k;
        if (index % count != shard)
            continue;
        vqc_generate_params gp;
        vqc_context_params cp;
        cJSON *json = NULL;
        char path[4096];
        int rc = prepare_job(b, l, k, index, tmpl, &gp, &cp, &json, path, sizeof path);
        rc = rc ? rc : run_job(b, &gp, &cp, index);
        cJSON_Delete(json);
        if (rc == VQC_ERR_INTERRUPTED)
            return rc;
        if (rc == 1)
            continue; /* skipped */
        if (rc) {
            cli_log(VQC_LOG_ERROR, "job %d (line %d): %s", index, l->line_no, vqc_last_error());
            job_line(b, index, "failed", path, gp.seed, rc);
            if (!b->failed++)
                b->failed_status = cli_exit_status(rc);
        } else {
            b->ok++;
            job_line(b, index, "ok", path, gp.seed, 0);
        }
    }
    return 0;
}

/* ---- names that clash -------------------------------------------------------------------- */

typedef struct {
    char *path;
    int index, line_no;
} job_name;

static int by_path(const void *a, const void *b)
{
    const job_name *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : x->index - y->index;
}

/* Refuses a batch in which two jobs (of any shard) would write the same file: the second would
 * silently replace the first. Jobs whose parameters are bad are left to fail on their own. */
static int check_names(const batch_run *b, const batch_line *lines, int n, const char *tmpl)
{
    int total = n * b->o->variations, count = 0, rc = 0;
    job_name *names = calloc((size_t)(total > 0 ? total : 1), sizeof *names);
    if (!names)
        return vqc_set_error(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < b->o->variations; k++) {
            vqc_generate_params gp;
            vqc_context_params cp;
            cJSON *json = NULL;
            char path[4096];
            int index = i * b->o->variations + k;
            if (!prepare_job(b, &lines[i], k, index, tmpl, &gp, &cp, &json, path, sizeof path))
                names[count++] = (job_name){strdup(path), index, lines[i].line_no};
            cJSON_Delete(json);
        }
    qsort(names, (size_t)count, sizeof *names, by_path);
    for (int i = 1; i < count && !rc; i++)
        if (names[i].path && names[i - 1].path && !strcmp(names[i].path, names[i - 1].path))
            rc = vqc_set_error(VQC_ERR_USAGE,
                               "jobs %d (line %d) and %d (line %d) would both write %s: give "
                               "each job a name of its own ({index} or {seed} in -o, or an "
                               "\"output\" key)",
                               names[i - 1].index, names[i - 1].line_no, names[i].index,
                               names[i].line_no, names[i].path);
    for (int i = 0; i < count; i++)
        free(names[i].path);
    free(names);
    return rc;
}

int cli_run_batch(gen_opts *o)
{
    batch_run b = {.o = o, .ui = {.quiet = o->quiet, .json = o->json}};
    batch_line *lines = NULL;
    int n = 0, shard, count;
    int rc = pick_shard(o, &shard, &count);
    rc = rc ? rc : read_lines(o->batch, &lines, &n);
    if (rc)
        return cli_status_of(rc, NULL);
    char tmpl[4096];
    job_template(o, tmpl, sizeof tmpl);
    rc = check_names(&b, lines, n, tmpl);
    rc = rc ? rc : cli_upscale_prepare(o); /* a bad model name fails before any job */
    for (int i = 0; i < n && !rc; i++)
        rc = one_line(&b, &lines[i], i * o->variations, shard, count, tmpl);
    if (!o->quiet)
        cli_log(VQC_LOG_INFO, "batch: %d done, %d skipped, %d failed (shard %d/%d)", b.ok,
                b.skipped, b.failed, shard, count);
    if (o->json) {
        printf("{\"event\":\"batch\",\"result\":\"%s\",\"ok\":%d,\"skipped\":%d,\"failed\":%d,"
               "\"shard\":%d,\"shards\":%d}\n",
               rc == VQC_ERR_INTERRUPTED ? "interrupted"
               : rc || b.failed          ? "failed"
                                         : "ok",
               b.ok, b.skipped, b.failed, shard, count);
        fflush(stdout);
    }
    for (int i = 0; i < n; i++)
        free(lines[i].text);
    free(lines);
    vqc_free(b.ctx);
    free(b.ctx_clip);
    if (rc)
        return cli_status_of(rc, NULL);
    return b.failed ? b.failed_status : 0;
}

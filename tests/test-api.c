/* The public C API as a program outside the project sees it: this file includes <vqclip.h> and
 * the C library only, and links libvqclip.so (not the static vqclip_core). It parses every
 * choice both ways, checks parameters without a model, sees the lazy model loading fail where it
 * should, and generates from the fixture models ($VQCLIP_FIXTURES, else the configured
 * $VQCLIP_FIXTURES_DEFAULT: vqgan/tiny_vq.ckpt, clip/tiny_vit.pt) on the CPU: callbacks,
 * log sink, PNG metadata, abort, the same seed giving the same bytes twice, and contexts used
 * from several threads at once. */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vqclip.h>

/* ---- checks ------------------------------------------------------------------------------ */

#define FAIL(...)                                       \
    do {                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fprintf(stderr, "\n");                          \
        exit(1);                                        \
    } while (0)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond))                                                            \
            FAIL("check failed: %s (last error: %s)", #cond, vqc_last_error()); \
    } while (0)

#define CHECK_EQ(a, b)                                                             \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (a_ != b_)                                                              \
            FAIL("%s == %s failed: %lld != %lld (last error: %s)", #a, #b, a_, b_, \
                 vqc_last_error());                                                \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                        \
    do {                                                                          \
        const char *a_ = (a), *b_ = (b);                                          \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                    \
            FAIL("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                 b_ ? b_ : "(null)");                                             \
    } while (0)

/* The call returns `code`, with a one-line, non-empty message. */
#define CHECK_ERR(expr, code)                                                                   \
    do {                                                                                        \
        int rc_ = (expr);                                                                       \
        const char *m_ = vqc_last_error();                                                      \
        if (rc_ != (code))                                                                      \
            FAIL("%s returned %d, expected %s (%d); message: %s", #expr, rc_, #code, code, m_); \
        if (!*m_ || strchr(m_, '\n'))                                                           \
            FAIL("%s: the message is not one line: \"%s\"", #expr, m_);                         \
    } while (0)

#define CHECK_OK(expr)                                                \
    do {                                                              \
        int rc_ = (expr);                                             \
        if (rc_ != 0)                                                 \
            FAIL("%s returned %d: %s", #expr, rc_, vqc_last_error()); \
    } while (0)

/* ---- files ------------------------------------------------------------------------------- */

static char fixtures[4096], tmp[4096];

/* The fixtures folder, as the other tests find it (tests/testhelp.h): skips the test (77) when
 * neither $VQCLIP_FIXTURES nor $VQCLIP_FIXTURES_DEFAULT is set. A fixture missing from the
 * folder is a failure. */
static void find_fixtures(void)
{
    const char *dir = getenv("VQCLIP_FIXTURES");
    if (!dir || !*dir)
        dir = getenv("VQCLIP_FIXTURES_DEFAULT");
    if (!dir || !*dir) {
        fprintf(stderr, "SKIP: VQCLIP_FIXTURES is not set\n");
        exit(77);
    }
    snprintf(fixtures, sizeof fixtures, "%s", dir);
}

/* Path of a fixture file, in one of a few static buffers. */
static const char *fixture(const char *rel)
{
    static char buf[4][4200];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", fixtures, rel);
    struct stat st;
    if (stat(p, &st) != 0)
        FAIL("fixture %s not found", p);
    return p;
}

/* A path in the scratch folder, in one of a few static buffers. */
static const char *tmp_path(const char *name)
{
    static char buf[4][4200];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

static void make_tmp(void)
{
    const char *base = getenv("VQCLIP_TMP");
    snprintf(tmp, sizeof tmp, "%s/api", base && *base ? base : "/tmp/vqclip-test");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
    if (system(cmd) != 0)
        FAIL("cannot create %s", tmp);
}

/* The whole file, malloc'ed, with its size; NULL when it cannot be read. */
static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *size = n;
    return buf;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether `needle` occurs in the bytes of the file. */
static bool file_contains(const unsigned char *data, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(data + i, needle, k) == 0)
            return true;
    return false;
}

static void check_png(const char *path, unsigned char **data, size_t *n)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *data = slurp(path, n);
    if (!*data)
        FAIL("%s was not written", path);
    if (*n < 8 || memcmp(*data, sig, 8) != 0)
        FAIL("%s does not start with the PNG signature", path);
}

/* ---- the log sink ------------------------------------------------------------------------ */

static char log_text[1 << 16];
static size_t log_len;
static int log_bad_lines;

static void on_log(vqc_log_level level, const char *text, void *user)
{
    (void)user;
    if (level < VQC_LOG_DEBUG || level > VQC_LOG_ERROR || !text || strchr(text, '\n'))
        log_bad_lines++;
    int n = snprintf(log_text + log_len, sizeof log_text - log_len, "%s\n", text ? text : "");
    if (n > 0 && log_len + (size_t)n < sizeof log_text)
        log_len += (size_t)n;
}

/* ---- choices ----------------------------------------------------------------------------- */

/* Each canonical name parses back to its value, in upper case too; a bogus name is a usage
 * error. */
#define ROUND_TRIP(type, parse, name, first, count)             \
    do {                                                        \
        for (int i = (first); i < (count); i++) {               \
            type v = (type)-1;                                  \
            const char *nm = name((type)i);                     \
            char upper[64];                                     \
            size_t k = 0;                                       \
            for (; nm[k] && k < sizeof upper - 1; k++)          \
                upper[k] = (char)toupper((unsigned char)nm[k]); \
            upper[k] = 0;                                       \
            CHECK_OK(parse(nm, &v));                            \
            CHECK_EQ(v, i);                                     \
            v = (type)-1;                                       \
            CHECK_OK(parse(upper, &v));                         \
            CHECK_EQ(v, i);                                     \
        }                                                       \
        type v_;                                                \
        CHECK_ERR(parse("bogus", &v_), VQC_ERR_USAGE);          \
        CHECK(strstr(vqc_last_error(), "bogus"));               \
    } while (0)

static void test_choices(void)
{
    ROUND_TRIP(vqc_optim_kind, vqc_optim_parse, vqc_optim_name, 0, VQC_OPT_COUNT);
    ROUND_TRIP(vqc_cut_method, vqc_cut_method_parse, vqc_cut_method_name, 0, VQC_CUT_COUNT);
    ROUND_TRIP(vqc_mse_mode, vqc_mse_mode_parse, vqc_mse_mode_name, 0, VQC_MSE_COUNT);
    /* VQC_NOISE_NONE is "no init noise", which the parsers' names leave out */
    ROUND_TRIP(vqc_init_noise, vqc_init_noise_parse, vqc_init_noise_name, 1, VQC_NOISE_COUNT);
    ROUND_TRIP(vqc_precision, vqc_precision_parse, vqc_precision_name, 0, VQC_PRECISION_COUNT);
    CHECK_STR_EQ(vqc_optim_name(VQC_OPT_ADAM), "Adam");
    vqc_optim_kind o;
    CHECK_OK(vqc_optim_parse("radam", &o));
    CHECK_EQ(o, VQC_OPT_RADAM);

    /* Augmentations: a list in the order given, "none" empty, each code by its name. */
    vqc_augment a[VQC_MAX_AUGMENTS];
    int n = -1;
    CHECK_OK(vqc_augments_parse("Ro,af pe", a, &n));
    CHECK_EQ(n, 3);
    CHECK_EQ(a[0], VQC_AUGMENT_RO);
    CHECK_EQ(a[1], VQC_AUGMENT_AF);
    CHECK_EQ(a[2], VQC_AUGMENT_PE);
    CHECK_OK(vqc_augments_parse("none", a, &n));
    CHECK_EQ(n, 0);
    for (int i = 0; i < VQC_AUGMENT_COUNT; i++) {
        CHECK_OK(vqc_augments_parse(vqc_augment_name((vqc_augment)i), a, &n));
        CHECK_EQ(n, 1);
        CHECK_EQ(a[0], i);
    }
    CHECK_ERR(vqc_augments_parse("Af,Zz", a, &n), VQC_ERR_USAGE);
    CHECK(strstr(vqc_last_error(), "Zz"));
}

/* ---- parameters, no model ---------------------------------------------------------------- */

static void test_check(void)
{
    vqc_generate_params g = vqc_generate_default_params();
    CHECK_EQ(g.iterations, 500);
    CHECK_EQ(g.cutn, 32);
    CHECK_EQ(g.n_augments, 4);
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE); /* no prompt of any kind */
    g.prompts = "a cat";
    CHECK_OK(vqc_generate_check(&g));

    g.cutn = -1;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.optimiser = VQC_OPT_COUNT;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.cut_method = (vqc_cut_method)7;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.init_weight_mode = (vqc_mse_mode)-1;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.augments[1] = VQC_AUGMENT_COUNT;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.n_augments = VQC_MAX_AUGMENTS + 1;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.lr = NAN;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g = vqc_generate_default_params();
    g.prompts = "a cat:not-a-weight";
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    /* An init blend is a weight in [0, 1] between an init image and a blend image. */
    g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.init_blend = 0.5;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g.init_image = "a.png";
    g.init_blend_image = "b.png";
    CHECK_OK(vqc_generate_check(&g));
    g.init_blend = 1.5;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);
    g.init_blend = NAN;
    CHECK_ERR(vqc_generate_check(&g), VQC_ERR_USAGE);

    /* The output check touches nothing. */
    CHECK_OK(vqc_check_output(tmp_path("not-yet.png")));
    CHECK(!file_exists(tmp_path("not-yet.png")));
    CHECK_ERR(vqc_check_output(tmp_path("no-such-folder/x.png")), VQC_ERR_IO);
}

/* ---- contexts that cannot run ------------------------------------------------------------- */

static void test_init_and_load_errors(void)
{
    vqc_context_params cp = vqc_context_default_params();
    vqc_context *ctx = (vqc_context *)&cp; /* to see it set to NULL */
    cp.device = "toaster";
    CHECK_ERR(vqc_init(&cp, &ctx), VQC_ERR_USAGE);
    CHECK(ctx == NULL);
    CHECK(strstr(vqc_last_error(), "toaster"));
    cp.device = "cpu";
    cp.n_threads = -1;
    CHECK_ERR(vqc_init(&cp, &ctx), VQC_ERR_USAGE);

    /* A missing model: vqc_init succeeds (nothing is loaded yet), vqc_load and vqc_generate
     * fail with VQC_ERR_IO naming it, and nothing is written. A failure is not remembered. */
    cp = vqc_context_default_params();
    cp.device = "cpu";
    cp.vqgan = tmp_path("missing_vq.ckpt");
    cp.clip = fixture("clip/tiny_vit.pt");
    cp.bpe = fixture("clip/bpe_simple_vocab_16e6.txt.gz");
    CHECK_OK(vqc_init(&cp, &ctx));
    CHECK(ctx != NULL);
    CHECK_ERR(vqc_load(ctx), VQC_ERR_IO);
    CHECK(strstr(vqc_last_error(), "missing_vq.ckpt"));
    CHECK_ERR(vqc_load(ctx), VQC_ERR_IO);
    vqc_generate_params g = vqc_generate_default_params();
    g.prompts = "a cat";
    g.output = tmp_path("never.png");
    g.width = g.height = 32;
    g.iterations = 1;
    g.cutn = -3; /* the parameters are checked before the models are looked for */
    CHECK_ERR(vqc_generate(ctx, &g, NULL), VQC_ERR_USAGE);
    g.cutn = 2;
    vqc_generate_result res;
    CHECK_ERR(vqc_generate(ctx, &g, &res), VQC_ERR_IO);
    CHECK(strstr(vqc_last_error(), "missing_vq.ckpt"));
    CHECK(!file_exists(g.output));
    vqc_free(ctx);
    vqc_free(NULL);
}

/* ---- models folders ---------------------------------------------------------------------- */

static void test_models(void)
{
    char path[4096];
    const char *vq = fixture("vqgan/tiny_vq.ckpt");
    CHECK_OK(vqc_model_find(VQC_MODEL_VQGAN, vq, path, sizeof path));
    CHECK(file_exists(path));
    CHECK_ERR(vqc_model_find(VQC_MODEL_CLIP, "no-such-clip-model", path, sizeof path), VQC_ERR_IO);
    CHECK(strstr(vqc_last_error(), "no-such-clip-model"));

    setenv("VQCLIP_MODELS", tmp, 1);
    const char *dirs[8];
    int n = vqc_model_dirs(dirs, 8);
    CHECK(n >= 1 && n <= 8);
    CHECK_STR_EQ(dirs[0], tmp);
    unsetenv("VQCLIP_MODELS");

    vqc_context_params cp = vqc_context_default_params();
    cp.vqgan = vq;
    CHECK(!vqc_uses_demo_models(&cp));
    /* Built from the source tree, the demo set is there (models/demo). */
    CHECK_OK(vqc_demo_dir(path, sizeof path));
    size_t len = strlen(path);
    snprintf(path + len, sizeof path - len, "/vqgan_demo.ckpt");
    CHECK(file_exists(path));
}

/* ---- generation -------------------------------------------------------------------------- */

#define STEPS 4
#define DESCRIPTION "test-api description: a red square, seed 7"

typedef struct {
    int seen[STEPS + 2]; /* times each step was reported */
    int bad_progress;    /* reports with a wrong total, count or a non-finite loss */
    int n_losses;
    int images, last_image_step;
    char last_image[4200];
    int describes;
    vqc_run_info info;
    char vqgan_path[4096];
    int abort_after; /* the abort callback says stop from this step on (0: never) */
    int polls;
} run_log;

static void on_progress(int step, int total, const float *losses, int n, void *user)
{
    run_log *r = user;
    if (step < 1 || step > STEPS || total != STEPS || n < 1 || !losses) {
        r->bad_progress++;
        return;
    }
    r->seen[step]++;
    r->n_losses = n;
    for (int i = 0; i < n; i++)
        if (!isfinite(losses[i]))
            r->bad_progress++;
}

static bool on_abort(void *user)
{
    run_log *r = user;
    r->polls++;
    return r->abort_after > 0 && r->polls >= r->abort_after;
}

static void on_image(const char *path, int step, double loss, void *user)
{
    run_log *r = user;
    r->images++;
    r->last_image_step = step;
    snprintf(r->last_image, sizeof r->last_image, "%s", path ? path : "");
    if (!isfinite(loss))
        r->bad_progress++;
}

static char *on_describe(const vqc_run_info *info, void *user)
{
    run_log *r = user;
    r->describes++;
    r->info = *info;
    snprintf(r->vqgan_path, sizeof r->vqgan_path, "%s", info->vqgan_path ? info->vqgan_path : "");
    r->info.vqgan_path = r->vqgan_path;
    r->info.clip_path = NULL;
    return strdup(DESCRIPTION); /* freed by the library */
}

static vqc_generate_params run_params(run_log *r, const char *output)
{
    memset(r, 0, sizeof *r);
    vqc_generate_params g = vqc_generate_default_params();
    g.prompts = "a red square|blurry:-0.5";
    g.width = g.height = 32;
    g.iterations = STEPS;
    g.save_every = 0;
    g.cutn = 2;
    g.seed = 7;
    g.output = output;
    g.progress = on_progress;
    g.abort = on_abort;
    g.on_image = on_image;
    g.describe = on_describe;
    g.user = r;
    return g;
}

static void test_generate(vqc_context *ctx)
{
    run_log r;
    vqc_generate_params g = run_params(&r, tmp_path("a.png"));
    vqc_generate_result res;
    CHECK_OK(vqc_generate(ctx, &g, &res));
    CHECK_EQ(res.steps, STEPS);
    CHECK_EQ(res.width, 32);
    CHECK_EQ(res.height, 32);
    CHECK(isfinite(res.loss));
    CHECK(res.seconds >= res.setup_seconds && res.setup_seconds >= 0);
    /* the CPU's count: the step's tensors came on top of the models */
    CHECK(res.peak_device_bytes > res.base_device_bytes && res.planned_step_bytes > 0);

    CHECK_EQ(r.bad_progress, 0);
    for (int s = 1; s <= STEPS; s++)
        if (r.seen[s] != 1)
            FAIL("step %d reported %d times", s, r.seen[s]);
    CHECK_EQ(r.n_losses, 3); /* the MSE term and the two prompts */
    CHECK(r.images >= 1);
    CHECK_EQ(r.last_image_step, STEPS);
    CHECK_STR_EQ(r.last_image, g.output);
    CHECK_EQ(r.describes, 1);
    CHECK_EQ(r.info.width, 32);
    CHECK_EQ(r.info.height, 32);
    CHECK(r.info.downsample > 1 && 32 % r.info.downsample == 0);
    CHECK(strstr(r.vqgan_path, "tiny_vq.ckpt"));
    CHECK(!r.info.on_cuda && !r.info.demo_models);

    unsigned char *a, *b;
    size_t na, nb;
    check_png(g.output, &a, &na);
    if (!file_contains(a, na, DESCRIPTION))
        FAIL("the describe callback's text is not in %s", g.output);

    /* The library's log lines reached the sink. */
    CHECK(strstr(log_text, "models loaded"));
    CHECK_EQ(log_bad_lines, 0);

    /* The same seed again, on the CPU: the same bytes. */
    g = run_params(&r, tmp_path("b.png"));
    CHECK_OK(vqc_generate(ctx, &g, &res));
    check_png(g.output, &b, &nb);
    if (na != nb || memcmp(a, b, na) != 0)
        FAIL("the same seed gave different files: %s (%zu bytes) and %s (%zu bytes)",
             tmp_path("a.png"), na, tmp_path("b.png"), nb);
    free(a);
    free(b);
}

/* On the CPU the result carries the counted peak, and the planner's estimate of a step is
 * within 15% of what the step took on top of the models (at a size where the decoder, not the
 * fixed costs, is most of it). */
static void test_memory_estimate(vqc_context *ctx)
{
    run_log r;
    vqc_generate_params g = run_params(&r, tmp_path("plan.png"));
    g.width = g.height = 128;
    g.cutn = 4;
    vqc_generate_result res;
    CHECK_OK(vqc_generate(ctx, &g, &res));
    double step = (double)(res.peak_device_bytes - res.base_device_bytes);
    double ratio = step > 0 ? (double)res.planned_step_bytes / step : 0;
    fprintf(stderr, "128x128, 4 cutouts: step %.2f MiB, planned %.2f MiB (%.2f)\n",
            step / (1 << 20), (double)res.planned_step_bytes / (1 << 20), ratio);
    if (ratio < 0.85 || ratio > 1.15)
        FAIL("the planner's CPU estimate is %.2f times the measured step", ratio);
}

/* The abort callback stops the run after step 2; the current image is still written. */
static void test_abort(vqc_context *ctx)
{
    run_log r;
    vqc_generate_params g = run_params(&r, tmp_path("stopped.png"));
    r.abort_after = 2;
    vqc_generate_result res;
    CHECK_ERR(vqc_generate(ctx, &g, &res), VQC_ERR_INTERRUPTED);
    CHECK_EQ(res.steps, 2);
    CHECK_EQ(r.seen[1], 1);
    CHECK_EQ(r.seen[2], 1);
    CHECK_EQ(r.seen[3], 0);
    CHECK_EQ(r.last_image_step, 2);
    unsigned char *data;
    size_t n;
    check_png(g.output, &data, &n);
    CHECK(file_contains(data, n, DESCRIPTION));
    free(data);
    CHECK(strstr(log_text, "interrupted"));
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct thread_job {
    vqc_context *ctx;
    char out[4200];
    int rc;
    int threads; /* libtorch's CPU thread count during the run (torch_threads), -1 unknown */
} thread_job;

/* libtorch's CPU thread count as libtorch itself reports it to the thread that asks, read by
 * name from the libtorch this process loaded with libvqclip; NULL when not found. (A picture
 * shows a wrong count only where the CPU kernels split their sums by it: oneDNN's convolutions
 * do, libtorch's own, VQCLIP_ONEDNN=0 or where oneDNN's compute wrong, need not.) */
static int (*torch_threads(void))(void)
{
    static int (*fn)(void);
    static bool looked;
    if (!looked) {
        looked = true;
        void *self = dlopen(NULL, RTLD_LAZY); /* the program and the libraries it loaded */
        if (self)
            *(void **)&fn = dlsym(self, "_ZN2at15get_num_threadsEv"); /* at::get_num_threads */
    }
    return fn;
}

/* The progress callback runs on the thread that called vqc_generate, where the run set the
 * count. */
static void job_progress(int step, int total, const float *losses, int n, void *user)
{
    (void)step, (void)total, (void)losses, (void)n;
    thread_job *j = user;
    j->threads = torch_threads() ? torch_threads()() : -1;
}

static void *thread_generate(void *arg)
{
    thread_job *j = arg;
    j->threads = -1;
    vqc_generate_params g = vqc_generate_default_params();
    g.prompts = "a red square";
    g.width = g.height = 128;
    g.iterations = 3;
    g.save_every = 0;
    g.cutn = 4;
    g.seed = 11;
    g.output = j->out;
    g.progress = job_progress;
    g.user = j;
    j->rc = vqc_generate(j->ctx, &g, NULL);
    return NULL;
}

static bool same_file(const char *a, const char *b)
{
    unsigned char *da, *db;
    size_t na, nb;
    check_png(a, &da, &na);
    check_png(b, &db, &nb);
    bool same = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

/* Two contexts that differ in a setting libtorch keeps for the whole process (the CPU thread
 * count), the second made after the first: each generation keeps its own context's setting, as
 * libtorch reports it during the run. Then four generations at once from four
 * threads, the two contexts in turn: each runs with its context's count and gives the picture
 * its context gives alone (they run one at a time; before, they drew from the same random
 * generator). */
static void test_threads(vqc_context_params cp)
{
    vqc_context *ctx[2];
    thread_job alone[2], job[4];
    if (!torch_threads()) /* looked up here, before the threads call it */
        FAIL("libtorch's at::get_num_threads is not found in this process");
    for (int k = 0; k < 2; k++) {
        cp.n_threads = k + 1;
        CHECK_OK(vqc_init(&cp, &ctx[k]));
    }
    for (int k = 0; k < 2; k++) {
        alone[k].ctx = ctx[k];
        snprintf(alone[k].out, sizeof alone[k].out, "%s", tmp_path(k ? "two.png" : "one.png"));
        thread_generate(&alone[k]);
        CHECK_OK(alone[k].rc);
    }
    for (int k = 0; k < 2; k++)
        if (alone[k].threads != k + 1)
            FAIL("the context of %d CPU threads ran with %d", k + 1, alone[k].threads);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        job[i].ctx = ctx[i % 2];
        char name[32];
        snprintf(name, sizeof name, "thread%d.png", i);
        snprintf(job[i].out, sizeof job[i].out, "%s", tmp_path(name));
        CHECK_EQ(pthread_create(&t[i], NULL, thread_generate, &job[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        if (job[i].rc != 0)
            FAIL("thread %d: generation failed (%d)", i, job[i].rc);
        if (job[i].threads != i % 2 + 1)
            FAIL("thread %d ran with %d CPU threads, its context's %d", i, job[i].threads,
                 i % 2 + 1);
        if (!same_file(job[i].out, alone[i % 2].out))
            FAIL("thread %d's picture %s is not its context's picture alone, %s", i, job[i].out,
                 alone[i % 2].out);
    }
    vqc_free(ctx[0]);
    vqc_free(ctx[1]);
}

int main(void)
{
    find_fixtures();
    make_tmp();
    CHECK(*vqc_version() >= '0' && *vqc_version() <= '9' && strchr(vqc_version(), '.'));
    CHECK(*vqc_torch_version());
    vqc_log_set(on_log, NULL, VQC_LOG_DEBUG);

    test_choices();
    test_check();
    test_init_and_load_errors();
    test_models();

    vqc_context_params cp = vqc_context_default_params();
    cp.vqgan = fixture("vqgan/tiny_vq.ckpt");
    cp.clip = fixture("clip/tiny_vit.pt");
    cp.bpe = fixture("clip/bpe_simple_vocab_16e6.txt.gz");
    cp.device = "cpu";
    cp.n_threads = 2;
    vqc_context *ctx = NULL;
    CHECK_OK(vqc_init(&cp, &ctx));
    CHECK(!strstr(log_text, "models loaded")); /* not before the first generation */
    test_generate(ctx);
    test_memory_estimate(ctx);
    test_abort(ctx);
    vqc_free(ctx);
    test_threads(cp);

    vqc_log_set(NULL, NULL, VQC_LOG_INFO);
    printf("api: ok\n");
    return 0;
}

/* vqclip -p PROMPT -o OUT.png: the generation command (options in gen_opts.c). */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/gen_opts.h"
#include "gen/modelpath.h"
#include "gen/prompts.h"
#include "util/error.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &s, sizeof s) != (ssize_t)sizeof s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (fd >= 0)
        close(fd);
    return s % 4294967296ULL; /* a seed people can type */
}

/* ---- run state ------------------------------------------------------------------------- */

typedef struct {
    gen_opts o;
    vqt_device dev;
    char vqgan_path[4096], yaml_path[4096], clip_path[4096], bpe_path[4096];
    int have_yaml;
    vqc_vqgan *vq;
    vqc_clip *clip;
    vqc_tokenizer *tok;
    vqc_prompt_list text, images;
    vqc_image *image_data; /* one per entry of `images` */
    vqc_image init;
    vqc_loop *loop;
    vqc_loop_params lp;
    float *losses;
    double t_start, t_first_step;
    char *params_text; /* the PNG "parameters" chunk */
} run_t;

static void run_free(run_t *r)
{
    vqc_loop_free(r->loop);
    vqc_tokenizer_free(r->tok);
    vqc_clip_free(r->clip);
    vqc_vqgan_free(r->vq);
    for (int i = 0; i < r->images.n; i++)
        vqc_image_free(&r->image_data[i]);
    free(r->image_data);
    vqc_image_free(&r->init);
    vqc_prompt_list_clear(&r->text);
    vqc_prompt_list_clear(&r->images);
    free(r->losses);
    free(r->params_text);
}

/* Parses prompts and reads every input image, before any model is loaded. */
static int read_inputs(run_t *r)
{
    int rc = 0;
    if (r->o.prompts)
        rc = vqc_prompts_parse(r->o.prompts, &r->text);
    for (int i = 0; !rc && i < r->o.n_image_prompts; i++)
        rc = vqc_prompts_parse(r->o.image_prompts[i], &r->images);
    if (rc)
        return rc;
    r->image_data = calloc((size_t)r->images.n + 1, sizeof *r->image_data);
    if (!r->image_data)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < r->images.n; i++)
        if ((rc = vqc_image_load(r->images.items[i].text, &r->image_data[i])))
            rc = vqc_error_wrap(rc, "image prompt");
    if (!rc && r->o.init_image && (rc = vqc_image_load(r->o.init_image, &r->init)))
        rc = vqc_error_wrap(rc, "init image");
    if (!rc && r->o.init_noise && strcmp(r->o.init_noise, "pixels") != 0 &&
        strcmp(r->o.init_noise, "gradient") != 0)
        rc = vqc_error_set(VQC_ERR_USAGE, "--init-noise '%s': expected pixels or gradient",
                           r->o.init_noise);
    return rc;
}

static int load_models(run_t *r)
{
    const gen_opts *o = &r->o;
    int rc = vqc_model_find(VQC_MODEL_VQGAN, o->vqgan ? o->vqgan : VQC_DEFAULT_VQGAN, r->vqgan_path,
                            sizeof r->vqgan_path);
    rc = rc ? rc
            : vqc_model_find(VQC_MODEL_CLIP, o->clip ? o->clip : VQC_DEFAULT_CLIP, r->clip_path,
                             sizeof r->clip_path);
    rc = rc ? rc
            : vqc_model_find(VQC_MODEL_BPE, o->bpe ? o->bpe : VQC_DEFAULT_BPE, r->bpe_path,
                             sizeof r->bpe_path);
    if (rc)
        return rc;
    if (o->vqgan_config)
        snprintf(r->yaml_path, sizeof r->yaml_path, "%s", o->vqgan_config);
    r->have_yaml = o->vqgan_config ||
                   vqc_model_find_yaml(r->vqgan_path, r->yaml_path, sizeof r->yaml_path) == 0;
    vqc_clip_precision prec = r->dev.type == VQT_DEVICE_CUDA ? VQC_CLIP_FP16 : VQC_CLIP_FP32;
    if (o->clip_precision && strcmp(o->clip_precision, "fp32") == 0)
        prec = VQC_CLIP_FP32;
    else if (o->clip_precision && strcmp(o->clip_precision, "fp16") != 0)
        return vqc_error_set(VQC_ERR_USAGE, "--clip-precision '%s': expected fp16 or fp32",
                             o->clip_precision);
    rc = vqc_tokenizer_load(r->bpe_path, &r->tok);
    rc =
        rc ? rc : vqc_vqgan_load(r->vqgan_path, r->have_yaml ? r->yaml_path : NULL, r->dev, &r->vq);
    rc = rc ? rc : vqc_clip_load(r->clip_path, r->dev, prec, &r->clip);
    return rc;
}

/* Default size for the device, rounded down to the VQGAN's factor with a notice. */
static int pick_size(run_t *r)
{
    int f = vqc_vqgan_get_info(r->vq)->downsample;
    int w = r->o.width, h = r->o.height;
    if (w == 0)
        w = h = r->dev.type == VQT_DEVICE_CUDA ? 512 : 256;
    int rw = w / f * f, rh = h / f * f;
    if (rw == 0 || rh == 0)
        return vqc_error_set(VQC_ERR_USAGE, "size %dx%d is smaller than the VQGAN's factor %d", w,
                             h, f);
    if (rw != w || rh != h)
        vqc_log(VQC_LOG_INFO, "size %dx%d rounded down to %dx%d (multiples of %d)", w, h, rw, rh,
                f);
    r->lp.width = rw;
    r->lp.height = rh;
    return 0;
}

static int add_prompts(run_t *r)
{
    int rc = 0;
    for (int i = 0; !rc && i < r->text.n; i++) {
        const vqc_prompt *p = &r->text.items[i];
        rc = vqc_loop_add_text_prompt(r->loop, r->tok, p->text, p->weight, p->stop);
    }
    for (int i = 0; !rc && i < r->images.n; i++) {
        const vqc_prompt *p = &r->images.items[i];
        rc = vqc_loop_add_image_prompt(r->loop, &r->image_data[i], p->weight, p->stop);
    }
    for (int i = 0; !rc && i < r->o.n_noise_prompts; i++) {
        unsigned long long seed;
        double w;
        rc = vqc_noise_prompt_parse(r->o.noise_prompts[i], &seed, &w);
        rc = rc ? rc : vqc_loop_add_noise_prompt(r->loop, seed, w);
    }
    return rc;
}

/* The peer's "-nps 1|2 -npw 0.5|1" form. */
static int add_peer_noise_prompts(run_t *r)
{
    const char *s = r->o.nps, *w = r->o.npw;
    while (s && *s) {
        char *end;
        unsigned long long seed = strtoull(s, &end, 10);
        if (end == s)
            return vqc_error_set(VQC_ERR_USAGE, "-nps '%s': expected SEED|SEED...", r->o.nps);
        double weight = 1.0;
        if (w && *w) {
            char *wend;
            weight = strtod(w, &wend);
            if (wend == w || !isfinite(weight))
                return vqc_error_set(VQC_ERR_USAGE, "-npw '%s': expected W|W...", r->o.npw);
            w = *wend == '|' ? wend + 1 : wend;
        }
        int rc = vqc_loop_add_noise_prompt(r->loop, seed, weight);
        if (rc)
            return rc;
        s = *end == '|' ? end + 1 : end;
    }
    return 0;
}

static int init_z(run_t *r)
{
    if (r->o.init_image)
        return vqc_loop_init_image(r->loop, &r->init);
    if (r->o.init_noise)
        return vqc_loop_init_noise(r->loop, strcmp(r->o.init_noise, "gradient") == 0
                                                ? VQC_NOISE_GRADIENT
                                                : VQC_NOISE_PIXELS);
    return vqc_loop_init_random(r->loop);
}

/* ---- output ---------------------------------------------------------------------------- */

static void append_quoted(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t need = *len + strlen(s) * 4 + 8;
    if (need > *cap) {
        *cap = need * 2;
        char *b = realloc(*buf, *cap);
        if (!b)
            return;
        *buf = b;
    }
    char *o = *buf + *len;
    *o++ = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *s;
        }
    }
    *o++ = '\'';
    *o = 0;
    *len = (size_t)(o - *buf);
}

/* The "parameters" text: a command line that regenerates the picture. */
static void build_params_text(run_t *r)
{
    const gen_opts *o = &r->o;
    size_t len = 0, cap = 4096;
    char *b = malloc(cap), num[512];
    if (!b)
        return;
    b[0] = 0;
#define ADD_RAW(...)                                                  \
    do {                                                              \
        snprintf(num, sizeof num, __VA_ARGS__);                       \
        if (len + strlen(num) + 1 > cap) {                            \
            char *nb = realloc(b, cap = (len + strlen(num)) * 2 + 1); \
            if (!nb) {                                                \
                free(b);                                              \
                return;                                               \
            }                                                         \
            b = nb;                                                   \
        }                                                             \
        len += (size_t)sprintf(b + len, "%s", num);                   \
    } while (0)
#define ADD_STR(flag, val)                  \
    do {                                    \
        ADD_RAW(" %s ", flag);              \
        append_quoted(&b, &len, &cap, val); \
    } while (0)
    ADD_RAW("vqclip");
    if (o->prompts)
        ADD_STR("-p", o->prompts);
    for (int i = 0; i < o->n_image_prompts; i++)
        ADD_STR("-ip", o->image_prompts[i]);
    for (int i = 0; i < o->n_noise_prompts; i++)
        ADD_STR("--noise-prompt", o->noise_prompts[i]);
    ADD_RAW(" -s %d %d -i %d --seed %llu", r->lp.width, r->lp.height, o->iterations,
            (unsigned long long)r->lp.seed);
    ADD_STR("--vqgan", r->vqgan_path);
    ADD_STR("--clip", r->clip_path);
    ADD_RAW(" -lr %g -opt %s --cut-method %s --cutn %d --cut-pow %g --cut-noise %g", o->lr,
            vqc_optim_name(r->lp.optimiser), o->cut_method ? o->cut_method : "pooling", o->cutn,
            o->cut_pow, o->cut_noise);
    ADD_STR("--augments", o->augments ? o->augments : "Af,Pe,Ji,Er");
    if (o->init_image)
        ADD_STR("-ii", o->init_image);
    if (o->init_noise)
        ADD_STR("-in", o->init_noise);
    if (o->init_weight != 0)
        ADD_RAW(" -iw %g --init-weight-mode %s", o->init_weight,
                o->mse_mode ? o->mse_mode : "seed");
#undef ADD_RAW
#undef ADD_STR
    r->params_text = b;
}

static int total_losses(const run_t *r, double *total)
{
    *total = 0;
    for (int i = 0; i <= vqc_loop_prompt_count(r->loop); i++)
        *total += r->losses[i];
    return 0;
}

/* A JSON string literal for s (malloc'ed), or NULL. */
static char *json_string(const char *s)
{
    cJSON *item = cJSON_CreateString(s);
    char *q = item ? cJSON_PrintUnformatted(item) : NULL;
    cJSON_Delete(item);
    return q;
}

static int save_image(run_t *r, int step)
{
    vqc_image img = {0};
    vqt_tensor *t = vqc_loop_image(r->loop);
    int rc = t ? vqc_image_from_tensor(t, &img) : VQC_ERR_RUNTIME;
    vqt_free(t);
    char stepbuf[32];
    snprintf(stepbuf, sizeof stepbuf, "%d", step);
    const char *meta[] = {"parameters",  r->params_text ? r->params_text : "",
                          "Software",    "vqclip " VQCLIP_VERSION,
                          "vqclip:step", stepbuf,
                          NULL};
    rc = rc ? rc : vqc_image_save_png(r->o.output, &img, meta);
    vqc_image_free(&img);
    if (!rc && r->o.json) {
        double total;
        total_losses(r, &total);
        char *q = json_string(r->o.output);
        printf("{\"event\":\"image\",\"path\":%s,\"step\":%d,\"loss\":%.6f}\n", q ? q : "\"\"",
               step, total);
        free(q);
        fflush(stdout);
    }
    return rc;
}

static void progress(const run_t *r, int step, int total)
{
    if (r->o.quiet || !isatty(2))
        return;
    double el = now() - r->t_first_step, rate = step / (el > 0 ? el : 1e-9), loss;
    total_losses(r, &loss);
    int eta = rate > 0 ? (int)((total - step) / rate) : 0;
    fprintf(stderr, "\rvqclip: step %d/%d  %.2f it/s  ETA %dm%02ds  loss %.4f   ", step, total,
            rate, eta / 60, eta % 60, loss);
    if (step == total)
        fputc('\n', stderr);
}

static void summary(const run_t *r, const char *status)
{
    if (!r->o.json)
        return;
    char *q = json_string(r->o.output);
    printf("{\"event\":\"done\",\"status\":\"%s\",\"path\":%s,\"seed\":%llu,\"steps\":%d,"
           "\"width\":%d,\"height\":%d,\"losses\":[",
           status, q ? q : "\"\"", (unsigned long long)r->lp.seed,
           r->loop ? vqc_loop_steps(r->loop) : 0, r->lp.width, r->lp.height);
    for (int i = 0; r->loop && i <= vqc_loop_prompt_count(r->loop); i++)
        printf(i ? ",%.6f" : "%.6f", r->losses[i]);
    printf("],\"startup_seconds\":%.3f,\"seconds\":%.3f}\n", r->t_first_step - r->t_start,
           now() - r->t_start);
    free(q);
    fflush(stdout);
}

/* The optimisation with snapshots; returns 0, a negative code, or VQC_ERR_INTERRUPTED. */
static int optimise(run_t *r)
{
    int n = r->o.iterations, se = r->o.save_every;
    r->t_first_step = now();
    for (int i = 1; i <= n; i++) {
        int rc = vqc_loop_step(r->loop, r->losses);
        if (rc)
            return rc;
        progress(r, i, n);
        if ((se > 0 && i % se == 0 && i != n) && (rc = save_image(r, i)))
            return rc;
        if (got_signal) {
            if (!r->o.quiet && isatty(2))
                fputc('\n', stderr);
            vqc_log(VQC_LOG_INFO, "interrupted at step %d/%d: writing the current image", i, n);
            rc = save_image(r, i);
            return rc ? rc : VQC_ERR_INTERRUPTED;
        }
    }
    return save_image(r, n);
}

static int setup(run_t *r)
{
    int rc = vqc_check_writable(r->o.output);
    rc = rc ? rc : read_inputs(r);
    rc = rc ? rc : load_models(r);
    if (rc)
        return rc;
    if (gen_opts_loop_params(&r->o, &r->lp))
        return VQC_ERR_USAGE;
    r->lp.seed = r->o.seed;
    rc = pick_size(r);
    rc = rc ? rc : vqc_loop_create(&r->lp, r->vq, r->clip, &r->loop);
    rc = rc ? rc : add_prompts(r);
    rc = rc ? rc : add_peer_noise_prompts(r);
    rc = rc ? rc : init_z(r);
    if (rc)
        return rc;
    r->losses = calloc((size_t)vqc_loop_prompt_count(r->loop) + 1, sizeof *r->losses);
    if (!r->losses)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    build_params_text(r);
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    run_t r;
    memset(&r, 0, sizeof r);
    r.t_start = now();
    int rc = gen_opts_parse(argc, argv, &r.o);
    if (rc)
        return rc < 0 ? 0 : 1;
    if (cli_pick_device(r.o.device, &r.dev))
        return 1;
    if (r.o.threads)
        vqt_init(r.o.threads);
    if (!r.o.seed_given)
        r.o.seed = random_seed();
    if (!r.o.quiet)
        vqc_log(VQC_LOG_INFO, "seed %llu", (unsigned long long)r.o.seed);
    install_signals();
    rc = setup(&r);
    if (!rc)
        rc = optimise(&r);
    int status = cli_exit_status(rc);
    if (rc == VQC_ERR_INTERRUPTED)
        status = got_signal == SIGTERM ? 143 : 130;
    else if (rc)
        cli_print_error(NULL);
    summary(&r, rc == 0 ? "ok" : rc == VQC_ERR_INTERRUPTED ? "interrupted" : "failed");
    run_free(&r);
    return status;
}

/* The shaping losses (gen/losses.c) against hand computations of pixray's formulas, their
 * gradients against central finite differences (in float64), the learning-rate schedules, and
 * end-to-end runs on the tiny fixture models: each loss changes the picture, the moving average
 * and the stop window behave, and a resumed run equals an uninterrupted one byte for byte. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen/loop.h"
#include "io/tensor_map.h"
#include "testhelp.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* ---- small tensors and hand computations ------------------------------------------------ */

enum { N = 2, C = 3, S = 4, NUMEL = N * C * S * S };

/* x[n][c][y][x] in [0, 1], a fixed pseudo-random pattern. */
static void fill(double *x)
{
    unsigned s = 12345;
    for (int i = 0; i < NUMEL; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (double)((s >> 8) % 10000) / 9999.0;
    }
}

static double at(const double *x, int n, int c, int y, int xx)
{
    return x[((n * C + c) * S + y) * S + xx];
}

/* torch.gradient (edge order 1) of f[0..len) at i, step `stride`. */
static double grad1(const double *f, int len, int stride, int i)
{
    if (i == 0)
        return f[stride] - f[0];
    if (i == len - 1)
        return f[(len - 1) * stride] - f[(len - 2) * stride];
    return (f[(i + 1) * stride] - f[(i - 1) * stride]) / 2;
}

/* pixray's smoothness: per channel a [N*S, S] image (cutouts one above the other). */
static double hand_smoothness(const double *x, double w, vqc_smoothness_type type)
{
    double sum = 0, img[N * S * S];
    double acc[N * S * S] = {0};
    for (int c = 0; c < C; c++) {
        for (int n = 0; n < N; n++)
            for (int y = 0; y < S; y++)
                for (int xx = 0; xx < S; xx++)
                    img[(n * S + y) * S + xx] = at(x, n, c, y, xx);
        for (int r = 0; r < N * S; r++)
            for (int col = 0; col < S; col++) {
                double gy = grad1(img + col, N * S, S, r), gx = grad1(img + r * S, S, 1, col);
                acc[r * S + col] += gy * gy + gx * gx;
            }
    }
    for (int i = 0; i < N * S * S; i++) {
        double s = sqrt(acc[i]);
        sum += type == VQC_SMOOTHNESS_CLIPPED ? fmin(s, 0.5)
               : type == VQC_SMOOTHNESS_LOG   ? log(1 + s)
                                              : s;
    }
    return w * sum / (N * S * S);
}

static double hand_saturation(const double *x, double w)
{
    int n = N * S * S;
    double rg[N * S * S], yb[N * S * S], mrg = 0, myb = 0, vrg = 0, vyb = 0;
    for (int k = 0; k < N; k++)
        for (int i = 0; i < S * S; i++) {
            double r = at(x, k, 0, i / S, i % S), g = at(x, k, 1, i / S, i % S);
            double b = at(x, k, 2, i / S, i % S);
            rg[k * S * S + i] = r - g;
            yb[k * S * S + i] = 0.5 * (r + g) - b;
        }
    for (int i = 0; i < n; i++) {
        mrg += rg[i] / n;
        myb += yb[i] / n;
    }
    for (int i = 0; i < n; i++) {
        vrg += (rg[i] - mrg) * (rg[i] - mrg) / (n - 1);
        vyb += (yb[i] - myb) * (yb[i] - myb) / (n - 1);
    }
    double colourful = sqrt(vrg + vyb) + 0.3 * sqrt(mrg * mrg + myb * myb);
    return -colourful * w / 5.0;
}

/* On the first picture of x only ([1, 3, S, S]): mean squared difference with its mirror. */
static double hand_symmetry(const double *x, double w, int dim)
{
    double sum = 0;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                double m = dim == 3 ? at(x, 0, c, y, S - 1 - xx) : at(x, 0, c, S - 1 - y, xx);
                sum += (at(x, 0, c, y, xx) - m) * (at(x, 0, c, y, xx) - m);
            }
    return w * sum / (C * S * S);
}

static double hand_palette(const double *x, double w, const float pal[][3], int k)
{
    double sum = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < S * S; i++) {
            double best = INFINITY;
            for (int j = 0; j < k; j++) {
                double d = 0;
                for (int c = 0; c < C; c++) {
                    double e = at(x, n, c, i / S, i % S) - pal[j][c];
                    d += e * e;
                }
                best = fmin(best, sqrt(d));
            }
            sum += best;
        }
    return w / 10.0 * N * sum / (N * S * S);
}

/* ---- the library's losses on the same tensors ------------------------------------------- */

typedef enum { L_SMOOTH, L_SMOOTH_CLIP, L_SMOOTH_LOG, L_SAT, L_SYM_LR, L_SYM_UD, L_PAL } which;

static const float palette[3][3] = {{1, 0, 0}, {0, 0.5f, 1}, {0.2f, 0.9f, 0.1f}};

static vqt_tensor *library_loss(which k, const vqt_tensor *x, double w)
{
    switch (k) {
    case L_SMOOTH: return vqc_loss_smoothness(x, w, VQC_SMOOTHNESS_DEFAULT);
    case L_SMOOTH_CLIP: return vqc_loss_smoothness(x, w, VQC_SMOOTHNESS_CLIPPED);
    case L_SMOOTH_LOG: return vqc_loss_smoothness(x, w, VQC_SMOOTHNESS_LOG);
    case L_SAT: return vqc_loss_saturation(x, w);
    case L_PAL: return vqc_loss_palette(x, w, palette, 3);
    default: break;
    }
    vqt_tensor *first = vqt_narrow(x, 0, 0, 1),
               *l = vqc_loss_symmetry(first, w, k == L_SYM_LR ? 3 : 2);
    vqt_free(first);
    return l;
}

static double hand_loss(which k, const double *x, double w)
{
    switch (k) {
    case L_SMOOTH: return hand_smoothness(x, w, VQC_SMOOTHNESS_DEFAULT);
    case L_SMOOTH_CLIP: return hand_smoothness(x, w, VQC_SMOOTHNESS_CLIPPED);
    case L_SMOOTH_LOG: return hand_smoothness(x, w, VQC_SMOOTHNESS_LOG);
    case L_SAT: return hand_saturation(x, w);
    case L_SYM_LR: return hand_symmetry(x, w, 3);
    case L_SYM_UD: return hand_symmetry(x, w, 2);
    case L_PAL: return hand_palette(x, w, palette, 3);
    }
    return NAN;
}

static vqt_tensor *tensor_of(const double *x, vqc_dtype dt)
{
    int64_t shape[4] = {N, C, S, S};
    return vqt_from_data(x, VQC_DTYPE_F64, 4, shape, NULL, cpu, dt);
}

static double value_of(which k, const double *x, double w)
{
    vqt_scope_begin();
    vqt_tensor *t = tensor_of(x, VQC_DTYPE_F64);
    double v = vqt_item(library_loss(k, t, w));
    vqt_scope_end();
    return v;
}

/* Value (float32 and float64) against the hand computation; the float64 gradient against
 * central differences of the float64 value, element by element. */
static void check_loss(which k, const char *name, double w)
{
    double x[NUMEL], g[NUMEL];
    fill(x);
    if (k == L_SMOOTH_CLIP) /* flatter: magnitudes on both sides of the 0.5 clamp */
        for (int i = 0; i < NUMEL; i++)
            x[i] *= 0.6;
    double want = hand_loss(k, x, w);
    if (k == L_SMOOTH_CLIP) /* neither all clamped nor none */
        ASSERT(want < w * 0.5 && want < hand_smoothness(x, w, VQC_SMOOTHNESS_DEFAULT));
    vqt_scope_begin();
    vqt_tensor *x32 = tensor_of(x, VQC_DTYPE_F32);
    double v32 = vqt_item(library_loss(k, x32, w));
    vqt_tensor *x64 = tensor_of(x, VQC_DTYPE_F64);
    ASSERT_OK(vqt_set_requires_grad(x64, true));
    vqt_tensor *l = library_loss(k, x64, w);
    double v64 = vqt_item(l);
    ASSERT_OK(vqt_backward(l));
    ASSERT_EQ(vqt_to_host(vqt_grad(x64), g, VQC_DTYPE_F64, NUMEL), NUMEL);
    vqt_scope_end();
    ASSERT_NEAR(v64, want, 1e-12 * fmax(1, fabs(want)));
    ASSERT_NEAR(v32, want, 1e-5 * fmax(1, fabs(want)));
    double worst = 0, h = 1e-6;
    for (int i = 0; i < NUMEL; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double up = value_of(k, x, w);
        x[i] = keep - h;
        double down = value_of(k, x, w);
        x[i] = keep;
        double fd = (up - down) / (2 * h);
        worst = fmax(worst, fabs(fd - g[i]));
        ASSERT_NEAR(g[i], fd, 1e-6 * fmax(1, fabs(fd)));
    }
    fprintf(stderr, "  %-18s value %.9g (hand %.9g), max |grad - finite difference| %.2g\n", name,
            v64, want, worst);
}

static void test_losses(void)
{
    check_loss(L_SMOOTH, "smoothness", 0.7);
    check_loss(L_SMOOTH_CLIP, "smoothness clipped", 0.7);
    check_loss(L_SMOOTH_LOG, "smoothness log", 0.7);
    check_loss(L_SAT, "saturation", 2.0);
    check_loss(L_SYM_LR, "symmetry lr", 1.5);
    check_loss(L_SYM_UD, "symmetry ud", 1.5);
    check_loss(L_PAL, "palette", 3.0);

    /* The total adds the terms that are on; none gives a zero. */
    double x[NUMEL];
    fill(x);
    vqt_scope_begin();
    vqt_tensor *t = tensor_of(x, VQC_DTYPE_F64), *img = vqt_narrow(t, 0, 0, 1);
    vqc_shape_losses s;
    memset(&s, 0, sizeof s);
    ASSERT(!vqc_shape_losses_any(&s));
    ASSERT_NEAR(vqt_item(vqc_shape_losses_total(&s, img, t)), 0, 0);
    s.smoothness = 0.7;
    s.saturation = 2;
    s.symmetry_lr = 1.5;
    s.symmetry_ud = 1.5;
    s.palette_weight = 3;
    s.n_palette = 3;
    memcpy(s.palette, palette, sizeof palette);
    double want = hand_smoothness(x, 0.7, VQC_SMOOTHNESS_DEFAULT) + hand_saturation(x, 2) +
                  hand_symmetry(x, 1.5, 3) + hand_symmetry(x, 1.5, 2) +
                  hand_palette(x, 3, palette, 3);
    ASSERT_NEAR(vqt_item(vqc_shape_losses_total(&s, img, t)), want, 1e-12);
    vqt_scope_end();
    /* A uniform grey picture: every square root at 0 has a zero gradient, not NaN. */
    for (int i = 0; i < NUMEL; i++)
        x[i] = 0.5;
    vqt_scope_begin();
    t = tensor_of(x, VQC_DTYPE_F64);
    ASSERT_OK(vqt_set_requires_grad(t, true));
    s.n_palette = 1;
    s.palette[0][0] = s.palette[0][1] = s.palette[0][2] = 0.5f;
    ASSERT_OK(vqt_backward(vqc_shape_losses_total(&s, t, t)));
    double g[NUMEL];
    ASSERT_EQ(vqt_to_host(vqt_grad(t), g, VQC_DTYPE_F64, NUMEL), NUMEL);
    for (int i = 0; i < NUMEL; i++)
        ASSERT(isfinite(g[i]));
    vqt_scope_end();
}

static void test_palette_parse(void)
{
    float rgb[VQC_MAX_PALETTE][3];
    int n;
    ASSERT_OK(vqc_palette_parse("#ff0000, 00FF80 #0000ff", rgb, &n));
    ASSERT_EQ(n, 3);
    ASSERT_NEAR(rgb[0][0], 1, 0);
    ASSERT_NEAR(rgb[1][2], 128 / 255.0, 1e-7);
    ASSERT_NEAR(rgb[2][2], 1, 0);
    ASSERT_EQ(vqc_palette_parse("#ff000", rgb, &n), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "#ff000"));
    ASSERT_EQ(vqc_palette_parse("#gg0000", rgb, &n), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_palette_parse(" , ", rgb, &n), VQC_ERR_USAGE);
}

static void test_lr_schedules(void)
{
    vqc_loop_params p = vqc_loop_default_params();
    p.lr = 0.2;
    ASSERT_NEAR(vqc_loop_lr_at(&p, 1000), 0.2, 0);
    p.lr_schedule = VQC_LR_STEP;
    p.lr_step_every = 10;
    p.lr_step_factor = 0.5;
    ASSERT_NEAR(vqc_loop_lr_at(&p, 9), 0.2, 0);
    ASSERT_NEAR(vqc_loop_lr_at(&p, 10), 0.1, 0);
    ASSERT_NEAR(vqc_loop_lr_at(&p, 25), 0.05, 0);
    p.lr_schedule = VQC_LR_COSINE;
    p.lr_floor = 0.02;
    p.iterations = 101;
    ASSERT_NEAR(vqc_loop_lr_at(&p, 0), 0.2, 1e-15);
    ASSERT_NEAR(vqc_loop_lr_at(&p, 50), 0.11, 1e-15);
    ASSERT_NEAR(vqc_loop_lr_at(&p, 100), 0.02, 1e-15);
    ASSERT_NEAR(vqc_loop_lr_at(&p, 25), 0.02 + 0.18 * 0.5 * (1 + cos(M_PI / 4)), 1e-15);
}

/* ---- end to end on the fixture models ----------------------------------------------------- */

static vqc_context *ctx;
static char tmp[4096];

static vqc_generate_params run_params(const char *out)
{
    vqc_generate_params g = vqc_generate_default_params();
    g.prompts = "a red fox";
    g.width = g.height = 32;
    g.cutn = 4;
    g.iterations = 6;
    g.save_every = 0;
    g.seed = 7;
    g.output = out;
    return g;
}

static char *path(const char *name)
{
    static char buf[8][4200];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 4200, "%s/%s", tmp, name);
    return p;
}

static bool same_file(const char *a, const char *b)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static void test_pictures_change(void)
{
    const char *base = path("base.png");
    vqc_generate_params g = run_params(base);
    vqc_generate_result res0, res;
    ASSERT_OK(vqc_generate(ctx, &g, &res0));
    const char *names[] = {"smooth.png", "sat.png", "sym.png", "symud.png", "pal.png", "ema.png"};
    for (int k = 0; k < 6; k++) {
        g = run_params(path(names[k]));
        switch (k) {
        case 0: g.smoothness = 5; break;
        case 1: g.saturation = 5; break;
        case 2: g.symmetry = 50; break;
        case 3: g.symmetry_ud = 50; break;
        case 4: g.palette = "#ff0000,#0000ff"; break;
        default: g.ema = 0.9; break;
        }
        ASSERT_OK(vqc_generate(ctx, &g, &res));
        /* the memory planner counts what the losses keep (not the moving average's one z) */
        ASSERT(k == 5 ? res.planned_step_bytes == res0.planned_step_bytes
                      : res.planned_step_bytes > res0.planned_step_bytes);
        if (same_file(base, g.output))
            TEST_FAIL("%s: the option left the picture unchanged", names[k]);
    }
    g = run_params(path("bad.png"));
    g.palette = "#ff0000,#12";
    ASSERT_EQ(vqc_generate(ctx, &g, NULL), VQC_ERR_USAGE);
    g = run_params(path("bad.png"));
    g.ema = 1;
    ASSERT_EQ(vqc_generate_check(&g), VQC_ERR_USAGE);
}

static void test_stop_window(void)
{
    /* A positive prompt only, so the loss stays positive: improving by 100% of it is
     * impossible, and a one-step window stops the run at step 2. */
    vqc_generate_params g = run_params(path("stop.png"));
    g.stop_window = 1;
    g.stop_fraction = 1;
    vqc_generate_result res;
    ASSERT_OK(vqc_generate(ctx, &g, &res));
    ASSERT(res.plateaued);
    ASSERT_EQ(res.steps, 2);
    int step;
    ASSERT_OK(vqc_image_step(g.output, &step));
    ASSERT_EQ(step, 2);
    ASSERT(vqc_image_plateaued(g.output)); /* final, so --skip-existing skips it */
    g.stop_window = 0;
    ASSERT_OK(vqc_generate(ctx, &g, &res));
    ASSERT(!res.plateaued);
    ASSERT_EQ(res.steps, 6);
    ASSERT(!vqc_image_plateaued(g.output));
    ASSERT(!vqc_image_plateaued("/nonexistent.png"));
}

/* 4 steps with a state file, resumed to 8, against 8 in one go: the same bytes. */
static void test_resume(void)
{
    const char *state = path("state.safetensors");
    vqc_generate_params g = run_params(path("half.png"));
    g.prompts = "a red fox:1|blur:-0.3";
    g.smoothness = 1;
    g.saturation = 2;
    g.lr_schedule = VQC_LR_STEP;
    g.lr_step_every = 3;
    g.lr_step_factor = 0.7;
    g.stop_window = 2;
    g.stop_fraction = 0;
    g.ema = 0.8;
    g.iterations = 4;
    g.save_state = state;
    vqc_generate_result res;
    ASSERT_OK(vqc_generate(ctx, &g, &res));
    ASSERT(!res.plateaued);
    vqc_tensor_map *m;
    ASSERT_OK(vqc_tmap_open(state, &m));
    ASSERT(vqc_tmap_get(m, "ema") && vqc_tmap_meta(m, "ema_accum"));
    const vqc_tensor_info *h = vqc_tmap_get(m, "stop_history");
    ASSERT(h && h->ndim == 1 && h->shape[0] == 4);
    vqc_tmap_free(m);

    g.iterations = 8;
    g.save_state = NULL;
    g.resume = state;
    g.output = path("resumed.png");
    ASSERT_OK(vqc_generate(ctx, &g, &res));
    int resumed_steps = res.steps;
    bool resumed_stop = res.plateaued;
    g.resume = NULL;
    g.output = path("whole.png");
    ASSERT_OK(vqc_generate(ctx, &g, &res));
    ASSERT_EQ(resumed_steps, res.steps);
    ASSERT_EQ(resumed_stop, res.plateaued);
    if (!same_file(path("resumed.png"), g.output))
        TEST_FAIL("the resumed run's picture differs from the uninterrupted one's");
    fprintf(stderr, "  resume: %d steps%s, pictures identical\n", res.steps,
            res.plateaued ? " (stopped on a plateau)" : "");

    /* Other settings than the state's are refused, naming the line. */
    g.resume = state;
    g.ema = 0.5;
    ASSERT_EQ(vqc_generate(ctx, &g, NULL), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_last_error(), "ema="));
}

static double max_abs(const vqt_tensor *t)
{
    vqt_scope_begin();
    double v = vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, t), 0, NULL, false));
    vqt_scope_end();
    return v;
}

static double max_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_scope_begin();
    double v = max_abs(vqt_binary(VQT_SUB, a, b));
    vqt_scope_end();
    return v;
}

/* A step schedule with factor 0 from step 1 on: z moves once, then stays. */
static void test_schedule_in_loop(void)
{
    vqc_vqgan *vq;
    vqc_clip *clip;
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, cpu, &vq));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_vit.pt"), cpu, VQC_CLIP_FP32, &clip));
    vqc_loop_params p = vqc_loop_default_params();
    p.width = p.height = 32;
    p.cut.cutn = 2;
    p.lr_schedule = VQC_LR_STEP;
    p.lr_step_every = 1;
    p.lr_step_factor = 0;
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, vq, clip, &L));
    ASSERT_OK(vqc_loop_add_noise_prompt(L, 3, 1.0));
    ASSERT_OK(vqc_loop_init_random(L));
    vqt_tensor *z0 = vqt_clone(vqc_loop_z(L));
    ASSERT_OK(vqc_loop_step(L, NULL));
    vqt_tensor *z1 = vqt_clone(vqc_loop_z(L));
    ASSERT_OK(vqc_loop_step(L, NULL));
    ASSERT_OK(vqc_loop_step(L, NULL));
    ASSERT(max_diff(z0, z1) > 0);                   /* the first step moved z */
    ASSERT_NEAR(max_diff(z1, vqc_loop_z(L)), 0, 0); /* a rate of 0 after it */
    vqt_free(z0);
    vqt_free(z1);
    vqc_loop_free(L);
    vqc_clip_free(clip);
    vqc_vqgan_free(vq);
}

/* The stepped mode's epochs (every 2 steps, 2 of them, weight 1): a zero anchor at first; at
 * the notebook's i = 2 and 4 (0-based: the 3rd and 5th steps) the anchor moves to codebook
 * entries, the weight drops to 0.5 then 0, z restarts at the moving average and the optimiser
 * at step 0. */
static void test_stepped_in_loop(void)
{
    vqc_vqgan *vq;
    vqc_clip *clip;
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, cpu, &vq));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_vit.pt"), cpu, VQC_CLIP_FP32, &clip));
    vqc_loop_params p = vqc_loop_default_params();
    p.width = p.height = 32;
    p.cut.cutn = 2;
    p.init_weight = 1;
    p.mse_mode = VQC_MSE_STEPPED;
    p.mse_decay_every = 2;
    p.mse_epochs = 2;
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, vq, clip, &L));
    ASSERT_OK(vqc_loop_add_noise_prompt(L, 3, 1.0));
    ASSERT_OK(vqc_loop_init_random(L));
    const vqt_tensor *anchor, *ema;
    double w, accum;
    int rounds;
    vqc_loop_mse_state(L, &anchor, &w, &rounds);
    ASSERT_NEAR(max_abs(anchor), 0, 0);
    double weights[5] = {1, 1, 0.5, 0.5, 0};
    int64_t opt_steps[5] = {1, 2, 0, 1, 0};
    for (int i = 1; i <= 5; i++) {
        ASSERT_OK(vqc_loop_step(L, NULL));
        vqc_loop_mse_state(L, &anchor, &w, &rounds);
        vqc_loop_ema_state(L, &ema, &accum);
        ASSERT(ema);
        ASSERT_NEAR(w, weights[i - 1], 0);
        ASSERT_EQ(rounds, i >= 5 ? 2 : i >= 3 ? 1 : 0);
        ASSERT_EQ(vqc_optim_steps(vqc_loop_optimiser(L)), opt_steps[i - 1]);
        if (i == 3 || i == 5) {
            /* z is the average, which restarted at it; the anchor is on the codebook */
            vqt_tensor *avg = vqt_binary_s(VQT_DIV, ema, 1 - accum);
            ASSERT_NEAR(max_diff(avg, vqc_loop_z(L)), 0, 1e-6);
            ASSERT_NEAR(accum, 0.99, 1e-15);
            vqt_tensor *q = vqc_vqgan_nearest(vq, anchor, NULL);
            ASSERT_NEAR(max_diff(q, anchor), 0, 0);
            ASSERT(max_abs(anchor) > 0);
            vqt_free(q);
            vqt_free(avg);
        }
    }
    vqc_loop_free(L);
    vqc_clip_free(clip);
    vqc_vqgan_free(vq);
}

/* A stepped run resumed across an epoch's end equals an uninterrupted one. */
static void test_stepped_resume(void)
{
    const char *state = path("stepped.safetensors");
    vqc_generate_params g = run_params(path("st-half.png"));
    g.init_weight = 0.5;
    g.init_weight_mode = VQC_MSE_STEPPED;
    g.mse_decay_every = 2;
    g.mse_epochs = 3;
    g.iterations = 3;
    g.save_state = state;
    ASSERT_OK(vqc_generate(ctx, &g, NULL));
    g.iterations = 7;
    g.save_state = NULL;
    g.resume = state;
    g.output = path("st-resumed.png");
    ASSERT_OK(vqc_generate(ctx, &g, NULL));
    g.resume = NULL;
    g.output = path("st-whole.png");
    ASSERT_OK(vqc_generate(ctx, &g, NULL));
    if (!same_file(path("st-resumed.png"), g.output))
        TEST_FAIL("stepped mode: the resumed run's picture differs from the uninterrupted one's");
}

int main(void)
{
    vqt_init(1);
    test_palette_parse();
    test_losses();
    test_lr_schedules();
    vqc_context_params cp = vqc_context_default_params();
    cp.vqgan = fixture_path("vqgan/tiny_vq.ckpt");
    cp.clip = fixture_path("clip/tiny_vit.pt");
    cp.bpe = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz");
    cp.device = "cpu";
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("losses"));
    ASSERT_OK(vqc_init(&cp, &ctx));
    test_pictures_change();
    test_stop_window();
    test_resume();
    test_stepped_resume();
    vqc_free(ctx);
    test_schedule_in_loop();
    test_stepped_in_loop();
    fprintf(stderr, "test-losses: ok\n");
    return 0;
}

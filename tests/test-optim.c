/* The optimisers of z: names, parity with torch.optim, hand-derived DiffGrad and AdamP steps,
 * convergence, state export and import. */
#include <math.h>

#include "gen/optim.h"
#include "testhelp.h"
#include "torch/shim.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};
static const int64_t shape23[2] = {2, 3};

/* A float32 leaf on the CPU that requires grad. */
static vqt_tensor *leaf(const float *v, int ndim, const int64_t *shape)
{
    vqt_tensor *t = vqt_from_data(v, VQC_DTYPE_F32, ndim, shape, NULL, cpu, VQC_DTYPE_F32);
    ASSERT(t != NULL);
    ASSERT_OK(vqt_set_requires_grad(t, true));
    return t;
}

/* The test problem: p0[i] = 0.5 - 0.3 i, target[i] = 0.1 i^2 - 0.4, as 2x3 float32. */
static vqt_tensor *problem_p0(void)
{
    float v[6];
    for (int i = 0; i < 6; i++)
        v[i] = (float)(0.5 - 0.3 * i);
    return leaf(v, 2, shape23);
}

static vqt_tensor *problem_target(void)
{
    float v[6];
    for (int i = 0; i < 6; i++)
        v[i] = (float)(0.1 * i * i - 0.4);
    return vqt_from_data(v, VQC_DTYPE_F32, 2, shape23, NULL, cpu, VQC_DTYPE_F32);
}

/* sum((p - target)^2) by autograd: returns the loss and sets *grad (new handle); p's .grad is
 * cleared, as the loop does. */
static double loss_grad(vqt_tensor *p, const vqt_tensor *target, vqt_tensor **grad)
{
    vqt_scope_begin();
    vqt_tensor *loss =
        vqt_reduce(VQT_SUM, vqt_unary(VQT_SQUARE, vqt_binary(VQT_SUB, p, target)), 0, NULL, false);
    ASSERT(loss != NULL);
    ASSERT_OK(vqt_backward(loss));
    double l = vqt_item(loss);
    *grad = vqt_keep(vqt_grad(p));
    ASSERT(*grad != NULL);
    vqt_grad_clear(p);
    vqt_scope_end();
    return l;
}

/* Runs n steps on the test problem; returns the last loss computed before a step. */
static double run_steps(vqc_optim *opt, vqt_tensor *p, const vqt_tensor *target, int n)
{
    double l = NAN;
    for (int i = 0; i < n; i++) {
        vqt_scope_begin(); /* the loop may step inside its own scope */
        vqt_tensor *g;
        l = loss_grad(p, target, &g);
        ASSERT_OK(vqc_optim_step(opt, g));
        vqt_scope_end();
    }
    return l;
}

static void host6(const vqt_tensor *t, float *out)
{
    ASSERT_EQ(vqt_to_host(t, out, VQC_DTYPE_F32, 6), 6);
}

/* max |a - b| over all elements. */
static double max_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    vqt_scope_begin();
    double r = vqt_item(
        vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, a, b)), 0, NULL, false));
    vqt_scope_end();
    return r;
}

/* ---- names ----------------------------------------------------------------------------- */

static void test_parse(void)
{
    static const char *const names[] = {"Adam",  "AdamW",   "Adagrad",  "Adamax",
                                        "RAdam", "RMSprop", "DiffGrad", "AdamP"};
    static const char *const other_case[] = {"adam",  "ADAMW",   "adagrad",  "AdaMax",
                                             "radam", "RMSProp", "diffgrad", "ADAMP"};
    for (int k = 0; k < VQC_OPT_COUNT; k++) {
        vqc_optim_kind kind = VQC_OPT_COUNT;
        ASSERT_OK(vqc_optim_parse(names[k], &kind));
        ASSERT_EQ(kind, k);
        ASSERT_STR_EQ(vqc_optim_name(kind), names[k]);
        kind = VQC_OPT_COUNT;
        ASSERT_OK(vqc_optim_parse(other_case[k], &kind));
        ASSERT_EQ(kind, k);
    }
    vqc_optim_kind kind;
    const char *bad[] = {"SGD", "", "Adam ", "adamww", NULL};
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(vqc_optim_parse(bad[i], &kind), VQC_ERR_USAGE);
        const char *msg = vqc_error_get();
        for (int k = 0; k < VQC_OPT_COUNT; k++)
            if (!strstr(msg, names[k]))
                TEST_FAIL("message \"%s\" does not list %s", msg, names[k]);
    }
    ASSERT(strstr(vqc_error_get(), "(null)") != NULL);
    ASSERT_STR_EQ(vqc_optim_name((vqc_optim_kind)99), "unknown");
}

/* ---- parity with torch.optim ----------------------------------------------------------- */

/* Expected p (row-major) after `steps` steps on the test problem, produced with torch 1.13.0
 * (CPU, float32) by:
 *   p = torch.tensor([0.5 - 0.3 * i for i in range(6)], dtype=torch.float32).view(2, 3)
 *   p.requires_grad_()
 *   t = torch.tensor([0.1 * i * i - 0.4 for i in range(6)], dtype=torch.float32).view(2, 3)
 *   opt = torch.optim.<Name>([p], lr=<lr>)          # all other arguments default
 *   for _ in range(steps):
 *       opt.zero_grad(); (p - t).square().sum().backward(); opt.step()
 *   print(p.flatten().tolist())                     # formatted with %.9g */
static const struct {
    vqc_optim_kind kind;
    double lr;
    int steps;
    float p[6];
} torch_ref[] = {
    {VQC_OPT_ADAM,
     0.1,
     3,
     {0.201854303f, -0.0951287299f, 0.0744375661f, -0.101854309f, -0.400664985f, -0.700367093f}},
    {VQC_OPT_ADAM,
     0.1,
     8,
     {-0.256148875f, -0.456946015f, -0.0527856983f, 0.356148839f, 0.0867486149f, -0.206950516f}},
    {VQC_OPT_ADAMW,
     0.1,
     3,
     {0.200668216f, -0.0954150259f, 0.0743337795f, -0.10096509f, -0.398872435f, -0.697674155f}},
    {VQC_OPT_ADAGRAD,
     0.1,
     3,
     {0.281538039f, -0.00910082459f, 0.0f, -0.181538031f, -0.476056069f, -0.774266362f}},
    {VQC_OPT_ADAMAX,
     0.1,
     3,
     {0.217230976f, -0.0690902472f, 0.0598333403f, -0.117230982f, -0.408063859f, -0.704838872f}},
    {VQC_OPT_RMSPROP,
     0.01,
     3,
     {0.281064153f, -0.00956677273f, -2.2744584e-12f, -0.181064174f, -0.475583792f, -0.773795664f}},
    /* RAdam: steps 1-5 take the un-rectified branch (rho_t <= 5), 6-8 the rectified one. */
    {VQC_OPT_RADAM,
     0.01,
     3,
     {0.446573317f, 0.170318514f, -0.0940637067f, -0.346573323f, -0.587210357f, -0.815974772f}},
    {VQC_OPT_RADAM,
     0.01,
     8,
     {0.4109779f, 0.150114447f, -0.0892511457f, -0.310977876f, -0.513136685f, -0.69572717f}},
};

static void test_torch_parity(void)
{
    vqt_tensor *target = problem_target();
    for (size_t c = 0; c < sizeof torch_ref / sizeof torch_ref[0]; c++) {
        vqt_tensor *p = problem_p0();
        vqc_optim *opt;
        ASSERT_OK(vqc_optim_create(torch_ref[c].kind, torch_ref[c].lr, p, &opt));
        run_steps(opt, p, target, torch_ref[c].steps);
        ASSERT_EQ(vqc_optim_steps(opt), torch_ref[c].steps);
        float got[6];
        host6(p, got);
        double worst = 0;
        for (int i = 0; i < 6; i++) {
            ASSERT_NEAR(got[i], torch_ref[c].p[i], 2e-6);
            worst = fmax(worst, fabs(got[i] - torch_ref[c].p[i]));
        }
        fprintf(stderr, "  %-8s lr %-5g %d steps: max |diff| vs torch %.3g\n",
                vqc_optim_name(torch_ref[c].kind), torch_ref[c].lr, torch_ref[c].steps, worst);
        vqc_optim_free(opt);
        vqt_free(p);
    }
    vqt_free(target);
}

/* ---- DiffGrad and AdamP, from their formulas ------------------------------------------- */

/* DiffGrad on the scalar problem p^2 from p = 1, lr 0.1, recomputed here in double from the
 * torch-optimizer formulas: m, v as Adam; dfc = 1 / (1 + exp(-|prev - g|)); prev = g;
 * p -= lr * sqrt(bc2) / bc1 * m * dfc / (sqrt(v) + eps). Step 1 is p - lr * sigmoid(2) (up to
 * eps): 0.911920292. */
static void test_diffgrad_formula(void)
{
    const int64_t one = 1;
    const float p0 = 1.0f;
    vqt_tensor *p = leaf(&p0, 1, &one);
    vqt_tensor *zero = vqt_full(1, &one, 0.0, VQC_DTYPE_F32, cpu);
    vqc_optim *opt;
    ASSERT_OK(vqc_optim_create(VQC_OPT_DIFFGRAD, 0.1, p, &opt));
    double x = 1.0, m = 0, v = 0, prev = 0;
    for (int t = 1; t <= 2; t++) {
        double g = 2 * x;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        double dfc = 1.0 / (1.0 + exp(-fabs(prev - g)));
        prev = g;
        double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
        x -= 0.1 * sqrt(bc2) / bc1 * m * dfc / (sqrt(v) + 1e-8);
        run_steps(opt, p, zero, 1);
        float got;
        ASSERT_EQ(vqt_to_host(p, &got, VQC_DTYPE_F32, 1), 1);
        ASSERT_NEAR(got, x, 1e-6);
        if (t == 1)
            ASSERT_NEAR(got, 1.0 - 0.1 / (1.0 + exp(-2.0)), 1e-6);
    }
    vqc_optim_free(opt);
    vqt_free(zero);
    vqt_free(p);
}

/* A constant gradient: Adam moves by lr each step; DiffGrad's friction is sigmoid(|g|) on the
 * first step (previous_grad starts at 0) and 1/2 afterwards, so it moves by lr * sigmoid(|g|),
 * then lr / 2. */
static void test_diffgrad_friction(void)
{
    const int64_t three = 3;
    const float zeros[3] = {0, 0, 0}, gv[3] = {1.0f, -2.0f, 0.5f};
    vqt_tensor *g = vqt_from_data(gv, VQC_DTYPE_F32, 1, &three, NULL, cpu, VQC_DTYPE_F32);
    vqt_tensor *pa = leaf(zeros, 1, &three), *pd = leaf(zeros, 1, &three);
    vqc_optim *adam, *dg;
    ASSERT_OK(vqc_optim_create(VQC_OPT_ADAM, 0.1, pa, &adam));
    ASSERT_OK(vqc_optim_create(VQC_OPT_DIFFGRAD, 0.1, pd, &dg));
    for (int t = 0; t < 3; t++) {
        ASSERT_OK(vqc_optim_step(adam, g));
        ASSERT_OK(vqc_optim_step(dg, g));
    }
    ASSERT(vqt_set_grad_enabled(true)); /* the steps restored the setting */
    ASSERT(vqt_requires_grad(pa) && vqt_requires_grad(pd));
    float a[3], d[3];
    ASSERT_EQ(vqt_to_host(pa, a, VQC_DTYPE_F32, 3), 3);
    ASSERT_EQ(vqt_to_host(pd, d, VQC_DTYPE_F32, 3), 3);
    for (int i = 0; i < 3; i++) {
        double s = gv[i] > 0 ? 1.0 : -1.0;
        ASSERT_NEAR(a[i], -s * 0.3, 1e-6);
        ASSERT_NEAR(d[i], -s * (0.1 / (1.0 + exp(-fabs(gv[i]))) + 0.1), 1e-6);
    }
    vqc_optim_free(adam);
    vqc_optim_free(dg);
    vqt_free(pa);
    vqt_free(pd);
    vqt_free(g);
}

/* One AdamP step (lr 0.1) from p with gradient g, compared with `want`. On step 1 Adam's
 * direction is m / denom = 0.1 g / (|g| + eps) ~ 0.1 sign(g) and the step size lr / 0.1. */
static void adamp_case(const char *what, int ndim, const float *p0, const float *gv,
                       const float *want)
{
    const int64_t *shape = ndim == 2 ? shape23 : &shape23[1];
    int64_t n = ndim == 2 ? 6 : 3;
    vqt_tensor *p = leaf(p0, ndim, shape);
    vqt_tensor *g = vqt_from_data(gv, VQC_DTYPE_F32, ndim, shape, NULL, cpu, VQC_DTYPE_F32);
    vqc_optim *opt;
    ASSERT_OK(vqc_optim_create(VQC_OPT_ADAMP, 0.1, p, &opt));
    ASSERT_OK(vqc_optim_step(opt, g));
    float got[6];
    ASSERT_EQ(vqt_to_host(p, got, VQC_DTYPE_F32, n), n);
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-6)
            TEST_FAIL("AdamP %s: element %d is %.9g, expected %.9g", what, i, got[i], want[i]);
    vqc_optim_free(opt);
    vqt_free(g);
    vqt_free(p);
}

static void test_adamp_projection(void)
{
    /* Each row's gradient is nearly orthogonal to the row (|cos| = 0.05 / sqrt(1.0025) =
     * 0.0499 < 0.1 / sqrt(3)), the whole tensors less so (the same 0.0499 > 0.1 / sqrt(6)):
     * only the channel-wise projection applies; it removes perturb's radial part, 0.1 along
     * the unit row. Adam would give {0.9, -0.1, 0, -0.1, 0.9, 0}. */
    const float pc[6] = {1, 0, 0, 0, 1, 0}, gc[6] = {0.05f, 1, 0, 1, 0.05f, 0};
    adamp_case("channel", 2, pc, gc, (const float[6]){1, -0.1f, 0, -0.1f, 1, 0});
    /* Rows are not orthogonal (|cos| 0.71, 0.89) but the whole tensors nearly are (|cos| =
     * 0.05 / (|g| |p|) = 0.017 < 0.1 / sqrt(6)): the layer-wise projection removes
     * p * (p . perturb) / |p|^2 = p * 0.05 / 1.25 = 0.04 p from perturb. */
    const float pl[6] = {1, 0, 0, 0.5f, 0, 0}, gl[6] = {1, 1, 0, -1.9f, 1, 0};
    adamp_case("layer", 2, pl, gl, (const float[6]){0.94f, -0.1f, 0, 0.62f, -0.1f, 0});
    /* Gradient along the parameter: no projection, Adam's step. */
    adamp_case("aligned", 2, pc, pc, (const float[6]){0.9f, 0, 0, 0, 0.9f, 0});
    /* A 1-D parameter is never projected. */
    adamp_case("1-D", 1, pc, gc, (const float[3]){0.9f, -0.1f, 0});
}

/* ---- convergence ----------------------------------------------------------------------- */

static void test_converges(void)
{
    static const double lr[VQC_OPT_COUNT] = {
        [VQC_OPT_ADAM] = 0.1,     [VQC_OPT_ADAMW] = 0.1, [VQC_OPT_ADAGRAD] = 0.5,
        [VQC_OPT_ADAMAX] = 0.1,   [VQC_OPT_RADAM] = 0.1, [VQC_OPT_RMSPROP] = 0.05,
        [VQC_OPT_DIFFGRAD] = 0.1, [VQC_OPT_ADAMP] = 0.1,
    };
    vqt_tensor *target = problem_target();
    for (int k = 0; k < VQC_OPT_COUNT; k++) {
        vqt_tensor *p = problem_p0(), *g;
        vqc_optim *opt;
        ASSERT_OK(vqc_optim_create((vqc_optim_kind)k, lr[k], p, &opt));
        double first = run_steps(opt, p, target, 1);
        run_steps(opt, p, target, 49);
        double last = loss_grad(p, target, &g);
        fprintf(stderr, "  %-8s lr %-5g loss %.4g -> %.4g after 50 steps\n",
                vqc_optim_name((vqc_optim_kind)k), lr[k], first, last);
        if (!(last < 0.1 * first))
            TEST_FAIL("%s: loss %g -> %g", vqc_optim_name((vqc_optim_kind)k), first, last);
        vqt_free(g);
        vqc_optim_free(opt);
        vqt_free(p);
    }
    vqt_free(target);
}

/* ---- resuming -------------------------------------------------------------------------- */

/* A snapshot as a checkpoint would hold it: host copies of param and the state, and the step
 * counter. */
typedef struct {
    float param[6], state[3][6];
    int nstate;
    int64_t steps;
} snapshot;

static void save(const vqc_optim *opt, const vqt_tensor *p, snapshot *s)
{
    host6(p, s->param);
    s->nstate = vqc_optim_state_count(opt);
    for (int i = 0; i < s->nstate; i++)
        host6(vqc_optim_state_tensor(opt, i), s->state[i]);
    s->steps = vqc_optim_steps(opt);
}

/* A fresh optimiser over a fresh param, restored from s (the state only when with_state). */
static vqc_optim *restore(vqc_optim_kind kind, double lr, const snapshot *s, bool with_state,
                          vqt_tensor **p)
{
    vqc_optim *opt;
    *p = leaf(s->param, 2, shape23);
    ASSERT_OK(vqc_optim_create(kind, lr, *p, &opt));
    if (!with_state)
        return opt;
    for (int i = 0; i < s->nstate; i++) {
        vqt_tensor *t =
            vqt_from_data(s->state[i], VQC_DTYPE_F32, 2, shape23, NULL, cpu, VQC_DTYPE_F32);
        ASSERT_OK(vqc_optim_state_set(opt, vqc_optim_state_name(opt, i), t));
        vqt_free(t);
    }
    ASSERT_OK(vqc_optim_set_steps(opt, s->steps));
    return opt;
}

/* 5 steps, export, import into a fresh optimiser, 5 more on both: bit-identical. Restoring
 * param alone (a fresh state) gives a different trajectory. */
static void test_resume(void)
{
    vqt_tensor *target = problem_target();
    for (int k = 0; k < VQC_OPT_COUNT; k++) {
        vqc_optim_kind kind = (vqc_optim_kind)k;
        vqt_tensor *p = problem_p0(), *p2, *p3;
        vqc_optim *opt;
        ASSERT_OK(vqc_optim_create(kind, 0.05, p, &opt));
        run_steps(opt, p, target, 5);
        snapshot s;
        save(opt, p, &s);
        ASSERT_EQ(s.steps, 5);
        vqc_optim *opt2 = restore(kind, 0.05, &s, true, &p2);
        vqc_optim *opt3 = restore(kind, 0.05, &s, false, &p3);
        run_steps(opt, p, target, 5);
        run_steps(opt2, p2, target, 5);
        run_steps(opt3, p3, target, 5);
        if (max_diff(p, p2) != 0)
            TEST_FAIL("%s: resumed run differs by %g", vqc_optim_name(kind), max_diff(p, p2));
        for (int i = 0; i < s.nstate; i++)
            ASSERT(max_diff(vqc_optim_state_tensor(opt, i), vqc_optim_state_tensor(opt2, i)) == 0);
        ASSERT_EQ(vqc_optim_steps(opt2), 10);
        ASSERT(max_diff(p, p3) > 0);
        vqc_optim_free(opt);
        vqc_optim_free(opt2);
        vqc_optim_free(opt3);
        vqt_free(p);
        vqt_free(p2);
        vqt_free(p3);
    }
    vqt_free(target);
}

/* ---- state names and errors ------------------------------------------------------------ */

static void expect_state(vqc_optim_kind kind, int n, const char *a, const char *b, const char *c)
{
    vqt_tensor *p = problem_p0();
    vqc_optim *opt;
    ASSERT_OK(vqc_optim_create(kind, 0.1, p, &opt));
    ASSERT_EQ(vqc_optim_state_count(opt), n);
    const char *want[3] = {a, b, c};
    for (int i = 0; i < n; i++) {
        ASSERT_STR_EQ(vqc_optim_state_name(opt, i), want[i]);
        ASSERT(max_diff(vqc_optim_state_tensor(opt, i), p) > 0); /* zeros, not p */
    }
    ASSERT(vqc_optim_state_name(opt, n) == NULL && vqc_optim_state_tensor(opt, -1) == NULL);
    vqc_optim_free(opt);
    vqt_free(p);
}

static void test_state_names(void)
{
    expect_state(VQC_OPT_ADAM, 2, "exp_avg", "exp_avg_sq", NULL);
    expect_state(VQC_OPT_ADAMW, 2, "exp_avg", "exp_avg_sq", NULL);
    expect_state(VQC_OPT_ADAGRAD, 1, "sum", NULL, NULL);
    expect_state(VQC_OPT_ADAMAX, 2, "exp_avg", "exp_inf", NULL);
    expect_state(VQC_OPT_RADAM, 2, "exp_avg", "exp_avg_sq", NULL);
    expect_state(VQC_OPT_RMSPROP, 1, "square_avg", NULL, NULL);
    expect_state(VQC_OPT_DIFFGRAD, 3, "exp_avg", "exp_avg_sq", "previous_grad");
    expect_state(VQC_OPT_ADAMP, 2, "exp_avg", "exp_avg_sq", NULL);
}

static void test_errors(void)
{
    vqt_tensor *p = problem_p0();
    vqc_optim *opt = (vqc_optim *)&opt;
    ASSERT_EQ(vqc_optim_create(VQC_OPT_ADAM, NAN, p, &opt), VQC_ERR_USAGE);
    ASSERT(opt == NULL);
    ASSERT_EQ(vqc_optim_create(VQC_OPT_ADAM, -0.1, p, &opt), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_optim_create((vqc_optim_kind)42, 0.1, p, &opt), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_optim_create(VQC_OPT_ADAM, 0.1, NULL, &opt), VQC_ERR_USAGE);
    int64_t n = 3;
    vqt_tensor *ints = vqt_full(1, &n, 1.0, VQC_DTYPE_I64, cpu);
    ASSERT_EQ(vqc_optim_create(VQC_OPT_ADAM, 0.1, ints, &opt), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "floating") != NULL);

    ASSERT_OK(vqc_optim_create(VQC_OPT_DIFFGRAD, 0.1, p, &opt));
    float before[6], after[6];
    host6(p, before);
    vqt_tensor *wrong = vqt_full(1, &n, 1.0, VQC_DTYPE_F32, cpu);
    ASSERT_EQ(vqc_optim_step(opt, wrong), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_optim_step(opt, NULL), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_optim_steps(opt), 0);
    host6(p, after);
    ASSERT(memcmp(before, after, sizeof before) == 0);
    ASSERT_EQ(vqc_optim_state_set(opt, "exp_inf", p), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "exp_inf") != NULL);
    ASSERT_EQ(vqc_optim_state_set(opt, "exp_avg", wrong), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_optim_state_set(opt, NULL, p), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_optim_set_steps(opt, -1), VQC_ERR_USAGE);
    ASSERT_OK(vqc_optim_set_steps(opt, 7));
    ASSERT_EQ(vqc_optim_steps(opt), 7);
    ASSERT_EQ(vqc_optim_get_kind(opt), VQC_OPT_DIFFGRAD);
    ASSERT_NEAR(vqc_optim_get_lr(opt), 0.1, 0);
    vqc_optim_free(opt);
    vqc_optim_free(NULL);
    vqt_free(wrong);
    vqt_free(ints);
    vqt_free(p);
}

int main(void)
{
    ASSERT(vqt_init(0) >= 1);
    test_parse();
    test_torch_parity();
    test_diffgrad_formula();
    test_diffgrad_friction();
    test_adamp_projection();
    test_converges();
    test_resume();
    test_state_names();
    test_errors();
    fprintf(stderr, "test-optim: all passed\n");
    return 0;
}

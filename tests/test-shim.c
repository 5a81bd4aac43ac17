/* The libtorch shim: handles, scopes, errors and their kind (allocation failure or not, also
 * through a checkpointed segment and the bridge to vqc errors), libtorch's warnings as log lines,
 * autograd helpers, host copies, the step profile's stages and operator counts. */
#include <math.h>

#include "testhelp.h"
#include "testprofile.h"
#include "testref.h"
#include "torch/shim.h"
#include "util/error.h"
#include "util/torch_error.h"

/* The allocation failures below ask the CPU allocator for more than any machine has; under
 * AddressSanitizer malloc must return NULL for them as it does without, instead of aborting. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

static vqt_tensor *vec(const float *v, int64_t n)
{
    return vqt_from_data(v, VQC_DTYPE_F32, 1, &n, NULL, cpu, VQC_DTYPE_F32);
}

static void test_errors(void)
{
    int64_t a = 3, b = 4;
    vqt_tensor *x = vqt_full(1, &a, 1.0, VQC_DTYPE_F32, cpu);
    vqt_tensor *y = vqt_full(1, &b, 1.0, VQC_DTYPE_F32, cpu);
    ASSERT(vqt_binary(VQT_ADD, x, y) == NULL);
    const char *msg = vqt_last_error();
    ASSERT(strlen(msg) > 0 && strchr(msg, '\n') == NULL);
    /* NULL propagates without overwriting the first message. */
    char first[1024];
    snprintf(first, sizeof first, "%s", msg);
    ASSERT(vqt_unary(VQT_EXP, NULL) == NULL);
    ASSERT_STR_EQ(vqt_last_error(), first);
    vqt_device d;
    ASSERT(vqt_device_parse("tpu", &d) < 0);
    ASSERT_OK(vqt_device_parse("cpu", &d));
    ASSERT_EQ(d.type, VQT_DEVICE_CPU);
    if (vqt_cuda_device_count() == 0)
        ASSERT(vqt_device_parse("cuda:0", &d) < 0);
    vqt_free(x);
    vqt_free(y);
}

static int libtorch_warnings;
static char libtorch_warning[2048];

static void catch_warnings(vqc_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == VQC_LOG_WARN && !strncmp(text, "libtorch: ", 10)) {
        libtorch_warnings++;
        snprintf(libtorch_warning, sizeof libtorch_warning, "%s", text);
    }
}

/* A libtorch warning (TORCH_WARN: here reading the gradient of a tensor that is not a leaf)
 * reaches vqclip's log as one "libtorch: " line, once however often it is raised. */
static void test_warnings(void)
{
    vqc_log_set(catch_warnings, NULL, VQC_LOG_DEBUG);
    int64_t n = 3;
    vqt_tensor *x = vqt_full(1, &n, 1.0, VQC_DTYPE_F32, cpu);
    ASSERT_OK(vqt_set_requires_grad(x, true));
    vqt_tensor *y = vqt_binary_s(VQT_MUL, x, 2.0);
    for (int i = 0; i < 3; i++)
        ASSERT(vqt_grad(y) == NULL);
    ASSERT_EQ(libtorch_warnings, 1);
    ASSERT(strstr(libtorch_warning, "not a leaf") && !strchr(libtorch_warning, '\n'));
    vqc_log_set(NULL, NULL, VQC_LOG_INFO);
}

static int late_warnings;

static void catch_late(vqc_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == VQC_LOG_WARN && strstr(text, "CUBLAS_WORKSPACE_CONFIG=:4096:8") &&
        !strchr(text, '\n'))
        late_warnings++;
}

/* vqt_set_deterministic sets cuBLAS's workspace configuration for the process when the
 * environment has none, and a deterministic context after one that computed without it is
 * warned, once, that it comes too late for cuBLAS. */
static void test_deterministic_late(void)
{
    vqc_log_set(catch_late, NULL, VQC_LOG_DEBUG);
    unsetenv("CUBLAS_WORKSPACE_CONFIG");
    vqt_set_deterministic(true); /* the first context: in time */
    ASSERT_STR_EQ(getenv("CUBLAS_WORKSPACE_CONFIG"), ":4096:8");
    ASSERT_EQ(late_warnings, 0);
    unsetenv("CUBLAS_WORKSPACE_CONFIG"); /* as in a process whose first context was not */
    vqt_set_deterministic(false);
    ASSERT(getenv("CUBLAS_WORKSPACE_CONFIG") == NULL);
    vqt_set_deterministic(true);
    vqt_set_deterministic(true);
    ASSERT_EQ(late_warnings, 1);
    ASSERT_STR_EQ(getenv("CUBLAS_WORKSPACE_CONFIG"), ":4096:8");
    vqt_set_deterministic(false);
    vqc_log_set(NULL, NULL, VQC_LOG_INFO);
}

/* 2^46 float32 elements, 256 TiB: beyond any machine, and beyond a 47-bit address space. */
static const int64_t absurd = (int64_t)1 << 46;

/* A failure of another kind than an allocation failure (shapes that do not broadcast). */
static void fail_otherwise(void)
{
    int64_t a = 3, b = 4;
    vqt_tensor *x = vqt_full(1, &a, 1.0, VQC_DTYPE_F32, cpu);
    vqt_tensor *y = vqt_full(1, &b, 1.0, VQC_DTYPE_F32, cpu);
    ASSERT(vqt_binary(VQT_ADD, x, y) == NULL);
    vqt_free(x);
    vqt_free(y);
}

static void test_oom_kind(void)
{
    ASSERT(vqt_full(1, &absurd, 0.0, VQC_DTYPE_F32, cpu) == NULL);
    ASSERT(vqt_last_error_oom());
    ASSERT(strlen(vqt_last_error()) > 0 && strchr(vqt_last_error(), '\n') == NULL);
    /* A NULL handle passes the failure on, kind included. */
    ASSERT(vqt_unary(VQT_EXP, NULL) == NULL);
    ASSERT(vqt_last_error_oom());
    /* The next failure decides again: a bad op is not an allocation failure. */
    fail_otherwise();
    ASSERT(!vqt_last_error_oom());
    ASSERT(vqt_full(1, &absurd, 0.0, VQC_DTYPE_F32, cpu) == NULL);
    vqt_device d;
    ASSERT(vqt_device_parse("tpu", &d) < 0); /* the shim's own messages reset it too */
    ASSERT(!vqt_last_error_oom());

    /* The bridge: "<context>: <message>", VQC_ERR_NOMEM for an allocation failure. */
    ASSERT(vqt_full(1, &absurd, 0.0, VQC_DTYPE_F32, cpu) == NULL);
    char want[1200];
    snprintf(want, sizeof want, "big %d: %s", 7, vqt_last_error());
    ASSERT_EQ(vqc_torch_fail("big %d", 7), VQC_ERR_NOMEM);
    ASSERT_STR_EQ(vqc_error_get(), want);
    fail_otherwise();
    snprintf(want, sizeof want, "add: %s", vqt_last_error());
    ASSERT_EQ(vqc_torch_fail("add"), VQC_ERR_RUNTIME);
    ASSERT_STR_EQ(vqc_error_get(), want);
}

/* A checkpointed segment: exp(x) when the forward pass runs it; when the backward pass reruns
 * it, it fails as segment_mode says (1: an allocation failure, 2: a bad op). */
static int segment_calls, segment_mode;

static vqt_tensor *failing_rerun(void *arg, const vqt_tensor *x)
{
    (void)arg;
    if (segment_calls++ == 0)
        return vqt_unary(VQT_EXP, x);
    if (segment_mode == 1)
        return vqt_full(1, &absurd, 0.0, VQC_DTYPE_F32, cpu);
    int64_t n = 5;
    return vqt_binary(VQT_ADD, x, vqt_full(1, &n, 1.0, VQC_DTYPE_F32, cpu));
}

/* vqt_backward reports a rerun's failure with its message and its kind. */
static void checkpoint_fails(int mode)
{
    const float v[3] = {0.5f, 1.0f, 2.0f};
    vqt_tensor *x = vec(v, 3);
    vqt_set_requires_grad(x, true);
    segment_calls = 0;
    segment_mode = mode;
    vqt_tensor *y = vqt_checkpoint(failing_rerun, NULL, x);
    ASSERT(y != NULL);
    vqt_tensor *loss = vqt_reduce(VQT_SUM, y, 0, NULL, false);
    if (mode == 1)
        fail_otherwise(); /* so that only the rerun can make the kind an allocation failure */
    else
        ASSERT(vqt_full(1, &absurd, 0.0, VQC_DTYPE_F32, cpu) == NULL);
    ASSERT(vqt_backward(loss) != 0);
    ASSERT_EQ(segment_calls, 2);
    ASSERT(strlen(vqt_last_error()) > 0);
    ASSERT_EQ(vqt_last_error_oom(), mode == 1);
}

static void test_oom_in_checkpoint(void)
{
    checkpoint_fails(1);
    checkpoint_fails(2);
}

static void test_scopes(void)
{
    int64_t n = 2;
    vqt_scope_begin();
    vqt_tensor *a = vqt_full(1, &n, 2.0, VQC_DTYPE_F32, cpu);
    vqt_tensor *b = vqt_binary(VQT_MUL, a, a);
    vqt_free(a); /* freeing inside a scope stays valid */
    vqt_scope_begin();
    vqt_tensor *c = vqt_keep(vqt_affine(b, 1.0, 1.0));
    vqt_scope_end();
    vqt_tensor *kept = vqt_keep(c);
    vqt_scope_end();
    float out[2];
    ASSERT_EQ(vqt_to_host(kept, out, VQC_DTYPE_F32, 2), 2);
    ASSERT_NEAR(out[0], 5.0, 0);
    ASSERT_EQ(vqt_to_host(kept, out, VQC_DTYPE_F32, 1), -1); /* buffer too small */
    vqt_free(kept);
}

/* keep and persist inside nested scopes: no handle is freed twice or leaked (ASan checks). */
static void test_persist(void)
{
    int64_t n = 3;
    vqt_scope_begin();
    vqt_tensor *p = vqt_persist(vqt_full(1, &n, 1.0, VQC_DTYPE_F32, cpu));
    vqt_scope_begin();
    vqt_tensor *k = vqt_keep(vqt_affine(p, 2.0, 0.0));
    vqt_free(k); /* freed after keep, before the inner scope ends */
    vqt_tensor *q = vqt_persist(vqt_affine(p, 3.0, 0.0));
    vqt_scope_end();
    vqt_scope_end();
    vqt_tensor *sum = vqt_reduce(VQT_SUM, q, 0, NULL, false);
    ASSERT_NEAR(vqt_item(sum), 9, 0);
    vqt_free(sum);
    vqt_free(p);
    vqt_free(q);
}

static void test_clamp_with_grad(void)
{
    const float v[4] = {-0.5f, 0.5f, 1.5f, 2.0f};
    vqt_tensor *x = vec(v, 4);
    vqt_set_requires_grad(x, true);
    vqt_tensor *y = vqt_clamp_with_grad(x, 0.0, 1.0);
    /* loss = sum(y * w): w = +1 pushes up, -1 pushes down. */
    const float w[4] = {1, 1, 1, -1};
    vqt_tensor *wt = vec(w, 4);
    vqt_tensor *loss = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, wt), 0, NULL, false);
    ASSERT_OK(vqt_backward(loss));
    float g[4], yv[4];
    vqt_to_host(vqt_grad(x), g, VQC_DTYPE_F32, 4);
    vqt_to_host(y, yv, VQC_DTYPE_F32, 4);
    ASSERT_NEAR(yv[0], 0, 0);
    ASSERT_NEAR(yv[3], 1, 0);
    /* x=-0.5 with grad +1: descent moves x down, away from range -> blocked?  The rule keeps the
     * gradient where grad * (x - clamp(x)) >= 0: (-0.5 - 0) * 1 < 0 -> zero. */
    ASSERT_NEAR(g[0], 0, 0);
    ASSERT_NEAR(g[1], 1, 0);
    ASSERT_NEAR(g[2], 1, 0); /* (1.5 - 1) * 1 >= 0: passes (descent moves it back inside) */
    ASSERT_NEAR(g[3], 0, 0); /* (2 - 1) * -1 < 0: blocked */
}

static void test_replace_grad(void)
{
    const float a[3] = {1, 2, 3}, b[3] = {10, 20, 30};
    vqt_tensor *x = vec(a, 3), *f = vec(b, 3);
    vqt_set_requires_grad(x, true);
    vqt_tensor *y = vqt_replace_grad(f, x);
    float yv[3], g[3];
    vqt_to_host(y, yv, VQC_DTYPE_F32, 3);
    ASSERT_NEAR(yv[1], 20, 0);
    vqt_tensor *loss = vqt_reduce(VQT_SUM, vqt_binary_s(VQT_MUL, y, 3.0), 0, NULL, false);
    ASSERT_OK(vqt_backward(loss));
    vqt_to_host(vqt_grad(x), g, VQC_DTYPE_F32, 3);
    ASSERT_NEAR(g[2], 3, 0);
}

static void test_layouts(void)
{
    /* Strided host data (HWC presented as CHW). */
    const float hwc[2 * 2 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    int64_t shape[3] = {3, 2, 2}, strides[3] = {1, 6, 3};
    vqt_tensor *t = vqt_from_data(hwc, VQC_DTYPE_F32, 3, shape, strides, cpu, VQC_DTYPE_F32);
    float out[12];
    ASSERT_EQ(vqt_to_host(t, out, VQC_DTYPE_F32, 12), 12);
    ASSERT_NEAR(out[0], 0, 0);
    ASSERT_NEAR(out[1], 3, 0);
    ASSERT_NEAR(out[4], 1, 0);
    /* float16 round trip */
    uint16_t half[12];
    ASSERT_EQ(vqt_to_host(t, half, VQC_DTYPE_F16, 12), 12);
    vqt_tensor *h = vqt_from_data(half, VQC_DTYPE_F16, 3, shape, NULL, cpu, VQC_DTYPE_F32);
    ASSERT_NEAR(vqt_item(vqt_reduce(VQT_SUM, h, 0, NULL, false)), 66, 0);
    ASSERT_EQ(vqt_dtype(h), VQC_DTYPE_F32);
}

/* The profile counts the outermost operators of each stage, the backward pass's nodes
 * included, and only while it lives. */
static void test_profile_ops(void)
{
    const float a[3] = {1, 2, 3};
    vqt_tensor *x = vec(a, 3);
    vqt_set_requires_grad(x, true);
    vqt_profile *p = vqt_profile_new(cpu, 3);
    ASSERT(p != NULL);
    for (int step = 0; step < 2; step++) {
        ASSERT_OK(vqt_profile_begin(p));
        vqt_tensor *y = x;
        for (int i = 0; i < 3; i++) /* stage 0: three additions */
            y = vqt_binary(VQT_ADD, y, x);
        ASSERT_OK(vqt_profile_mark(p, 0));
        for (int i = 0; i < 5; i++) /* stage 1: five multiplications */
            y = vqt_binary_s(VQT_MUL, y, 2.0);
        ASSERT_OK(vqt_profile_mark(p, 1));
        vqt_tensor *loss = vqt_reduce(VQT_SUM, y, 0, NULL, false); /* stage 2: the rest */
        ASSERT_OK(vqt_backward(loss));
        ASSERT_OK(vqt_profile_mark(p, 2));
        ASSERT_OK(vqt_profile_end(p, step == 1)); /* the first step is not counted */
    }
    double dev, host;
    ASSERT_EQ(vqt_profile_get(p, 0, &dev, &host), 1);
    long long o0 = vqt_profile_ops(p, 0), o1 = vqt_profile_ops(p, 1), o2 = vqt_profile_ops(p, 2);
    fprintf(stderr, "profile operators: %lld, %lld, %lld\n", o0, o1, o2);
    ASSERT_EQ(o0, 3);
    ASSERT_EQ(o1, 5);
    /* the sum and, backward, at least one node per recorded operator (9) */
    ASSERT(o2 >= 10);
    ASSERT_EQ(vqt_profile_ops(p, 3), -1);
    vqt_profile_free(p);
}

/* The operator tables (vqt_profile_want_kernels): recorded from the end of the first counted
 * step, per recorded step, each operator's own time and calls; one recording profile at a
 * time, released when it is freed, even while it records. */
static void test_profile_kernels(void)
{
    const float a[4] = {1, 2, 3, 4};
    int64_t two[2] = {2, 2};
    vqt_tensor *m = vqt_from_data(a, VQC_DTYPE_F32, 2, two, NULL, cpu, VQC_DTYPE_F32);
    vqt_profile *p = vqt_profile_new(cpu, 1), *q = vqt_profile_new(cpu, 1);
    ASSERT(p && q);
    ASSERT_OK(vqt_profile_want_kernels(p));
    ASSERT_OK(vqt_profile_want_kernels(p));
    ASSERT_EQ(vqt_profile_want_kernels(q), -1);
    ASSERT(strstr(vqt_last_error(), "another profile") != NULL);
    for (int step = 0; step < 4; step++) {
        ASSERT_OK(vqt_profile_begin(p));
        vqt_tensor *y = vqt_matmul(m, m);
        for (int i = 0; i < 3; i++)
            y = vqt_binary(VQT_ADD, y, m);
        ASSERT_OK(vqt_profile_mark(p, 0));
        /* step 0 is a warm-up; the recording starts when step 1, the first counted, ends */
        ASSERT_OK(vqt_profile_end(p, step > 0));
    }
    char *text = NULL;
    ASSERT_EQ(vqt_profile_kernels(p, 50, &text), 2);
    ASSERT(text != NULL);
    fprintf(stderr, "%s", text);
    ASSERT(strstr(text, "device: no kernels recorded") != NULL); /* the CPU */
    ASSERT(strstr(text, "host: ") != NULL);
    ASSERT(strstr(text, "       3.0  aten::add\n") != NULL); /* three per step */
    ASSERT(strstr(text, "       1.0  aten::mm\n") != NULL ||
           strstr(text, "       1.0  aten::matmul\n") != NULL);
    free(text);
    text = (char *)1;
    ASSERT_EQ(vqt_profile_kernels(p, 50, &text), 0); /* over: nothing more */
    ASSERT(text == NULL);
    ASSERT_EQ(vqt_profile_want_kernels(q), -1); /* p still owns the recording */
    vqt_profile_free(p);
    /* freed while recording: the next profile records afresh */
    ASSERT_OK(vqt_profile_want_kernels(q));
    for (int step = 0; step < 2; step++) {
        ASSERT_OK(vqt_profile_begin(q));
        vqt_binary(VQT_ADD, m, m);
        ASSERT_OK(vqt_profile_end(q, true));
    }
    vqt_profile_free(q);
    vqt_profile *r = vqt_profile_new(cpu, 1);
    ASSERT_OK(vqt_profile_want_kernels(r));
    for (int step = 0; step < 3; step++) {
        ASSERT_OK(vqt_profile_begin(r));
        vqt_binary(VQT_MUL, m, m);
        ASSERT_OK(vqt_profile_end(r, true));
    }
    ASSERT_EQ(vqt_profile_kernels(r, 50, &text), 2);
    ASSERT(strstr(text, "       1.0  aten::mul\n") != NULL);
    ASSERT(strstr(text, "aten::add") == NULL); /* q's recording is not in it */
    free(text);
    vqt_profile_free(r);
}

/* On the CPU (vqt_init's counting allocator) the profile gives each stage the memory held at
 * its end and the highest within it, above the step's start, and keeps the run's peak across
 * the resets it makes at every mark. */
static void test_profile_memory(void)
{
#ifdef __GLIBC__
    const long long MiB = 1 << 20, slack = 64 << 10;
    int64_t one = MiB / 4, four = MiB, sixteen = 4 * MiB; /* floats */
    long long base = vqt_allocated_bytes(cpu);
    vqt_reset_peak(cpu);
    vqt_free(vqt_full(1, &sixteen, 0.0, VQC_DTYPE_F32, cpu)); /* before the profile: 16 MiB */
    vqt_profile *p = check_profile_memory(cpu, one, four);    /* 1 MiB kept, 4 MiB passing */
    /* the 16 MiB before the first mark survives the resets; the device's own peak does not */
    ASSERT(vqt_profile_peak_bytes(p) >= base + 16 * MiB - slack);
    ASSERT(vqt_peak_bytes(cpu) < base + 16 * MiB - slack);
    vqt_profile_free(p);
#endif
}

/* The deterministic input gradients (vqt_set_host_grad): on the CPU, VQT_HOSTGRAD_ALL sends
 * every wrapped operator through the CPU backward path that CUDA tensors take in deterministic
 * mode; values and gradients must be the plain operators' bit for bit. */
static vqt_tensor *hostgrad_op(int k, const vqt_tensor *x, const vqt_tensor *grid)
{
    int64_t pads[4] = {2, 1, 3, 0};
    switch (k) {
    case 0: return vqt_grid_sample(x, grid, VQT_GRID_ZEROS, true);
    case 1: return vqt_grid_sample(x, grid, VQT_GRID_REFLECTION, false);
    case 2: return vqt_adaptive_avg_pool2d(x, 5, 7);
    case 3: return vqt_adaptive_max_pool2d(x, 5, 7);
    case 4: return vqt_interpolate(x, 13, 9, VQT_INTERP_BILINEAR, false);
    case 5: return vqt_interpolate(x, 13, 9, VQT_INTERP_BICUBIC, true);
    case 6: return vqt_interpolate(x, 4, 3, VQT_INTERP_AREA, false);
    case 7: return vqt_pad(x, 4, pads, VQT_PAD_REFLECT, 0.0);
    default: return vqt_pad(x, 4, pads, VQT_PAD_REPLICATE, 0.0);
    }
}

static void test_host_grad(void)
{
    int64_t xs[4] = {2, 3, 6, 8}, gs[4] = {2, 5, 4, 2};
    vqt_manual_seed(5);
    vqt_tensor *x0 = vqt_randn(4, xs, cpu),
               *grid = vqt_binary_s(VQT_MUL, vqt_randn(4, gs, cpu), 0.7);
    for (int k = 0; k < 9; k++) {
        float val[2][1024], grad[2][2 * 3 * 6 * 8];
        int64_t n = 0;
        long long ops[2]; /* backward passes through the CPU path */
        for (int pass = 0; pass < 2; pass++) {
            vqt_set_host_grad(pass ? VQT_HOSTGRAD_ALL : VQT_HOSTGRAD_OFF);
            ASSERT_EQ(vqt_get_host_grad(), pass ? VQT_HOSTGRAD_ALL : VQT_HOSTGRAD_OFF);
            vqt_tensor *x = vqt_clone(x0);
            vqt_set_requires_grad(x, true);
            vqt_tensor *y = hostgrad_op(k, x, grid);
            ASSERT(y != NULL);
            n = vqt_numel(y);
            ASSERT(n <= 1024);
            ASSERT_EQ(vqt_to_host(y, val[pass], VQC_DTYPE_F32, n), n);
            /* a weighted sum, so that every output's gradient differs */
            vqt_manual_seed(11 + k); /* the same weights in both passes */
            int64_t ys[4];
            ASSERT_EQ(vqt_shape(y, ys), 4);
            vqt_tensor *w = vqt_randn(4, ys, cpu);
            vqt_tensor *loss = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, w), 0, NULL, false);
            long long before = vqt_host_grads_done();
            ASSERT_OK(vqt_backward(loss));
            ops[pass] = vqt_host_grads_done() - before;
            ASSERT_EQ(vqt_to_host(vqt_grad(x), grad[pass], VQC_DTYPE_F32, 2 * 3 * 6 * 8),
                      2 * 3 * 6 * 8);
        }
        ASSERT_EQ(ops[0], 0); /* the CPU path ran in the second pass only */
        ASSERT_EQ(ops[1], 1);
        ASSERT(memcmp(val[0], val[1], (size_t)n * sizeof(float)) == 0);
        ASSERT(memcmp(grad[0], grad[1], sizeof grad[0]) == 0);
    }
    vqt_set_host_grad(VQT_HOSTGRAD_OFF);
}

/* vqt_sdpa against the composed softmax(q k^T / sqrt(hd) + mask) v: values and the gradients
 * of q, k and v, with a causal -inf mask (Lq = Lk) and without one (Lq != Lk). */
static void test_sdpa(void)
{
    for (int masked = 0; masked < 2; masked++) {
        int64_t lq = masked ? 6 : 3, qs[4] = {2, 3, lq, 8}, ks[4] = {2, 3, 6, 8};
        vqt_manual_seed(31 + masked);
        vqt_tensor *in[3] = {vqt_randn(4, qs, cpu), vqt_randn(4, ks, cpu), vqt_randn(4, ks, cpu)};
        vqt_tensor *mask = NULL;
        if (masked)
            mask = vqt_triu(vqt_full(2, (int64_t[]){6, 6}, -INFINITY, VQC_DTYPE_F32, cpu), 1);
        vqt_tensor *out[2], *grad[2][3];
        for (int fused = 0; fused < 2; fused++) {
            vqt_tensor *x[3];
            for (int i = 0; i < 3; i++) {
                x[i] = vqt_clone(in[i]);
                ASSERT_OK(vqt_set_requires_grad(x[i], true));
            }
            vqt_tensor *o;
            if (fused) {
                o = vqt_sdpa(x[0], x[1], x[2], mask);
            } else {
                vqt_tensor *s = vqt_matmul(vqt_binary_s(VQT_MUL, x[0], 1.0 / sqrt(8.0)),
                                           vqt_transpose(x[1], 2, 3));
                if (mask)
                    s = vqt_binary(VQT_ADD, s, mask);
                o = vqt_matmul(vqt_softmax(s, -1), x[2]);
            }
            ASSERT(o != NULL);
            ASSERT_EQ(vqt_size(o, 2), lq);
            vqt_manual_seed(7); /* the same weights for both */
            vqt_tensor *w = vqt_randn(4, qs, cpu);
            ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, o, w), 0, NULL, false)));
            out[fused] = o;
            for (int i = 0; i < 3; i++)
                ASSERT((grad[fused][i] = vqt_grad(x[i])) != NULL);
        }
        fprintf(stderr, "sdpa %s, fused against composed:\n", masked ? "causal" : "unmasked");
        static const char *const names[3] = {"d/dq", "d/dk", "d/dv"};
        assert_close(out[1], out[0], "values", 1e-5, 0);
        for (int i = 0; i < 3; i++)
            assert_close(grad[1][i], grad[0][i], names[i], 1e-5, 0);
    }
}

/* A float32 tensor of small whole numbers (exact in any order of addition). */
static vqt_tensor *whole(int64_t n0, int64_t n1, int64_t n2, int64_t n3, int seed)
{
    int64_t shape[4] = {n0, n1, n2, n3}, n = n0 * n1 * n2 * n3;
    float *v = malloc(sizeof *v * (size_t)n);
    ASSERT(v != NULL);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)((i * seed) % 7 - 3);
    vqt_tensor *t = vqt_from_data(v, VQC_DTYPE_F32, 4, shape, NULL, cpu, VQC_DTYPE_F32);
    free(v);
    return t;
}

/* t with `pad` zero channels appended along dimension `dim`. */
static vqt_tensor *zero_padded(vqt_tensor *t, int dim, int64_t pad)
{
    int64_t s[4];
    ASSERT_EQ(vqt_shape(t, s), 4);
    s[dim] = pad;
    vqt_tensor *parts[2] = {t, vqt_binary_s(VQT_MUL, whole(s[0], s[1], s[2], s[3], 1), 0.0)};
    return vqt_cat(parts, 2, dim);
}

/* The input gradient of a convolution to 3 channels from 128 (the VQGAN decoder's last) equals the
 * one through the same weights padded with zero output channels to 16 (a whole block of oneDNN's
 * AVX-512 kernels), exactly, on whole numbers. Debian 13's libtorch 2.6 on AVX-512 CPUs got the
 * first wrong until vqt_cpu_conv_check (first called here) turned its oneDNN convolutions off. */
static void test_cpu_conv_check(void)
{
    const char *why = "unset";
    int rc = vqt_cpu_conv_check(&why);
    fprintf(stderr, "CPU convolutions: %s%s\n",
            rc == 0  ? "right"
            : rc > 0 ? "wrong with oneDNN, which is now off: "
                     : "wrong: ",
            why ? why : "");
    ASSERT(rc >= 0 && (rc == 0) == (why == NULL));
    vqt_scope_begin();
    vqt_tensor *w = whole(3, 128, 3, 3, 3), *g = whole(1, 3, 12, 12, 2), *gx[2];
    for (int k = 0; k < 2; k++) {
        vqt_tensor *x = whole(1, 128, 12, 12, 5);
        ASSERT_OK(vqt_set_requires_grad(x, true));
        vqt_tensor *y = vqt_conv2d(x, k ? zero_padded(w, 0, 13) : w, NULL, 1, 1, 1, 1, 1);
        vqt_tensor *gy = k ? zero_padded(g, 1, 13) : g;
        ASSERT_OK(vqt_backward(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, gy), 0, NULL, false)));
        gx[k] = vqt_grad(x);
    }
    double d = max_abs_diff(gx[0], gx[1]);
    fprintf(stderr, "  3 channels against 16: max |diff| %g\n", d);
    ASSERT(d == 0);
    vqt_scope_end();
}

int main(void)
{
    int n = vqt_init(0);
    ASSERT(n >= 1);
    fprintf(stderr, "libtorch %s, %d threads\n", vqt_version(), n);
    vqt_scope_begin();
    test_errors();
    test_warnings();
    test_deterministic_late();
    vqt_scope_end();
    test_scopes();
    test_persist();
    vqt_scope_begin();
    test_clamp_with_grad();
    test_replace_grad();
    test_layouts();
    test_profile_ops();
    test_profile_memory();
    test_profile_kernels();
    test_oom_kind();
    test_oom_in_checkpoint();
    test_host_grad();
    test_sdpa();
    test_cpu_conv_check();
    vqt_scope_end();
    fprintf(stderr, "test-shim: ok\n");
    return 0;
}

/* Recorded functions (vqt_graphed, src/torch/shim_graph.cpp): in the EMULATE mode the static
 * buffers, the autograd node and the rules for when a call replays run on the CPU, and must give
 * the plain call's value and input gradient bit for bit; the rules send every call that cannot
 * replay safely to the plain path. On a CPU-only build AUTO never records, and says why. */
#include <math.h>
#include <string.h>

#include "testhelp.h"
#include "torch/shim.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};
static int body_calls, body_fails;
static vqt_tensor *weights; /* M [4, 3], made before any recording, as a model's are */

/* What body also does inside (test_host_calls): nothing, or a call that a CUDA graph cannot
 * record. */
static enum { CLEAN, FROM_DATA, ITEM, TO_HOST, FIRST_ONLY } body_extra;
static int extra_calls; /* the body's calls since body_extra was set */

static void make_weights(void)
{
    float mv[12];
    for (int i = 0; i < 12; i++)
        mv[i] = (float)(i % 5) * 0.25f - 0.5f;
    int64_t ms[2] = {4, 3};
    weights = vqt_persist(vqt_from_data(mv, VQC_DTYPE_F32, 2, ms, NULL, cpu, VQC_DTYPE_F32));
}

/* tanh(x * 1.5) @ M: deterministic. */
static vqt_tensor *body(void *arg, const vqt_tensor *x)
{
    (void)arg;
    body_calls++;
    if (body_fails)
        return vqt_full(1, (int64_t[]){-1}, 0.0, VQC_DTYPE_F32, cpu); /* fails: bad shape */
    vqt_tensor *y = vqt_matmul(vqt_unary(VQT_TANH, vqt_binary_s(VQT_MUL, x, 1.5)), weights);
    float one = 1.0f, back[8];
    switch (body_extra) {
    case CLEAN: break;
    case FROM_DATA: /* a constant made from host memory on every call */
        y = vqt_binary(VQT_MUL, y,
                       vqt_from_data(&one, VQC_DTYPE_F32, 0, NULL, NULL, cpu, VQC_DTYPE_F32));
        break;
    case ITEM: /* a value read back, as a data-dependent branch would */
        ASSERT(isfinite(vqt_item(vqt_reduce(VQT_SUM, y, 0, NULL, false))));
        break;
    case TO_HOST: ASSERT(vqt_to_host(x, back, VQC_DTYPE_F32, 8) > 0); break;
    case FIRST_ONLY: /* a one-time check at the first call, as the decoder's attention's */
        if (extra_calls == 0)
            ASSERT(isfinite(vqt_item(vqt_reduce(VQT_SUM, y, 0, NULL, false))));
        break;
    }
    extra_calls++;
    return y;
}

static vqt_tensor *input(int rows, float shift)
{
    float v[32];
    for (int i = 0; i < rows * 4; i++)
        v[i] = (float)((i * 7) % 11) * 0.2f - 1.0f + shift;
    int64_t s[2] = {rows, 4};
    vqt_tensor *x = vqt_from_data(v, VQC_DTYPE_F32, 2, s, NULL, cpu, VQC_DTYPE_F32);
    vqt_set_requires_grad(x, true);
    return x;
}

/* sum(y * y): a gradient that depends on the value. */
static vqt_tensor *loss_of(const vqt_tensor *y)
{
    return vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, y, y), 0, NULL, false);
}

static void assert_same(const vqt_tensor *a, const vqt_tensor *b, int64_t n)
{
    float va[32], vb[32];
    ASSERT(n <= 32);
    ASSERT_EQ(vqt_to_host(a, va, VQC_DTYPE_F32, n), n);
    ASSERT_EQ(vqt_to_host(b, vb, VQC_DTYPE_F32, n), n);
    ASSERT(memcmp(va, vb, (size_t)n * sizeof *va) == 0);
}

/* The plain call's value and gradient of x. */
static void reference(const vqt_tensor *x, vqt_tensor **y, vqt_tensor **g)
{
    vqt_tensor *xr = vqt_detach(x);
    vqt_set_requires_grad(xr, true);
    *y = body(NULL, xr);
    ASSERT_OK(vqt_backward(loss_of(*y)));
    *g = vqt_grad(xr);
}

static void counts(const vqt_graphed *g, long long replays, long long eager)
{
    long long r, e;
    vqt_graphed_counts(g, &r, &e);
    ASSERT_EQ(r, replays);
    ASSERT_EQ(e, eager);
}

/* g's call on x (2 rows) and its gradient give the plain ones, yr and gr, bit for bit. */
static void call_matches(vqt_graphed *g, const vqt_tensor *x, const vqt_tensor *yr,
                         const vqt_tensor *gr)
{
    vqt_tensor *y = vqt_graphed_call(g, x);
    ASSERT(y != NULL);
    assert_same(y, yr, 6);
    ASSERT_OK(vqt_backward(loss_of(y)));
    assert_same(vqt_grad(x), gr, 8);
}

static void test_replays_match(void)
{
    vqt_set_graphs_mode(VQT_GRAPHS_EMULATE);
    vqt_graphed *g = vqt_graphed_new(body, NULL);
    ASSERT(g != NULL);
    for (int round = 0; round < 3; round++) { /* the same buffers, new values each time */
        vqt_tensor *x = input(2, 0.3f * (float)round), *yr, *gr;
        reference(x, &yr, &gr);
        call_matches(g, x, yr, gr);
    }
    counts(g, 3, 0);
    ASSERT(vqt_graphed_why(g) == NULL);
    vqt_graphed_free(g);
}

/* A second call while the first one's backward pass is still to come runs plainly (a replay
 * would overwrite what the first one saved), and both gradients are right; once the first
 * result is gone, calls replay again. */
static void test_pending_and_shapes(void)
{
    vqt_set_graphs_mode(VQT_GRAPHS_EMULATE);
    vqt_graphed *g = vqt_graphed_new(body, NULL);
    vqt_tensor *x1 = input(2, 0.0f), *x2 = input(2, 0.5f), *y1r, *g1r, *y2r, *g2r;
    reference(x1, &y1r, &g1r);
    reference(x2, &y2r, &g2r);
    vqt_tensor *y1 = vqt_graphed_call(g, x1), *y2 = vqt_graphed_call(g, x2);
    counts(g, 1, 1);
    ASSERT_OK(vqt_backward(loss_of(y2)));
    ASSERT_OK(vqt_backward(loss_of(y1)));
    assert_same(vqt_grad(x1), g1r, 8);
    assert_same(vqt_grad(x2), g2r, 8);

    vqt_tensor *x3 = input(2, 0.1f);
    vqt_tensor *y3 = vqt_graphed_call(g, x3); /* y1's backward ran: replays */
    counts(g, 2, 1);
    vqt_free(y3); /* no backward pass, but nothing can want one now */
    vqt_tensor *y4 = vqt_graphed_call(g, x3);
    counts(g, 3, 1);
    vqt_free(y4);

    vqt_tensor *x5 = input(3, 0.0f), *y5r, *g5r; /* another shape: plain */
    reference(x5, &y5r, &g5r);
    vqt_tensor *y5 = vqt_graphed_call(g, x5);
    counts(g, 3, 2);
    assert_same(y5, y5r, 9);

    bool was = vqt_set_grad_enabled(false); /* no gradient wanted: plain */
    vqt_tensor *y6 = vqt_graphed_call(g, x1);
    vqt_set_grad_enabled(was);
    assert_same(y6, y1r, 6);
    counts(g, 3, 3);
    vqt_graphed_free(g);
}

/* AUTO on the CPU and OFF run plainly; AUTO says why, OFF has nothing to say. */
static void test_modes(void)
{
    ASSERT(!vqt_cuda_graphs_built() || vqt_cuda_graphs_built()); /* either build runs this */
    for (int mode = VQT_GRAPHS_AUTO; mode <= VQT_GRAPHS_OFF; mode++) {
        vqt_set_graphs_mode((vqt_graphs_mode)mode);
        ASSERT_EQ(vqt_get_graphs_mode(), (vqt_graphs_mode)mode);
        vqt_graphed *g = vqt_graphed_new(body, NULL);
        vqt_tensor *x = input(2, 0.0f), *yr, *gr;
        reference(x, &yr, &gr);
        vqt_tensor *y = vqt_graphed_call(g, x);
        assert_same(y, yr, 6);
        ASSERT_OK(vqt_backward(loss_of(y)));
        assert_same(vqt_grad(x), gr, 8);
        counts(g, 0, 1);
        const char *why = vqt_graphed_why(g);
        if (mode == VQT_GRAPHS_AUTO)
            ASSERT(why && strstr(why, "not on a CUDA device"));
        else
            ASSERT(why == NULL);
        vqt_graphed_free(g);
    }
}

/* A function that copies host data in, reads a value back or copies out cannot be recorded:
 * a replay would copy from the host buffer as it is then, or capture fails at the wait. The
 * emulation finds it as a device would, before any device call: the recording fails, saying
 * which call, and every call runs plainly with the plain values. The first, eager pass may do
 * so once (set-up), as on a device. */
static void test_host_calls(void)
{
    vqt_set_graphs_mode(VQT_GRAPHS_EMULATE);
    static const struct {
        int kind;
        const char *why;
    } cases[] = {
        {FROM_DATA, "vqt_from_data"}, {ITEM, "aten::item, which waits"}, {TO_HOST, "vqt_to_host"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        body_extra = CLEAN;
        vqt_tensor *x = input(2, 0.2f), *yr, *gr;
        reference(x, &yr, &gr);
        body_extra = cases[i].kind;
        vqt_graphed *g = vqt_graphed_new(body, NULL);
        for (int call = 0; call < 2; call++)
            call_matches(g, input(2, 0.2f), yr, gr);
        counts(g, 0, 2);
        const char *why = vqt_graphed_why(g);
        fprintf(stderr, "host call %s: %s\n", cases[i].why, why ? why : "(none)");
        ASSERT(why && strstr(why, cases[i].why) && strstr(why, "cannot record"));
        vqt_graphed_free(g);
    }
    /* once, at the first (eager) pass, is set-up, as on a device */
    body_extra = FIRST_ONLY;
    extra_calls = 0;
    vqt_graphed *once = vqt_graphed_new(body, NULL);
    for (int call = 0; call < 2; call++) {
        vqt_tensor *xc = input(2, 0.2f);
        ASSERT_OK(vqt_backward(loss_of(vqt_graphed_call(once, xc))));
    }
    counts(once, 2, 0);
    ASSERT(vqt_graphed_why(once) == NULL);
    vqt_graphed_free(once);
    body_extra = CLEAN;
    /* outside a recorded function's pass the same calls are the caller's business */
    vqt_tensor *x = input(2, 0.2f);
    ASSERT(vqt_to_host(x, (float[8]){0}, VQC_DTYPE_F32, 8) == 8);
    vqt_graphed *g = vqt_graphed_new(body, NULL);
    vqt_tensor *y = vqt_graphed_call(g, x);
    ASSERT_OK(vqt_backward(loss_of(y)));
    counts(g, 1, 0);
    vqt_graphed_free(g);
}

/* The function's failure is the call's, with its message, when recording and after. */
static void test_failures(void)
{
    vqt_set_graphs_mode(VQT_GRAPHS_EMULATE);
    vqt_graphed *g = vqt_graphed_new(body, NULL);
    body_fails = 1;
    body_calls = 0;
    vqt_tensor *x = input(2, 0.0f);
    ASSERT(vqt_graphed_call(g, x) == NULL);
    ASSERT(strlen(vqt_last_error()) > 0);
    ASSERT(body_calls == 2); /* the recording's pass, then the plain one */
    ASSERT(vqt_graphed_why(g) != NULL);
    body_fails = 0;
    ASSERT(vqt_graphed_call(g, x) != NULL); /* runs plainly from now on */
    counts(g, 0, 2);
    vqt_graphed_free(g);
    ASSERT(vqt_graphed_call(NULL, x) == NULL);
    ASSERT(vqt_graphed_new(NULL, NULL) == NULL);
    vqt_graphed_free(NULL);
}

int main(void)
{
    vqt_init(0);
    make_weights();
    vqt_scope_begin();
    test_replays_match();
    test_pending_and_shapes();
    test_modes();
    test_failures();
    test_host_calls();
    vqt_scope_end();
    vqt_set_graphs_mode(VQT_GRAPHS_AUTO);
    fprintf(stderr, "test-graph: ok\n");
    return 0;
}

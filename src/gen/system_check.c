/* vqc_system_check: whether libtorch computes correctly on this machine's CPU, and how fast;
 * vqc_cuda_device_check: the same question for one CUDA device, in the element types its
 * default precision computes in. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "torch/shim.h"
#include "gen/cpu_share.h"
#include "gen/gen_internal.h"
#include "gen/tools.h"
#include "util/compute_lock.h"
#include "util/clock.h"
#include "util/error.h"

/* Checks a result read back from a device against the C one: within tol * (1 + |want|), 0 for
 * exactly. Returns 0, or -1 with the first difference. */
static int same_values(const float *got, const double *want, int n, double tol, const char *type,
                       const char *what, char *msg, size_t len)
{
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])))) {
            snprintf(msg, len, "%s: %s is wrong at element %d: %g, not %g", type, what, i, got[i],
                     want[i]);
            return -1;
        }
    return 0;
}

static const char *type_name(vqc_dtype dt)
{
    return dt == VQC_DTYPE_BF16 ? "bfloat16" : dt == VQC_DTYPE_F16 ? "float16" : "float32";
}

/* On dev in element type dt: a 64x64 product of small whole numbers, doubled by an elementwise
 * kernel of libtorch's own first (a libtorch built without a GPU's architecture fails there:
 * cuBLAS and cuDNN bring kernels for every architecture, libtorch's kernels only those it was
 * built for), read back and compared with the C result within tol (same_values). Entries in
 * -1..1 and -2..2 keep every sum within 256, which bfloat16 holds exactly. The CPU's check
 * (vqc_system_check: a broken libtorch or BLAS fails here) and each CUDA device's use it.
 * Returns 0, or -1 with the reason, the type named first, in msg. The buffers are static: the
 * library's callers hold the compute lock (the tests call it from one thread). */
static int product_check(vqt_device dev, vqc_dtype dt, double tol, char *msg, size_t len)
{
    enum { N = 64 };
    static float a[N * N], b[N * N], got[N * N];
    static double want[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i * N + j] = (float)((i * 7 + j * 3) % 3 - 1);
            b[i * N + j] = (float)((i * 5 + j) % 5 - 2);
        }
    int64_t shape[2] = {N, N};
    vqt_scope_begin();
    vqt_tensor *ta = vqt_from_data(a, VQC_DTYPE_F32, 2, shape, NULL, dev, dt);
    vqt_tensor *tb = vqt_from_data(b, VQC_DTYPE_F32, 2, shape, NULL, dev, dt);
    vqt_tensor *t2 = ta ? vqt_affine(ta, 2.0, 0.0) : NULL;
    vqt_tensor *tc = t2 && tb ? vqt_matmul(t2, tb) : NULL;
    int64_t n = tc ? vqt_to_host(tc, got, VQC_DTYPE_F32, N * N) : -1;
    vqt_scope_end();
    if (n != N * N) {
        snprintf(msg, len, "%s: a 64x64 matrix product failed: %s", type_name(dt),
                 vqt_last_error());
        return -1;
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            want[i * N + j] = 0;
            for (int k = 0; k < N; k++)
                want[i * N + j] += 2.0 * a[i * N + k] * b[k * N + j];
        }
    return same_values(got, want, N * N, tol, type_name(dt), "a 64x64 matrix product", msg, len);
}

/* On dev in element type dt: a 3x3 convolution with padding 1 (cuDNN's on a GPU, as the
 * decoder's) of entries in -1..1, read back and compared with the C result within tol. */
static int conv_check(vqt_device dev, vqc_dtype dt, double tol, char *msg, size_t len)
{
    enum { C = 4, S = 8 };
    static float x[C * S * S], w[C * C * 9], got[C * S * S];
    static double want[C * S * S];
    for (int i = 0; i < C * S * S; i++)
        x[i] = (float)(i * 7 % 3 - 1);
    for (int i = 0; i < C * C * 9; i++)
        w[i] = (float)(i * 5 % 3 - 1);
    int64_t xs[4] = {1, C, S, S}, ws[4] = {C, C, 3, 3};
    vqt_scope_begin();
    vqt_tensor *tx = vqt_from_data(x, VQC_DTYPE_F32, 4, xs, NULL, dev, dt);
    vqt_tensor *tw = vqt_from_data(w, VQC_DTYPE_F32, 4, ws, NULL, dev, dt);
    vqt_tensor *ty = tx && tw ? vqt_conv2d(tx, tw, NULL, 1, 1, 1, 1, 1) : NULL;
    int64_t n = ty ? vqt_to_host(ty, got, VQC_DTYPE_F32, C * S * S) : -1;
    vqt_scope_end();
    if (n != C * S * S) {
        snprintf(msg, len, "%s: a 3x3 convolution failed: %s", type_name(dt), vqt_last_error());
        return -1;
    }
    for (int o = 0; o < C; o++)
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                double sum = 0;
                for (int i = 0; i < C; i++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, xi = xx + kx - 1;
                            if (yy >= 0 && yy < S && xi >= 0 && xi < S)
                                sum += (double)x[(i * S + yy) * S + xi] *
                                       w[((o * C + i) * 3 + ky) * 3 + kx];
                        }
                want[(o * S + y) * S + xx] = sum;
            }
    return same_values(got, want, C * S * S, tol, type_name(dt), "a 3x3 convolution", msg, len);
}

/* GFLOP/s of n x n float32 products on the CPU: one warm-up, then repeats for at least
 * 0.3 s (at most 20). Returns a negative value when libtorch fails. */
static double matmul_gflops(int n)
{
    int64_t shape[2] = {n, n};
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    double result = -1;
    vqt_scope_begin();
    vqt_tensor *a = vqt_randn(2, shape, cpu), *b = vqt_randn(2, shape, cpu);
    vqt_tensor *c = a && b ? vqt_matmul(a, b) : NULL;
    if (c) {
        vqt_free(c);
        int reps = 0;
        double t0 = vqc_now(), t = 0;
        while ((t < 0.3 && reps < 20) || reps == 0) {
            c = vqt_matmul(a, b);
            if (!c)
                break;
            vqt_free(c);
            reps++;
            t = vqc_now() - t0;
        }
        if (c && t > 0)
            result = 2.0 * n * n * (double)n * reps / t / 1e9;
    }
    vqt_scope_end();
    return result;
}

static int system_check_locked(int n_threads, bool bench, vqc_system_info *out)
{
    if (!out || n_threads < 0)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_system_check: bad arguments");
    memset(out, 0, sizeof *out);
    out->n_threads = vqc_cpu_init_threads(n_threads);
    if (out->n_threads < 1)
        return vqc_error_set(VQC_ERR_RUNTIME, "libtorch did not start: %s", vqt_last_error());
    out->n_cuda_devices = vqt_cuda_device_count();
    vqt_cpu_conv_check(NULL); /* warns where libtorch's own convolutions are taken instead */
    /* exactly: a broken libtorch or BLAS fails here */
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    out->matmul_ok =
        product_check(cpu, VQC_DTYPE_F32, 0.0, out->matmul_error, sizeof out->matmul_error) == 0;
    if (!bench || !out->matmul_ok)
        return 0;
    double gf = matmul_gflops(1024);
    if (gf > 0) {
        out->matmul_gflops = gf;
    } else {
        out->matmul_ok = false;
        snprintf(out->matmul_error, sizeof out->matmul_error, "%s", vqt_last_error());
    }
    return 0;
}

int vqc_system_check(int n_threads, bool bench, vqc_system_info *out)
{
    vqc_compute_begin();
    int rc = system_check_locked(n_threads, bench, out);
    vqc_compute_end();
    return rc;
}

/* ---- one CUDA device ------------------------------------------------------------------------ */

/* Within 1% on a device: the sums are of small whole numbers that every type holds exactly, but
 * cuDNN may pick a Winograd or FFT convolution, whose transforms round, while a kernel that
 * does not work is off by far more (or NaN). */
int vqc_device_compute_check(vqt_device dev, vqc_dtype dt, char *msg, size_t len)
{
    if (dev.type == VQT_DEVICE_CPU) /* as vqclip computes there */
        vqt_cpu_conv_check(NULL);
    return product_check(dev, dt, 1e-2, msg, len) || conv_check(dev, dt, 1e-2, msg, len) ? -1 : 0;
}

static int cuda_device_check_locked(int index, vqc_cuda_device_info *out)
{
    if (!out)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_cuda_device_check: no result to fill");
    memset(out, 0, sizeof *out);
    out->cc_major = out->cc_minor = -1;
    out->free_bytes = -1;
    int n = vqt_cuda_device_count();
    if (index < 0 || index >= n)
        return n > 0 ? vqc_error_set(VQC_ERR_USAGE,
                                     "no CUDA device %d: libtorch sees %d (cuda:0 to cuda:%d)",
                                     index, n, n - 1)
                     : vqc_error_set(VQC_ERR_USAGE,
                                     "no CUDA device %d: libtorch sees none (a CPU-only libtorch, "
                                     "no GPU, or CUDA_VISIBLE_DEVICES hides them)",
                                     index);
    vqt_device dev = {VQT_DEVICE_CUDA, index};
    vqt_cuda_name(dev, out->name, sizeof out->name);
    vqt_cuda_capability(dev, &out->cc_major, &out->cc_minor);
    out->precision = vqc_gen_resolve_precision(VQC_PRECISION_AUTO, true, out->cc_major);
    /* the element types that precision computes in (gen_internal.h): float32 for z, the codebook
     * search and the losses, float16 for CLIP, bfloat16 for FAST's decoder */
    vqc_dtype types[3] = {VQC_DTYPE_F32, VQC_DTYPE_F16, VQC_DTYPE_BF16};
    int ntypes = out->precision == VQC_PRECISION_FAST ? 3 : 2;
    out->compute_ok = true;
    for (int i = 0; i < ntypes && out->compute_ok; i++)
        out->compute_ok = vqc_device_compute_check(dev, types[i], out->compute_error,
                                                   sizeof out->compute_error) == 0;
    out->free_bytes = vqt_cuda_free_bytes(dev);
    return 0;
}

int vqc_cuda_device_check(int index, vqc_cuda_device_info *out)
{
    vqc_compute_begin();
    int rc = cuda_device_check_locked(index, out);
    vqc_compute_end();
    return rc;
}

bool vqc_cuda_graphs_built(void)
{
    return vqt_cuda_graphs_built();
}

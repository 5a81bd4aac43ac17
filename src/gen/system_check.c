/* vqc_system_check: whether libtorch computes correctly on this machine's CPU, and how fast. */
#include <stdio.h>
#include <string.h>

#include "torch/shim.h"
#include "gen/cpu_share.h"
#include "util/compute_lock.h"
#include "util/clock.h"
#include "util/error.h"

/* A 64x64 product of small integers (exact in float32) against the C result: a broken libtorch
 * or BLAS fails here. Returns 0, or -1 with the reason in msg. */
static int matmul_correct(char *msg, size_t len)
{
    enum { N = 64 };
    static float a[N * N], b[N * N], c[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i * N + j] = (float)((i * 7 + j * 3) % 11 - 5);
            b[i * N + j] = (float)((i * 5 + j) % 13 - 6);
        }
    int64_t shape[2] = {N, N};
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    vqt_scope_begin();
    vqt_tensor *ta = vqt_from_data(a, VQC_DTYPE_F32, 2, shape, NULL, cpu, VQC_DTYPE_F32);
    vqt_tensor *tb = vqt_from_data(b, VQC_DTYPE_F32, 2, shape, NULL, cpu, VQC_DTYPE_F32);
    vqt_tensor *tc = ta && tb ? vqt_matmul(ta, tb) : NULL;
    int64_t got = tc ? vqt_to_host(tc, c, VQC_DTYPE_F32, N * N) : -1;
    vqt_scope_end();
    if (got != N * N) {
        snprintf(msg, len, "libtorch cannot multiply matrices: %s", vqt_last_error());
        return -1;
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double want = 0;
            for (int k = 0; k < N; k++)
                want += (double)a[i * N + k] * b[k * N + j];
            if (c[i * N + j] != (float)want) {
                snprintf(msg, len, "a 64x64 matrix product is wrong at [%d][%d]: %g, not %g", i, j,
                         c[i * N + j], want);
                return -1;
            }
        }
    return 0;
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
    out->matmul_ok = matmul_correct(out->matmul_error, sizeof out->matmul_error) == 0;
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

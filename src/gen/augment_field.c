/* The two augmentations that move every pixel on its own path rather than by one homography:
 * Et (random elastic transform) and Ts (random thin plate spline), as kornia defines them and
 * nerdyrodent's generate.py configures them (see augment.h for the formulas). Both end in one
 * bilinear grid_sample with align_corners=False and zero padding, as kornia's do. */
#include <math.h>
#include <string.h>

#include "gen/augment.h"

#define ADD(a, b) vqt_binary(VQT_ADD, a, b)
#define MUL(a, b) vqt_binary(VQT_MUL, a, b)

/* Et: kornia's kernel (63, 63), sigma (32, 32), alpha (1, 1). */
#define ET_TAPS 63
#define ET_SIGMA 32.0
/* Ts: kornia's scale as the peer sets it, and the spline's log guard. */
#define TS_SCALE 0.8
#define TS_EPS 1e-8

/* The two coordinate planes [h, w] of kornia's create_meshgrid(h, w): x = linspace(-1, 1, w),
 * y = linspace(-1, 1, h) (a single row or column sits at -1, as linspace(-1, 1, 1)). */
static void mesh_axes(int64_t h, int64_t w, vqt_device dev, vqt_tensor **gx, vqt_tensor **gy)
{
    int64_t s1w[2] = {1, w}, sh1[2] = {h, 1}, shw[2] = {h, w};
    vqt_tensor *x = vqt_arange(w, VQC_DTYPE_F32, dev), *y = vqt_arange(h, VQC_DTYPE_F32, dev);
    x = vqt_affine(x, w > 1 ? 2.0 / (double)(w - 1) : 0.0, -1.0);
    y = vqt_affine(y, h > 1 ? 2.0 / (double)(h - 1) : 0.0, -1.0);
    *gx = vqt_expand(vqt_reshape(x, 2, s1w), 2, shw);
    *gy = vqt_expand(vqt_reshape(y, 2, sh1), 2, shw);
}

/* A sampling grid [1, h, w, 2] from its x and y planes [h, w]. */
static vqt_tensor *stack_grid(const vqt_tensor *gx, const vqt_tensor *gy, int64_t h, int64_t w)
{
    int64_t sg[4] = {1, h, w, 1};
    vqt_tensor *xy[2] = {vqt_reshape(gx, 4, sg), vqt_reshape(gy, 4, sg)};
    return vqt_cat(xy, 2, 3);
}

/* Samples x at grid [N or 1, h, w, 2] (expanded to the batch) as kornia does. */
static vqt_tensor *sample(const vqt_tensor *x, vqt_tensor *grid)
{
    int64_t s[8];
    vqt_shape(x, s);
    int64_t gs[4] = {s[0], s[2], s[3], 2};
    grid = vqt_to(vqt_expand(grid, 4, gs), vqt_device_of(x), vqt_dtype(x));
    return vqt_grid_sample(x, grid, VQT_GRID_ZEROS, false);
}

vqt_tensor *vqc_augment_elastic(const vqt_tensor *x, double p)
{
    int64_t s[8];
    if (vqt_shape(x, s) != 4)
        return NULL;
    int64_t n = s[0], h = s[2], w = s[3], sn[4] = {n, 2, h, w}, sg[4] = {n, 1, 1, 1};
    vqt_device dev = vqt_device_of(x);
    /* The gate first, then the field, each one draw for the batch. */
    vqt_tensor *on = vqt_binary_s(VQT_LT, vqt_rand(1, &n, dev), p);
    vqt_tensor *field = vqt_affine(vqt_rand(4, sn, dev), 2.0, -1.0);
    double k[ET_TAPS], sum = 0;
    for (int i = 0; i < ET_TAPS; i++) {
        double d = i - ET_TAPS / 2;
        k[i] = exp(-d * d / (2.0 * ET_SIGMA * ET_SIGMA));
        sum += k[i];
    }
    for (int i = 0; i < ET_TAPS; i++)
        k[i] /= sum;
    int64_t kv[4] = {1, 1, ET_TAPS, 1}, kh[4] = {1, 1, 1, ET_TAPS};
    int64_t k2v[4] = {2, 1, ET_TAPS, 1}, k2h[4] = {2, 1, 1, ET_TAPS};
    vqt_tensor *tv = vqt_from_data(k, VQC_DTYPE_F64, 4, kv, NULL, dev, VQC_DTYPE_F32);
    vqt_tensor *th = vqt_from_data(k, VQC_DTYPE_F64, 4, kh, NULL, dev, VQC_DTYPE_F32);
    tv = vqt_contiguous(vqt_expand(tv, 4, k2v));
    th = vqt_contiguous(vqt_expand(th, 4, k2h));
    /* The separable form of kornia's 2-D kernel (the outer product of two normalised rows). */
    field = vqt_conv2d(field, tv, NULL, 1, 1, ET_TAPS / 2, 0, 2);
    field = vqt_conv2d(field, th, NULL, 1, 1, 0, ET_TAPS / 2, 2);
    int64_t perm[4] = {0, 2, 3, 1};
    vqt_tensor *gx, *gy;
    mesh_axes(h, w, dev, &gx, &gy);
    vqt_tensor *grid = ADD(stack_grid(gx, gy, h, w), vqt_permute(field, 4, perm));
    vqt_tensor *warped = sample(x, vqt_clamp(grid, -1.0, 1.0));
    return vqt_where(vqt_reshape(on, 4, sg), warped, x);
}

/* U(d) = d log(d + eps) / 2 of a squared distance d (kornia's _kernel_distance). */
static double tps_u(double d)
{
    return 0.5 * d * log(d + TS_EPS);
}

/* Solves the 8x8 system a v = b (two right-hand sides) by Gaussian elimination with partial
 * pivoting; returns -1 when it is singular. */
static int solve8(double a[8][8], double b[8][2])
{
    for (int c = 0; c < 8; c++) {
        int piv = c;
        for (int r = c + 1; r < 8; r++)
            if (fabs(a[r][c]) > fabs(a[piv][c]))
                piv = r;
        if (fabs(a[piv][c]) < 1e-12)
            return -1;
        if (piv != c) {
            double t[8], u[2];
            memcpy(t, a[c], sizeof t), memcpy(a[c], a[piv], sizeof t), memcpy(a[piv], t, sizeof t);
            memcpy(u, b[c], sizeof u), memcpy(b[c], b[piv], sizeof u), memcpy(b[piv], u, sizeof u);
        }
        for (int r = 0; r < 8; r++) {
            if (r == c)
                continue;
            double f = a[r][c] / a[c][c];
            for (int k = c; k < 8; k++)
                a[r][k] -= f * a[c][k];
            b[r][0] -= f * b[c][0];
            b[r][1] -= f * b[c][1];
        }
    }
    for (int r = 0; r < 8; r++)
        b[r][0] /= a[r][r], b[r][1] /= a[r][r];
    return 0;
}

/* Ts's fixed control points. */
static const double tps_src[5][2] = {{-1, -1}, {-1, 1}, {1, -1}, {1, 1}, {0, 0}};

int vqc_tps_solve(const double dst[5][2], double w[5][2], double a[3][2])
{
    double m[8][8] = {{0}}, v[8][2] = {{0}};
    /* get_tps_transform(points_src = dst, points_dst = src), as kornia's augmentation calls it. */
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 5; j++) {
            double dx = dst[i][0] - tps_src[j][0], dy = dst[i][1] - tps_src[j][1];
            m[i][j] = tps_u(dx * dx + dy * dy);
        }
        double prow[3] = {1, dst[i][0], dst[i][1]};
        for (int c = 0; c < 3; c++)
            m[i][5 + c] = m[5 + c][i] = prow[c];
        v[i][0] = tps_src[i][0];
        v[i][1] = tps_src[i][1];
    }
    if (solve8(m, v) != 0)
        return -1;
    memcpy(w, v, sizeof(double) * 10);
    memcpy(a, v + 5, sizeof(double) * 6);
    return 0;
}

void vqc_tps_eval(const double w[5][2], const double a[3][2], double x, double y, double *ox,
                  double *oy)
{
    double o[2];
    for (int c = 0; c < 2; c++) {
        o[c] = a[0][c] + a[1][c] * x + a[2][c] * y;
        for (int j = 0; j < 5; j++) {
            double dx = x - tps_src[j][0], dy = y - tps_src[j][1];
            o[c] += w[j][c] * tps_u(dx * dx + dy * dy);
        }
    }
    *ox = o[0];
    *oy = o[1];
}

vqt_tensor *vqc_augment_thin_plate(const vqt_tensor *x, double p)
{
    int64_t s[8];
    if (vqt_shape(x, s) != 4)
        return NULL;
    int64_t h = s[2], w = s[3], nr = 11;
    vqt_device dev = vqt_device_of(x);
    double r[11], dst[5][2], kw[5][2], aw[3][2];
    /* drawn on the CPU generator, as augment.c's parameters: no wait for the device */
    const vqt_device cpu = {VQT_DEVICE_CPU, 0};
    if (vqt_to_host(vqt_rand(1, &nr, cpu), r, VQC_DTYPE_F64, nr) != nr)
        return NULL;
    if (!(r[0] < p))
        return vqt_ref(x);
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 2; c++)
            dst[i][c] = tps_src[i][c] + (2 * r[1 + 2 * i + c] - 1) * TS_SCALE;
    if (vqc_tps_solve(dst, kw, aw) != 0) /* measure zero: leave the batch as it is */
        return vqt_ref(x);
    /* vqc_tps_eval over the whole grid, as tensors on the device (kernel centred on src, as
     * warp_image_tps(image, src, ...)). */
    vqt_tensor *gx, *gy;
    mesh_axes(h, w, dev, &gx, &gy);
    vqt_tensor *out[2];
    for (int c = 0; c < 2; c++)
        out[c] = ADD(vqt_affine(gx, aw[1][c], aw[0][c]), vqt_affine(gy, aw[2][c], 0.0));
    for (int j = 0; j < 5; j++) {
        vqt_tensor *dx = vqt_affine(gx, 1.0, -tps_src[j][0]);
        vqt_tensor *dy = vqt_affine(gy, 1.0, -tps_src[j][1]);
        vqt_tensor *d = ADD(MUL(dx, dx), MUL(dy, dy));
        vqt_tensor *u =
            MUL(vqt_affine(d, 0.5, 0.0), vqt_unary(VQT_LOG, vqt_affine(d, 1.0, TS_EPS)));
        for (int c = 0; c < 2; c++)
            out[c] = ADD(out[c], vqt_affine(u, kw[j][c], 0.0));
    }
    return sample(x, stack_grid(out[0], out[1], h, w));
}

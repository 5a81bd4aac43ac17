/* Cutout augmentation (see augment.h): code parsing, the composed homography with its single
 * sampling pass, and the photometric steps. "Applied with probability p" is a 0/1 gate per
 * cutout that scales the random parameters, so an unapplied augmentation degenerates into the
 * identity without branching.
 *
 * The per-cutout parameters (gates, angles, matrices, erased spans: a few numbers per cutout)
 * are drawn and computed on the CPU, with the CPU generator, and only the results go to the
 * batch's device: on a GPU the dozens of tiny operators they take would each cost a launch and
 * host time, and the host is what limits a step there. Image-sized noise is drawn on the
 * batch's device. On the CPU nothing changes: same operators, same draws, same order. */
#include "gen/augment.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"
#include "util/torch_error.h"

#define DEG (M_PI / 180.0)

static const vqt_device cpu = {VQT_DEVICE_CPU, 0}; /* where the parameters are computed */

/* ---- codes ----------------------------------------------------------------------------- */

/* Indexed by vqc_augment. */
static const struct {
    const char *code;
    double prob;
} aug_codes[] = {
    {"Af", 0.7}, {"Pe", 0.7}, {"Ji", 0.7}, {"Er", 0.7}, {"Sh", 0.5}, {"Gn", 0.5},
    {"Ro", 0.7}, {"Hf", 0.5}, {"Cr", 0.5}, {"Re", 0.5}, {"Et", 0.7}, {"Ts", 0.7},
};
#define N_CODES (sizeof aug_codes / sizeof aug_codes[0])
_Static_assert(N_CODES == VQC_AUGMENT_COUNT, "one row per vqc_augment");
#define VALID_CODES "Af, Pe, Ji, Er, Sh, Gn, Ro, Hf, Cr, Re, Et, Ts (or none)"

double vqc_augment_default_prob(vqc_augment a)
{
    return a >= 0 && (size_t)a < N_CODES ? aug_codes[a].prob : 0.0;
}

/* Looks up one token of length n; returns its index in aug_codes (a vqc_augment), or
 * VQC_ERR_USAGE. */
static int parse_token(const char *tok, size_t n)
{
    for (size_t i = 0; i < N_CODES; i++)
        if (n == 2 && strncasecmp(tok, aug_codes[i].code, 2) == 0)
            return (int)i;
    return vqc_error_set(VQC_ERR_USAGE, "unknown augmentation '%.*s'; valid codes: %s",
                         n > 32 ? 32 : (int)n, tok, VALID_CODES);
}

static int is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

int vqc_augments_parse(const char *text, vqc_augment *out, int *n_out)
{
    vqc_augment list[VQC_MAX_AUGMENTS];
    int ntok = 0, none = 0, n = 0;
    const char *p = text ? text : "";
    while (*p) {
        if (is_sep(*p)) {
            p++;
            continue;
        }
        size_t len = 0;
        while (p[len] && !is_sep(p[len]))
            len++;
        ntok++;
        int code = len == 4 && strncasecmp(p, "none", 4) == 0 ? -2 : parse_token(p, len);
        if (code == -2)
            none = 1;
        else if (code < 0)
            return VQC_ERR_USAGE;
        else if (n == VQC_MAX_AUGMENTS)
            return vqc_error_set(VQC_ERR_USAGE, "more than %d augmentations", VQC_MAX_AUGMENTS);
        else
            list[n++] = (vqc_augment)code;
        p += len;
    }
    if (ntok == 0)
        return vqc_error_set(VQC_ERR_USAGE, "empty augmentation list; valid codes: %s",
                             VALID_CODES);
    if (none && ntok > 1)
        return vqc_error_set(VQC_ERR_USAGE, "augmentation 'none' cannot be combined with codes");
    memcpy(out, list, (size_t)n * sizeof *list);
    *n_out = n;
    return 0;
}

const char *vqc_augment_name(vqc_augment a)
{
    return a >= 0 && (size_t)a < N_CODES ? aug_codes[a].code : "?";
}

vqc_augment_list vqc_augment_list_default(void)
{
    vqc_augment_list l = {4, {VQC_AUGMENT_AF, VQC_AUGMENT_PE, VQC_AUGMENT_JI, VQC_AUGMENT_ER}};
    return l;
}

int vqc_augment_list_parse(const char *text, vqc_augment_list *out)
{
    vqc_augment_list l = {0, {0}};
    int rc = vqc_augments_parse(text, l.code, &l.n);
    if (!rc)
        *out = l;
    return rc;
}

int vqc_augment_list_str(const vqc_augment_list *l, char *buf, size_t len)
{
    char tmp[4 * VQC_MAX_AUGMENTS + 8] = "";
    size_t at = 0;
    for (int i = 0; i < l->n; i++)
        at += (size_t)snprintf(tmp + at, sizeof tmp - at, "%s%s", at ? "," : "",
                               vqc_augment_name(l->code[i]));
    return snprintf(buf, len, "%s", at ? tmp : "none");
}

bool vqc_augment_is_homography(vqc_augment a)
{
    return a == VQC_AUGMENT_AF || a == VQC_AUGMENT_PE || a == VQC_AUGMENT_RO ||
           a == VQC_AUGMENT_HF || a == VQC_AUGMENT_CR || a == VQC_AUGMENT_RE;
}

/* ---- tensor helpers (all handles land in the caller's scope) ---------------------------- */

static vqt_tensor *fill(int64_t n, double v, vqt_device dev)
{
    return vqt_full(1, &n, v, VQC_DTYPE_F32, dev);
}

/* A float32 tensor on dev from host doubles. */
static vqt_tensor *host_const(const double *v, int ndim, const int64_t *shape, vqt_device dev)
{
    return vqt_from_data(v, VQC_DTYPE_F64, ndim, shape, NULL, dev, VQC_DTYPE_F32);
}

/* [n] uniform in [lo, hi). */
static vqt_tensor *uniform(int64_t n, double lo, double hi, vqt_device dev)
{
    return vqt_affine(vqt_rand(1, &n, dev), hi - lo, lo);
}

/* [n] float: 1 with probability p, else 0. */
static vqt_tensor *gate(int64_t n, double p, vqt_device dev)
{
    return vqt_to(vqt_binary_s(VQT_LT, vqt_rand(1, &n, dev), p), dev, VQC_DTYPE_F32);
}

/* g * U(lo, hi): a random parameter that is 0 where the gate is closed. */
static vqt_tensor *gated(const vqt_tensor *g, int64_t n, double lo, double hi, vqt_device dev)
{
    return vqt_binary(VQT_MUL, g, uniform(n, lo, hi, dev));
}

static vqt_tensor *view4(const vqt_tensor *v, int64_t n)
{
    int64_t s[4] = {n, 1, 1, 1};
    return vqt_reshape(v, 4, s);
}

static vqt_tensor *view3(const vqt_tensor *v, int64_t n)
{
    int64_t s[3] = {n, 1, 1};
    return vqt_reshape(v, 3, s);
}

/* [n, 3, 3] from nine [n] entries in row-major order. */
static vqt_tensor *mat3(vqt_tensor *const e[9])
{
    int64_t s[3] = {-1, 3, 3};
    return vqt_reshape(vqt_stack(e, 9, 1), 3, s);
}

static double prob_of(vqc_augment a, double prob)
{
    return prob > 0 ? prob : vqc_augment_default_prob(a);
}

#define ADD(a, b) vqt_binary(VQT_ADD, a, b)
#define SUB(a, b) vqt_binary(VQT_SUB, a, b)
#define MUL(a, b) vqt_binary(VQT_MUL, a, b)
#define DIV(a, b) vqt_binary(VQT_DIV, a, b)

/* ---- geometric: one homography per cutout ---------------------------------------------- */

/* [[c, c k - s, tx], [s, s k + c, ty], [0, 0, 1]]: shear along x by atan(k), then rotation by
 * `ang` (radians; c, s its cosine and sine), then translation, all about the centre. */
static vqt_tensor *rst_matrix(const vqt_tensor *ang, const vqt_tensor *shear, vqt_tensor *tx,
                              vqt_tensor *ty, int64_t n, vqt_device dev)
{
    vqt_tensor *c = vqt_unary(VQT_COS, ang), *s = vqt_unary(VQT_SIN, ang);
    vqt_tensor *k = DIV(vqt_unary(VQT_SIN, shear), vqt_unary(VQT_COS, shear));
    vqt_tensor *z = fill(n, 0, dev), *o = fill(n, 1, dev);
    vqt_tensor *e[9] = {c, SUB(MUL(c, k), s), tx, s, ADD(MUL(s, k), c), ty, z, z, o};
    return mat3(e);
}

/* Af: rotation +-15 deg, x-shear +-5 deg, translation +-0.1 of the size (0.2 normalised). */
static vqt_tensor *affine_aug(int64_t n, double p, vqt_device dev)
{
    vqt_tensor *g = gate(n, p, dev);
    vqt_tensor *ang = gated(g, n, -15 * DEG, 15 * DEG, dev);
    vqt_tensor *sh = gated(g, n, -5 * DEG, 5 * DEG, dev);
    vqt_tensor *tx = gated(g, n, -0.2, 0.2, dev), *ty = gated(g, n, -0.2, 0.2, dev);
    return rst_matrix(ang, sh, tx, ty, n, dev);
}

/* Ro: rotation +-15 deg. */
static vqt_tensor *rotation_aug(int64_t n, double p, vqt_device dev)
{
    vqt_tensor *ang = gated(gate(n, p, dev), n, -15 * DEG, 15 * DEG, dev);
    vqt_tensor *z = fill(n, 0, dev);
    return rst_matrix(ang, z, z, z, n, dev);
}

/* Cr: crop from the input padded by 0.1 of the size = shift by +-0.1 of the size. */
static vqt_tensor *crop_aug(int64_t n, double p, vqt_device dev)
{
    vqt_tensor *g = gate(n, p, dev);
    vqt_tensor *tx = gated(g, n, -0.2, 0.2, dev), *ty = gated(g, n, -0.2, 0.2, dev);
    vqt_tensor *z = fill(n, 0, dev);
    return rst_matrix(z, z, tx, ty, n, dev);
}

/* Hf: x -> -x. */
static vqt_tensor *flip_aug(int64_t n, double p, vqt_device dev)
{
    vqt_tensor *sx = vqt_affine(gate(n, p, dev), -2.0, 1.0);
    vqt_tensor *z = fill(n, 0, dev), *o = fill(n, 1, dev);
    vqt_tensor *e[9] = {sx, z, z, z, o, z, z, z, o};
    return mat3(e);
}

/* One axis of Re: half-extent `half` (fraction of the side, clipped to 1) and a centre uniform
 * over the valid positions, gated; writes the scale 1/half and offset -centre/half. */
static void resized_axis(const vqt_tensor *g, vqt_tensor *half, int64_t n, vqt_device dev,
                         vqt_tensor **scale, vqt_tensor **offset)
{
    half = vqt_binary_s(VQT_MIN, half, 1.0);
    vqt_tensor *centre = MUL(uniform(n, -1, 1, dev), vqt_affine(half, -1.0, 1.0));
    vqt_tensor *h = vqt_affine(MUL(g, vqt_affine(half, 1.0, -1.0)), 1.0, 1.0);
    *scale = vqt_binary_s(VQT_POW, h, -1.0);
    *offset = vqt_unary(VQT_NEG, DIV(MUL(g, centre), h));
}

/* Re: area U(0.1, 1), aspect ratio log-uniform in (3/4, 4/3), scaled back to the full size. */
static vqt_tensor *resized_crop_aug(int64_t n, double p, vqt_device dev)
{
    vqt_tensor *g = gate(n, p, dev);
    vqt_tensor *area = uniform(n, 0.1, 1.0, dev);
    vqt_tensor *ratio = vqt_unary(VQT_EXP, uniform(n, log(3.0 / 4.0), log(4.0 / 3.0), dev));
    vqt_tensor *sx, *ox, *sy, *oy;
    resized_axis(g, vqt_unary(VQT_SQRT, MUL(area, ratio)), n, dev, &sx, &ox);
    resized_axis(g, vqt_unary(VQT_SQRT, DIV(area, ratio)), n, dev, &sy, &oy);
    vqt_tensor *z = fill(n, 0, dev), *o = fill(n, 1, dev);
    vqt_tensor *e[9] = {sx, z, ox, z, sy, oy, z, z, o};
    return mat3(e);
}

/* The homography taking the unit square's corners (0,0), (1,0), (1,1), (0,1) to the quad
 * q[0..3] (Heckbert's closed form), each q an [n] tensor pair (qx[i], qy[i]). */
static vqt_tensor *square_to_quad(vqt_tensor *const qx[4], vqt_tensor *const qy[4], int64_t n,
                                  vqt_device dev)
{
    vqt_tensor *dx1 = SUB(qx[1], qx[2]), *dx2 = SUB(qx[3], qx[2]);
    vqt_tensor *dy1 = SUB(qy[1], qy[2]), *dy2 = SUB(qy[3], qy[2]);
    vqt_tensor *dx3 = ADD(SUB(qx[0], qx[1]), SUB(qx[2], qx[3]));
    vqt_tensor *dy3 = ADD(SUB(qy[0], qy[1]), SUB(qy[2], qy[3]));
    vqt_tensor *den = SUB(MUL(dx1, dy2), MUL(dx2, dy1));
    vqt_tensor *g = DIV(SUB(MUL(dx3, dy2), MUL(dx2, dy3)), den);
    vqt_tensor *h = DIV(SUB(MUL(dx1, dy3), MUL(dx3, dy1)), den);
    vqt_tensor *e[9] = {ADD(SUB(qx[1], qx[0]), MUL(g, qx[1])),
                        ADD(SUB(qx[3], qx[0]), MUL(h, qx[3])),
                        qx[0],
                        ADD(SUB(qy[1], qy[0]), MUL(g, qy[1])),
                        ADD(SUB(qy[3], qy[0]), MUL(h, qy[3])),
                        qy[0],
                        g,
                        h,
                        fill(n, 1, dev)};
    return mat3(e);
}

/* Pe: each corner of [-1, 1]^2 moves inwards by U(0, 0.7) on each axis. */
static vqt_tensor *perspective_aug(int64_t n, double p, vqt_device dev)
{
    static const double base[8] = {-1, -1, 1, -1, 1, 1, -1, 1};
    static const double inward[8] = {1, 1, -1, 1, -1, -1, 1, -1};
    static const double to_unit[9] = {0.5, 0, 0.5, 0, 0.5, 0.5, 0, 0, 1};
    int64_t s8 = 8, s33[2] = {3, 3}, sn8[2] = {n, 8}, sn1[2] = {n, 1};
    vqt_tensor *g = vqt_reshape(gate(n, p, dev), 2, sn1);
    vqt_tensor *off = MUL(vqt_affine(vqt_rand(2, sn8, dev), 0.7, 0.0), g);
    vqt_tensor *q = ADD(host_const(base, 1, &s8, dev), MUL(off, host_const(inward, 1, &s8, dev)));
    vqt_tensor *qx[4], *qy[4];
    for (int i = 0; i < 4; i++) {
        qx[i] = vqt_select(q, 1, 2 * i);
        qy[i] = vqt_select(q, 1, 2 * i + 1);
    }
    /* [-1, 1]^2 -> unit square -> quad. */
    return vqt_matmul(square_to_quad(qx, qy, n, dev), host_const(to_unit, 2, s33, dev));
}

/* The random homography of one homography code. */
static vqt_tensor *homography_of(vqc_augment a, int64_t n, double p, vqt_device dev)
{
    switch (a) {
    case VQC_AUGMENT_RE: return resized_crop_aug(n, p, dev);
    case VQC_AUGMENT_CR: return crop_aug(n, p, dev);
    case VQC_AUGMENT_AF: return affine_aug(n, p, dev);
    case VQC_AUGMENT_RO: return rotation_aug(n, p, dev);
    case VQC_AUGMENT_PE: return perspective_aug(n, p, dev);
    case VQC_AUGMENT_HF: return flip_aug(n, p, dev);
    default: return NULL;
    }
}

/* Composes the homographies of codes[0..count) in application order (the first applied first:
 * M = H_last ... H_first); non-homography codes are skipped. */
static vqt_tensor *compose_homographies(const vqc_augment *codes, int count, double prob, int64_t n,
                                        vqt_device dev)
{
    vqt_tensor *z = fill(n, 0, dev), *o = fill(n, 1, dev);
    vqt_tensor *e[9] = {o, z, z, z, o, z, z, z, o};
    vqt_tensor *m = mat3(e);
    for (int i = 0; i < count; i++)
        if (vqc_augment_is_homography(codes[i]))
            m = vqt_matmul(homography_of(codes[i], n, prob_of(codes[i], prob), dev), m);
    return m;
}

/* The adjugate of each [3, 3] matrix (the inverse up to a factor, enough for a homography);
 * *det receives the determinants, [n]. */
static vqt_tensor *adjugate(const vqt_tensor *h, vqt_tensor **det)
{
    int64_t s[2] = {-1, 9};
    vqt_tensor *f = vqt_reshape(h, 2, s), *m[9];
    for (int i = 0; i < 9; i++)
        m[i] = vqt_select(f, 1, i);
#define COF(a, b, c, d) SUB(MUL(m[a], m[b]), MUL(m[c], m[d]))
    vqt_tensor *e[9] = {COF(4, 8, 5, 7), COF(2, 7, 1, 8), COF(1, 5, 2, 4),
                        COF(5, 6, 3, 8), COF(0, 8, 2, 6), COF(2, 3, 0, 5),
                        COF(3, 7, 4, 6), COF(1, 6, 0, 7), COF(0, 4, 1, 3)};
#undef COF
    *det = ADD(ADD(MUL(m[0], e[0]), MUL(m[1], e[3])), MUL(m[2], e[6]));
    return mat3(e);
}

/* [n] coordinates of n pixel centres in [-1, 1] (align_corners=True). */
static vqt_tensor *linspace1(int64_t n, vqt_device dev)
{
    vqt_tensor *a = vqt_arange(n, VQC_DTYPE_F32, dev);
    return n > 1 ? vqt_affine(a, 2.0 / (double)(n - 1), -1.0) : vqt_affine(a, 0.0, 0.0);
}

/* [3, h*w] homogeneous output pixel coordinates, row-major (y outer, x inner). */
static vqt_tensor *base_points(int64_t h, int64_t w, vqt_device dev)
{
    int64_t s1w[2] = {1, w}, sh1[2] = {h, 1}, shw[2] = {h, w};
    vqt_tensor *x = vqt_flatten(vqt_expand(vqt_reshape(linspace1(w, dev), 2, s1w), 2, shw), 0, 1);
    vqt_tensor *y = vqt_flatten(vqt_expand(vqt_reshape(linspace1(h, dev), 2, sh1), 2, shw), 0, 1);
    vqt_tensor *rows[3] = {x, y, fill(h * w, 1.0, dev)};
    return vqt_stack(rows, 3, 0);
}

/* Sampling grid [n, h, w, 2] for forward homographies hom. An output point whose preimage lies
 * behind the homography's horizon (homogeneous weight of the wrong sign: strong perspective
 * puts the horizon inside the output) samples nothing: it goes to 2, outside the input. */
static vqt_tensor *homography_grid(const vqt_tensor *hom, int64_t h, int64_t w, vqt_device dev)
{
    vqt_tensor *det, *hinv = adjugate(vqt_to(hom, cpu, VQC_DTYPE_F32), &det);
    hinv = vqt_to(hinv, dev, VQC_DTYPE_F32);
    det = vqt_to(det, dev, VQC_DTYPE_F32);
    int64_t sn1[2] = {-1, 1}, gs[4] = {-1, h, w, 2};
    vqt_tensor *src = vqt_matmul(hinv, base_points(h, w, dev)); /* [n, 3, h*w] */
    vqt_tensor *z = vqt_select(src, 1, 2);
    vqt_tensor *valid = vqt_binary_s(VQT_GT, MUL(z, vqt_reshape(det, 2, sn1)), 0.0);
    vqt_tensor *one = vqt_full(0, NULL, 1.0, VQC_DTYPE_F32, dev);
    vqt_tensor *far = vqt_full(0, NULL, 2.0, VQC_DTYPE_F32, dev);
    z = vqt_where(valid, z, one);
    vqt_tensor *xy[2] = {vqt_where(valid, DIV(vqt_select(src, 1, 0), z), far),
                         vqt_where(valid, DIV(vqt_select(src, 1, 1), z), far)};
    return vqt_reshape(vqt_stack(xy, 2, 2), 4, gs);
}

static vqt_tensor *warp(const vqt_tensor *x, const vqt_tensor *hom)
{
    int64_t s[8];
    if (vqt_shape(x, s) != 4) /* also a NULL from an earlier step */
        return NULL;
    vqt_device dev = vqt_device_of(x);
    vqt_tensor *grid = homography_grid(hom, s[2], s[3], dev);
    return vqt_grid_sample(x, vqt_to(grid, dev, vqt_dtype(x)), VQT_GRID_ZEROS, true);
}

/* ---- photometric ------------------------------------------------------------------------ */

static const double luma[3] = {0.299, 0.587, 0.114};

/* 3x3 inverse (host, double) by cofactors. */
static void inverse3(const double a[9], double out[9])
{
    double c[9] = {a[4] * a[8] - a[5] * a[7], a[2] * a[7] - a[1] * a[8], a[1] * a[5] - a[2] * a[4],
                   a[5] * a[6] - a[3] * a[8], a[0] * a[8] - a[2] * a[6], a[2] * a[3] - a[0] * a[5],
                   a[3] * a[7] - a[4] * a[6], a[1] * a[6] - a[0] * a[7], a[0] * a[4] - a[1] * a[3]};
    double det = a[0] * c[0] + a[1] * c[3] + a[2] * c[6];
    for (int i = 0; i < 9; i++)
        out[i] = c[i] / det;
}

static void matmul3(const double a[9], const double b[9], double out[9])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            out[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
}

/* Hue rotation by theta in YIQ as P0 + cos(theta) P1 + sin(theta) P2: RGB -> YIQ, rotate the
 * (I, Q) plane, back. Returns [n, 3, 3]. */
static vqt_tensor *hue_matrix(const vqt_tensor *theta, int64_t n, vqt_device dev)
{
    static const double yiq[9] = {0.299, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312};
    static const double e[3][9] = {
        {1, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0, 0, 0, -1, 0, 1, 0}};
    double inv[9], tmp[9], p[3][9];
    inverse3(yiq, inv);
    for (int k = 0; k < 3; k++) {
        matmul3(e[k], yiq, tmp);
        matmul3(inv, tmp, p[k]);
    }
    int64_t s[3] = {1, 3, 3};
    vqt_tensor *th = view3(theta, n);
    vqt_tensor *m =
        ADD(host_const(p[0], 3, s, dev), MUL(vqt_unary(VQT_COS, th), host_const(p[1], 3, s, dev)));
    return ADD(m, MUL(vqt_unary(VQT_SIN, th), host_const(p[2], 3, s, dev)));
}

/* Saturation by factor f: J + f (I - J), J's rows the luma weights. Returns [n, 3, 3]. */
static vqt_tensor *saturation_matrix(const vqt_tensor *f, int64_t n, vqt_device dev)
{
    double j[9], ij[9];
    for (int i = 0; i < 9; i++) {
        j[i] = luma[i % 3];
        ij[i] = (i % 4 == 0 ? 1.0 : 0.0) - j[i];
    }
    int64_t s[3] = {1, 3, 3};
    return ADD(host_const(j, 3, s, dev), MUL(view3(f, n), host_const(ij, 3, s, dev)));
}

/* Ji: brightness, contrast (about the mean luma), saturation, hue. */
static vqt_tensor *jitter(const vqt_tensor *x, double p)
{
    int64_t s[8], sl[4] = {1, 3, 1, 1}, red[2] = {2, 3}, one = 1;
    if (vqt_shape(x, s) != 4)
        return NULL;
    int64_t n = s[0], sflat[3] = {n, 3, s[2] * s[3]};
    vqt_device dev = vqt_device_of(x);
    vqt_tensor *g = gate(n, p, cpu);
    vqt_tensor *db = vqt_to(view4(gated(g, n, -0.1, 0.1, cpu), n), dev, VQC_DTYPE_F32);
    vqt_tensor *cf = view4(vqt_affine(gated(g, n, -0.1, 0.1, cpu), 1.0, 1.0), n);
    vqt_tensor *sf = vqt_affine(gated(g, n, -0.1, 0.1, cpu), 1.0, 1.0);
    vqt_tensor *th = gated(g, n, -0.2 * M_PI, 0.2 * M_PI, cpu);
    vqt_tensor *y = ADD(x, db);
    vqt_tensor *means = vqt_reduce(VQT_MEAN, y, 2, red, true);
    vqt_tensor *gm = vqt_reduce(VQT_SUM, MUL(means, host_const(luma, 4, sl, dev)), 1, &one, true);
    y = ADD(gm, MUL(vqt_to(cf, dev, VQC_DTYPE_F32), SUB(y, gm)));
    vqt_tensor *cm = vqt_matmul(hue_matrix(th, n, cpu), saturation_matrix(sf, n, cpu));
    return vqt_reshape(vqt_matmul(vqt_to(cm, dev, VQC_DTYPE_F32), vqt_reshape(y, 3, sflat)), 4, s);
}

/* Sh: x + f (x - blur(x)), f ~ U(0, 0.3). */
static vqt_tensor *sharpen(const vqt_tensor *x, double p)
{
    int64_t s[8];
    if (vqt_shape(x, s) != 4)
        return NULL;
    vqt_device dev = vqt_device_of(x);
    double k[9] = {1, 1, 1, 1, 5, 1, 1, 1, 1};
    for (int i = 0; i < 9; i++)
        k[i] /= 13.0;
    int64_t ks[4] = {1, 1, 3, 3}, kall[4] = {s[1], 1, 3, 3}, pads[4] = {1, 1, 1, 1};
    vqt_tensor *kern = vqt_contiguous(vqt_expand(host_const(k, 4, ks, dev), 4, kall));
    vqt_tensor *pad = vqt_pad(x, 4, pads, VQT_PAD_REPLICATE, 0.0);
    vqt_tensor *blur =
        vqt_conv2d(pad, vqt_to(kern, dev, vqt_dtype(x)), NULL, 1, 1, 0, 0, (int)s[1]);
    vqt_tensor *f = view4(gated(gate(s[0], p, cpu), s[0], 0.0, 0.3, cpu), s[0]);
    return ADD(x, MUL(vqt_to(f, dev, VQC_DTYPE_F32), SUB(x, blur)));
}

/* Gn: x + std * N(0, 1). */
static vqt_tensor *noise(const vqt_tensor *x, double p)
{
    int64_t s[8];
    int nd = vqt_shape(x, s);
    if (nd != 4)
        return NULL;
    vqt_device dev = vqt_device_of(x);
    vqt_tensor *sd = view4(vqt_affine(gate(s[0], p, cpu), VQC_AUG_GN_STD, 0.0), s[0]);
    return ADD(x, MUL(vqt_to(sd, dev, VQC_DTYPE_F32), vqt_randn(nd, s, dev)));
}

/* [n, len] float: 1 where lo <= index < lo + ext (lo, ext [n]). */
static vqt_tensor *span(const vqt_tensor *lo, const vqt_tensor *ext, int64_t n, int64_t len,
                        vqt_device dev)
{
    int64_t s1[2] = {1, len}, sn[2] = {n, 1};
    vqt_tensor *idx = vqt_reshape(vqt_arange(len, VQC_DTYPE_F32, dev), 2, s1);
    vqt_tensor *a = vqt_reshape(lo, 2, sn), *b = vqt_reshape(ADD(lo, ext), 2, sn);
    vqt_tensor *ge = vqt_to(vqt_binary(VQT_GE, idx, a), dev, VQC_DTYPE_F32);
    return MUL(ge, vqt_to(vqt_binary(VQT_LT, idx, b), dev, VQC_DTYPE_F32));
}

/* Er: zero one rectangle of area U(0.1, 0.4), aspect log-uniform in (0.3, 3.3). */
static vqt_tensor *erase(const vqt_tensor *x, double p)
{
    int64_t s[8];
    if (vqt_shape(x, s) != 4)
        return NULL;
    int64_t n = s[0], h = s[2], w = s[3];
    vqt_device dev = vqt_device_of(x);
    vqt_tensor *g = gate(n, p, cpu);
    vqt_tensor *area = uniform(n, 0.1, 0.4, cpu);
    vqt_tensor *ratio = vqt_unary(VQT_EXP, uniform(n, log(0.3), log(3.3), cpu));
    vqt_tensor *eh = vqt_unary(VQT_SQRT, MUL(area, ratio));
    vqt_tensor *ew = vqt_unary(VQT_SQRT, DIV(area, ratio));
    eh = vqt_clamp(vqt_unary(VQT_FLOOR, vqt_affine(eh, (double)h, 0.5)), 1.0, (double)h);
    ew = vqt_clamp(vqt_unary(VQT_FLOOR, vqt_affine(ew, (double)w, 0.5)), 1.0, (double)w);
    vqt_tensor *y0 = vqt_unary(VQT_FLOOR, MUL(vqt_rand(1, &n, cpu), vqt_affine(eh, -1.0, h + 1.0)));
    vqt_tensor *x0 = vqt_unary(VQT_FLOOR, MUL(vqt_rand(1, &n, cpu), vqt_affine(ew, -1.0, w + 1.0)));
    int64_t sr[4] = {n, 1, h, 1}, sc[4] = {n, 1, 1, w};
    vqt_tensor *rows = vqt_to(vqt_reshape(span(y0, eh, n, h, cpu), 4, sr), dev, VQC_DTYPE_F32);
    vqt_tensor *cols = vqt_to(vqt_reshape(span(x0, ew, n, w, cpu), 4, sc), dev, VQC_DTYPE_F32);
    vqt_tensor *inside = MUL(MUL(rows, cols), vqt_to(view4(g, n), dev, VQC_DTYPE_F32));
    return MUL(x, vqt_to(vqt_affine(inside, -1.0, 1.0), dev, vqt_dtype(x)));
}

/* ---- public ----------------------------------------------------------------------------- */

/* Checks the list's length and codes. */
static int check_list(const vqc_augment_list *l)
{
    if (!l || l->n < 0 || l->n > VQC_MAX_AUGMENTS)
        return vqc_error_set(VQC_ERR_USAGE, "augment: no list, or its length is out of range");
    for (int i = 0; i < l->n; i++)
        if (l->code[i] < 0 || l->code[i] >= VQC_AUGMENT_COUNT)
            return vqc_error_set(VQC_ERR_USAGE, "augment: unknown code %d", (int)l->code[i]);
    return 0;
}

vqt_tensor *vqc_augment_homographies(const vqc_augment_list *l, double prob, int64_t n,
                                     vqt_device dev)
{
    if (check_list(l) != 0)
        return NULL;
    if (n < 1) {
        vqc_error_set(VQC_ERR_USAGE, "augment: batch size %lld < 1", (long long)n);
        return NULL;
    }
    vqt_scope_begin();
    return vqc_torch_scope_end(
        vqt_to(compose_homographies(l->code, l->n, prob, n, cpu), dev, VQC_DTYPE_F32),
        "augment homographies");
}

/* Checks that x is [N, C, H, W] (C == 3 when need3). */
static int check_batch(const vqt_tensor *x, int need3)
{
    int64_t s[8];
    if (!x)
        return vqc_error_set(VQC_ERR_USAGE, "augment: no input (%s)", vqt_last_error());
    int nd = vqt_shape(x, s);
    if (nd != 4 || s[0] < 1 || s[2] < 1 || s[3] < 1 || (need3 && s[1] != 3))
        return vqc_error_set(VQC_ERR_USAGE, "augment: expected a [N, %s, H, W] batch",
                             need3 ? "3" : "C");
    return 0;
}

vqt_tensor *vqc_augment_warp(const vqt_tensor *x, const vqt_tensor *h)
{
    if (check_batch(x, 0) != 0)
        return NULL;
    if (!h || vqt_ndim(h) != 3 || vqt_size(h, 0) != vqt_size(x, 0) || vqt_size(h, 1) != 3 ||
        vqt_size(h, 2) != 3) {
        vqc_error_set(VQC_ERR_USAGE, "augment warp: homographies must be [N, 3, 3]");
        return NULL;
    }
    vqt_scope_begin();
    return vqc_torch_scope_end(warp(x, h), "augment warp");
}

/* Whether the list holds `a`. */
static bool has(const vqc_augment_list *l, vqc_augment a)
{
    for (int i = 0; i < l->n; i++)
        if (l->code[i] == a)
            return true;
    return false;
}

/* One non-homography code applied to y. */
static vqt_tensor *apply_one(const vqt_tensor *y, vqc_augment a, double prob)
{
    double p = prob_of(a, prob);
    switch (a) {
    case VQC_AUGMENT_JI: return jitter(y, p);
    case VQC_AUGMENT_SH: return sharpen(y, p);
    case VQC_AUGMENT_GN: return noise(y, p);
    case VQC_AUGMENT_ER: return erase(y, p);
    case VQC_AUGMENT_ET: return y ? vqc_augment_elastic(y, p) : NULL;
    case VQC_AUGMENT_TS: return y ? vqc_augment_thin_plate(y, p) : NULL;
    default: return NULL;
    }
}

vqt_tensor *vqc_augment_apply(const vqt_tensor *x, const vqc_augment_list *l, double prob)
{
    if (check_list(l) != 0 || check_batch(x, has(l, VQC_AUGMENT_JI)) != 0)
        return NULL;
    vqt_scope_begin();
    vqt_tensor *y = vqt_ref(x);
    for (int i = 0; i < l->n && y;) {
        int j = i;
        while (j < l->n && vqc_augment_is_homography(l->code[j]))
            j++;
        if (j > i) { /* a run of homography codes: one composed warp */
            y = warp(y, compose_homographies(l->code + i, j - i, prob, vqt_size(x, 0), cpu));
            i = j;
        } else {
            y = apply_one(y, l->code[i], prob);
            i++;
        }
    }
    return vqc_torch_scope_end(y, "augment");
}

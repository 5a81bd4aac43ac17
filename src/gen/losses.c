/* Shaping losses after pixray (see losses.h; formulas and sources in docs/losses.md). */
#include "gen/losses.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* ---- palette text ---------------------------------------------------------------------- */

static int hex_digit(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

int vqc_palette_parse(const char *text, float rgb[][3], int *n)
{
    *n = 0;
    for (const char *p = text ? text : ""; *p;) {
        p += strspn(p, ", \t");
        if (!*p)
            break;
        size_t len = strcspn(p, ", \t");
        const char *h = p + (*p == '#');
        size_t hl = len - (size_t)(h - p);
        bool ok = hl == 6;
        for (size_t i = 0; ok && i < 6; i++)
            ok = hex_digit((unsigned char)h[i]) >= 0;
        if (!ok)
            return vqc_error_set(VQC_ERR_USAGE, "palette colour '%.*s': expected #rrggbb", (int)len,
                                 p);
        if (*n == VQC_MAX_PALETTE)
            return vqc_error_set(VQC_ERR_USAGE, "palette: more than %d colours", VQC_MAX_PALETTE);
        for (int c = 0; c < 3; c++)
            rgb[*n][c] = (float)(hex_digit((unsigned char)h[2 * c]) * 16 +
                                 hex_digit((unsigned char)h[2 * c + 1])) /
                         255.0f;
        (*n)++;
        p += len;
    }
    return *n ? 0 : vqc_error_set(VQC_ERR_USAGE, "palette: no colour given");
}

bool vqc_shape_losses_any(const vqc_shape_losses *s)
{
    return s->smoothness != 0 || s->saturation != 0 || s->symmetry_lr != 0 || s->symmetry_ud != 0 ||
           (s->n_palette > 0 && s->palette_weight != 0);
}

/* ---- the terms ------------------------------------------------------------------------- */

/* torch.gradient along `dim` with unit spacing and edge order 1: one-sided differences at the
 * two ends, (f[i+1] - f[i-1]) / 2 inside. The size along dim must be at least 2. */
static vqt_tensor *gradient(const vqt_tensor *t, int dim)
{
    int64_t n = vqt_size(t, dim);
    if (n < 2) {
        vqc_error_set(VQC_ERR_USAGE, "smoothness: an image side of %lld is too small",
                      (long long)n);
        return NULL;
    }
    vqt_tensor *parts[3] = {
        vqt_binary(VQT_SUB, vqt_narrow(t, dim, 1, 1), vqt_narrow(t, dim, 0, 1)),
        vqt_binary_s(
            VQT_DIV,
            vqt_binary(VQT_SUB, vqt_narrow(t, dim, 2, n - 2), vqt_narrow(t, dim, 0, n - 2)), 2.0),
        vqt_binary(VQT_SUB, vqt_narrow(t, dim, n - 1, 1), vqt_narrow(t, dim, n - 2, 1))};
    return vqt_cat(parts, 3, dim);
}

vqt_tensor *vqc_loss_smoothness(const vqt_tensor *cuts, double w, vqc_smoothness_type type)
{
    /* pixray reshapes [N, S, S, 3] to [-1, S, 3]: the cutouts one above the other. */
    int64_t shape[2] = {-1, vqt_size(cuts, 3)};
    vqt_tensor *g[6];
    for (int c = 0; c < 3; c++) {
        vqt_tensor *ch = vqt_reshape(vqt_select(cuts, 1, c), 2, shape);
        g[2 * c] = gradient(ch, 0);
        g[2 * c + 1] = gradient(ch, 1);
    }
    for (int i = 0; i < 6; i++)
        if (!g[i])
            return NULL;
    vqt_tensor *s = vqt_norm(vqt_stack(g, 6, 0), 0, false);
    if (type == VQC_SMOOTHNESS_CLIPPED)
        s = vqt_clamp(s, 0.0, 0.5);
    else if (type == VQC_SMOOTHNESS_LOG)
        s = vqt_unary(VQT_LOG, vqt_affine(s, 1.0, 1.0));
    return vqt_binary_s(VQT_MUL, vqt_reduce(VQT_MEAN, s, 0, NULL, false), w);
}

/* The pixels of [N, 3, H, W] as [N*H*W, 3]. */
static vqt_tensor *pixels(const vqt_tensor *x)
{
    int64_t perm[4] = {0, 2, 3, 1}, shape[2] = {-1, 3};
    return vqt_reshape(vqt_permute(x, 4, perm), 2, shape);
}

vqt_tensor *vqc_loss_saturation(const vqt_tensor *cuts, double w)
{
    vqt_tensor *px = pixels(cuts);
    vqt_tensor *r = vqt_select(px, 1, 0), *g = vqt_select(px, 1, 1), *b = vqt_select(px, 1, 2);
    vqt_tensor *rg = vqt_binary(VQT_SUB, r, g);
    vqt_tensor *yb = vqt_binary(VQT_SUB, vqt_binary_s(VQT_MUL, vqt_binary(VQT_ADD, r, g), 0.5), b);
    vqt_tensor *m[2] = {vqt_reduce(VQT_MEAN, rg, 0, NULL, false),
                        vqt_reduce(VQT_MEAN, yb, 0, NULL, false)};
    /* sqrt(std(rg)^2 + std(yb)^2) = |(rg - mean, yb - mean)| / sqrt(n - 1), unbiased. */
    vqt_tensor *dev[2] = {vqt_binary(VQT_SUB, rg, m[0]), vqt_binary(VQT_SUB, yb, m[1])};
    int64_t all[1] = {-1}, n = vqt_size(px, 0);
    vqt_tensor *spread = vqt_norm(vqt_reshape(vqt_stack(dev, 2, 0), 1, all), 0, false);
    spread = vqt_binary_s(VQT_DIV, spread, sqrt((double)(n > 1 ? n - 1 : 1)));
    vqt_tensor *centre = vqt_norm(vqt_stack(m, 2, 0), 0, false);
    vqt_tensor *colourful = vqt_binary(VQT_ADD, spread, vqt_binary_s(VQT_MUL, centre, 0.3));
    return vqt_binary_s(VQT_MUL, colourful, -w / 5.0);
}

vqt_tensor *vqc_loss_symmetry(const vqt_tensor *img, double w, int dim)
{
    int64_t n = vqt_size(img, dim);
    int64_t *rev = malloc((size_t)(n > 0 ? n : 1) * sizeof *rev);
    if (!rev) {
        vqc_error_set(VQC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        rev[i] = n - 1 - i;
    vqt_tensor *idx =
        vqt_from_data(rev, VQC_DTYPE_I64, 1, &n, NULL, vqt_device_of(img), VQC_DTYPE_I64);
    free(rev);
    vqt_tensor *mirror = idx ? vqt_index_select(img, dim, idx) : NULL;
    return vqt_binary_s(VQT_MUL, vqt_mse_loss(img, mirror), w);
}

vqt_tensor *vqc_loss_palette(const vqt_tensor *cuts, double w, const float rgb[][3], int n)
{
    int64_t pshape[3] = {1, n, 3}, one[3] = {-1, 1, 3};
    vqt_tensor *pal =
        vqt_from_data(rgb, VQC_DTYPE_F32, 3, pshape, NULL, vqt_device_of(cuts), VQC_DTYPE_F32);
    vqt_tensor *px = vqt_reshape(pixels(cuts), 3, one);
    vqt_tensor *dist = vqt_norm(vqt_binary(VQT_SUB, px, pal), 2, false); /* [pixels, colours] */
    int64_t d1 = 1;
    vqt_tensor *nearest = vqt_reduce(VQT_AMIN, dist, 1, &d1, false);
    double scale = w / 10.0 * (double)vqt_size(cuts, 0);
    return vqt_binary_s(VQT_MUL, vqt_reduce(VQT_MEAN, nearest, 0, NULL, false), scale);
}

void vqc_shape_losses_memory(const vqc_shape_losses *s, double *cut_tensors, double *img_tensors)
{
    /* smoothness: the six gradients, their stack and the magnitudes; saturation: the pixel
     * copy, rg, yb and their deviations; palette: K differences per pixel (K x 3 values) and K
     * distances; symmetry: the mirror and the difference. */
    double k = s->n_palette > 0 && s->palette_weight != 0 ? s->n_palette : 0;
    *cut_tensors =
        (s->smoothness != 0 ? 4 : 0) + (s->saturation != 0 ? 3 : 0) + (k > 0 ? 1.5 * k + 1 : 0);
    *img_tensors = (s->symmetry_lr != 0 ? 2 : 0) + (s->symmetry_ud != 0 ? 2 : 0);
}

/* Adds term to *sum (NULL: the first); false once a term failed. */
static bool add_term(vqt_tensor **sum, vqt_tensor *term)
{
    *sum = !term ? NULL : *sum ? vqt_binary(VQT_ADD, *sum, term) : term;
    return *sum != NULL;
}

vqt_tensor *vqc_shape_losses_total(const vqc_shape_losses *s, const vqt_tensor *img,
                                   const vqt_tensor *cuts)
{
    vqt_tensor *sum = NULL;
    bool ok = true;
    if (ok && s->smoothness != 0)
        ok = add_term(&sum, vqc_loss_smoothness(cuts, s->smoothness, s->smoothness_type));
    if (ok && s->saturation != 0)
        ok = add_term(&sum, vqc_loss_saturation(cuts, s->saturation));
    if (ok && s->symmetry_lr != 0)
        ok = add_term(&sum, vqc_loss_symmetry(img, s->symmetry_lr, 3));
    if (ok && s->symmetry_ud != 0)
        ok = add_term(&sum, vqc_loss_symmetry(img, s->symmetry_ud, 2));
    if (ok && s->n_palette > 0 && s->palette_weight != 0)
        ok = add_term(&sum, vqc_loss_palette(cuts, s->palette_weight, s->palette, s->n_palette));
    if (!ok)
        return NULL;
    return sum ? sum : vqt_full(0, NULL, 0.0, VQC_DTYPE_F32, vqt_device_of(img));
}

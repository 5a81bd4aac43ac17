/* Separable Lanczos-4 resampling (see lanczos.h): one pass along rows into floats, one along
 * columns into samples. Each output position has its own taps and normalised weights. */
#include "gen/lanczos.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define LANCZOS_A 4

typedef struct {
    int n;      /* taps per output position */
    int *index; /* [out][n] source positions, clamped to the picture */
    float *w;   /* [out][n] weights summing to 1 */
} taps_t;

static double lanczos(double t)
{
    t = fabs(t);
    if (t < 1e-8)
        return 1.0;
    if (t >= LANCZOS_A)
        return 0.0;
    double pt = M_PI * t;
    return LANCZOS_A * sin(pt) * sin(pt / LANCZOS_A) / (pt * pt);
}

static void taps_free(taps_t *t)
{
    free(t->index);
    free(t->w);
}

/* The taps from n_in positions to n_out. */
static int taps_make(int n_in, int n_out, taps_t *t)
{
    double ratio = (double)n_in / n_out, widen = ratio > 1 ? ratio : 1;
    t->n = 2 * (int)ceil(LANCZOS_A * widen);
    t->index = malloc((size_t)n_out * t->n * sizeof *t->index);
    t->w = malloc((size_t)n_out * t->n * sizeof *t->w);
    if (!t->index || !t->w) {
        taps_free(t);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory for resampling");
    }
    for (int o = 0; o < n_out; o++) {
        double c = (o + 0.5) * ratio - 0.5, sum = 0;
        int first = (int)floor(c) - t->n / 2 + 1;
        for (int k = 0; k < t->n; k++) {
            int j = first + k;
            double w = lanczos((c - j) / widen);
            t->index[o * t->n + k] = j < 0 ? 0 : j >= n_in ? n_in - 1 : j;
            t->w[o * t->n + k] = (float)w;
            sum += w;
        }
        for (int k = 0; k < t->n; k++)
            t->w[o * t->n + k] = (float)(t->w[o * t->n + k] / sum);
    }
    return 0;
}

int vqc_lanczos_resize(const vqc_raw_image *in, int ow, int oh, vqc_raw_image *out)
{
    memset(out, 0, sizeof *out);
    if (ow < 1 || oh < 1 || in->w < 1 || in->h < 1)
        return vqc_error_set(VQC_ERR_USAGE, "cannot resize %dx%d to %dx%d", in->w, in->h, ow, oh);
    int c = in->channels, rc;
    taps_t tx = {0}, ty = {0};
    if ((rc = taps_make(in->w, ow, &tx)) || (rc = taps_make(in->h, oh, &ty))) {
        taps_free(&tx);
        return rc;
    }
    float *rows = malloc((size_t)in->h * ow * c * sizeof *rows);
    out->px = malloc((size_t)oh * ow * c * sizeof *out->px);
    if (!rows || !out->px) {
        free(rows);
        taps_free(&tx);
        taps_free(&ty);
        vqc_raw_image_free(out);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory resizing to %dx%d", ow, oh);
    }
    for (int y = 0; y < in->h; y++)
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int k = 0; k < tx.n; k++)
                    acc += tx.w[x * tx.n + k] *
                           in->px[((size_t)y * in->w + tx.index[x * tx.n + k]) * c + ch];
                rows[((size_t)y * ow + x) * c + ch] = acc;
            }
    float top = in->depth == 16 ? 65535.0f : 255.0f;
    for (int y = 0; y < oh; y++)
        for (size_t i = 0; i < (size_t)ow * c; i++) {
            float acc = 0;
            for (int k = 0; k < ty.n; k++)
                acc += ty.w[y * ty.n + k] * rows[(size_t)ty.index[y * ty.n + k] * ow * c + i];
            acc = acc < 0 ? 0 : acc > top ? top : acc;
            out->px[(size_t)y * ow * c + i] = (uint16_t)lrintf(acc);
        }
    free(rows);
    taps_free(&tx);
    taps_free(&ty);
    out->w = ow;
    out->h = oh;
    out->channels = c;
    out->depth = in->depth;
    return 0;
}

/* Real-ESRGAN's networks (see esrgan.h): weights from a restricted-reader tensor map, the
 * architecture from their names and shapes, the forward pass over the vqt shim.
 *
 * RRDBNet (BasicSR's rrdbnet_arch): pixel-unshuffle by 2 (x2) or 4 (x1), conv_first, num_block
 * RRDBs of three residual dense blocks (five 3x3 convs on the concatenation of all earlier
 * outputs, LeakyReLU 0.2, residuals scaled by 0.2), conv_body + skip, two nearest x2 upsamplings
 * each with a conv and LeakyReLU, conv_hr, LeakyReLU, conv_last.
 * SRVGGNetCompact: conv + PReLU, num_conv x (conv + PReLU), conv to out*s*s channels, pixel
 * shuffle by s, plus the input upsampled by s (nearest). */
#include "models/esrgan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/weights.h"
#include "util/error.h"
#include "util/torch_error.h"

typedef struct {
    vqt_tensor *w, *b;
} conv_t;

/* RRDBNet's convolutions, in the order of convs[]: conv_first, then 15 per block
 * (rdb1.conv1..rdb3.conv5), then these four, then conv_last. */
enum { RRDB_TAIL_BODY = 0, RRDB_TAIL_UP1, RRDB_TAIL_UP2, RRDB_TAIL_HR, RRDB_TAIL_LAST };

struct vqc_esrgan {
    vqc_esrgan_info info;
    vqt_device dev;
    vqc_dtype dt;
    char prefix[16];
    conv_t *convs; /* RRDB: 1 + 15 * num_block + 5; SRVGG: num_block + 2 */
    int nconv;
    vqt_tensor **prelu; /* SRVGG: num_block + 1 slope vectors */
    int nprelu;
};

/* ---- inferring the architecture ------------------------------------------------------------ */

/* A 3x3 convolution weight with at least one input and one output channel (and sizes that fit
 * an int: a hostile file's zero or huge channel counts stop here). */
static bool is_conv3(const vqc_tensor_info *t)
{
    return t && t->ndim == 4 && t->shape[2] == 3 && t->shape[3] == 3 && t->shape[0] >= 1 &&
           t->shape[1] >= 1 && t->shape[0] <= 1 << 20 && t->shape[1] <= 1 << 20;
}

static int infer_rrdb(const vqc_tensor_map *map, const char *p, vqc_esrgan_info *info)
{
    const vqc_tensor_info *first = vqc_weight_infof(map, p, "conv_first.weight");
    const vqc_tensor_info *last = vqc_weight_infof(map, p, "conv_last.weight");
    if (!is_conv3(first) || !is_conv3(last))
        return vqc_error_set(VQC_ERR_MODEL, "RRDBNet weights without 3x3 conv_first/conv_last");
    info->arch = VQC_ESRGAN_RRDB;
    info->num_feat = (int)first->shape[0];
    info->num_out_ch = (int)last->shape[0];
    int64_t in = first->shape[1], out = last->shape[0];
    /* x2 and x1 unshuffle the input by 2 and 4 before conv_first (4 and 16 times the channels) */
    info->scale = in == out ? 4 : in == 4 * out ? 2 : in == 16 * out ? 1 : 0;
    if (!info->scale)
        return vqc_error_set(VQC_ERR_MODEL,
                             "RRDBNet conv_first takes %lld channels, conv_last gives %lld: "
                             "not a x4, x2 or x1 network",
                             (long long)in, (long long)out);
    info->num_in_ch = (int)out;
    int n = 0;
    while (n < 10000 && vqc_weight_infof(map, p, "body.%d.rdb1.conv1.weight", n))
        n++;
    info->num_block = n;
    const vqc_tensor_info *c1 = vqc_weight_infof(map, p, "body.0.rdb1.conv1.weight");
    if (n > 0 && !is_conv3(c1))
        return vqc_error_set(VQC_ERR_MODEL, "RRDBNet block body.0.rdb1.conv1 is no 3x3 conv");
    info->num_grow_ch = n > 0 ? (int)c1->shape[0] : 0;
    return 0;
}

static int infer_srvgg(const vqc_tensor_map *map, const char *p, vqc_esrgan_info *info)
{
    int n = 0;
    while (n < 10000 && vqc_weight_infof(map, p, "body.%d.weight", n))
        n++;
    const vqc_tensor_info *first = vqc_weight_infof(map, p, "body.0.weight");
    const vqc_tensor_info *act = vqc_weight_infof(map, p, "body.1.weight");
    if (!is_conv3(first))
        return vqc_error_set(VQC_ERR_MODEL, "SRVGGNetCompact weights without a 3x3 body.0");
    if (!act || act->ndim != 1)
        return vqc_error_set(VQC_ERR_MODEL, "SRVGGNetCompact without PReLU weights (body.1): only "
                                            "the PReLU variant (the released models) is supported");
    if (n < 3 || n % 2 == 0)
        return vqc_error_set(VQC_ERR_MODEL, "SRVGGNetCompact with %d body entries", n);
    const vqc_tensor_info *last = vqc_weight_infof(map, p, "body.%d.weight", n - 1);
    info->arch = VQC_ESRGAN_SRVGG;
    info->num_in_ch = info->num_out_ch = (int)first->shape[1];
    info->num_feat = (int)first->shape[0];
    info->num_block = (n - 3) / 2;
    info->num_grow_ch = 0;
    int64_t ss = is_conv3(last) ? last->shape[0] / info->num_out_ch : 0;
    int s = (int)lround(sqrt((double)ss));
    if (!is_conv3(last) || s < 1 || s > 16 || (int64_t)s * s * info->num_out_ch != last->shape[0])
        return vqc_error_set(VQC_ERR_MODEL,
                             "SRVGGNetCompact's last conv body.%d does not give "
                             "%d channels times a square scale (of at most 16)",
                             n - 1, info->num_out_ch);
    info->scale = s;
    return 0;
}

int vqc_esrgan_inspect(const vqc_tensor_map *map, vqc_esrgan_info *info)
{
    static const char *const keys[] = {"params_ema", "params", ""};
    memset(info, 0, sizeof *info);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char p[16];
        snprintf(p, sizeof p, "%s%s", keys[k], keys[k][0] ? "." : "");
        int rc = 1;
        if (vqc_weight_infof(map, p, "conv_first.weight"))
            rc = infer_rrdb(map, p, info);
        else if (vqc_weight_infof(map, p, "body.0.weight"))
            rc = infer_srvgg(map, p, info);
        if (rc <= 0) {
            info->key = keys[k];
            for (size_t i = 0; rc == 0 && i < vqc_tmap_count(map); i++) {
                const vqc_tensor_info *t = vqc_tmap_at(map, i);
                if (strncmp(t->name, p, strlen(p)) == 0)
                    info->n_params += t->numel;
            }
            return rc;
        }
    }
    return vqc_error_set(VQC_ERR_MODEL, "no Real-ESRGAN network (RRDBNet conv_first or "
                                        "SRVGGNetCompact body.0) under params_ema, params or the "
                                        "top level");
}

/* ---- loading ------------------------------------------------------------------------------- */

static int load_conv(vqc_esrgan *m, const vqc_tensor_map *map, int i, int64_t out, int64_t in,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int load_conv(vqc_esrgan *m, const vqc_tensor_map *map, int i, int64_t out, int64_t in,
                     const char *fmt, ...)
{
    char base[200], name[220];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(base, sizeof base, fmt, ap);
    va_end(ap);
    int64_t ws[4] = {out, in, 3, 3}, bs[1] = {out};
    snprintf(name, sizeof name, "%s.weight", base);
    m->convs[i].w = vqc_weight(map, m->prefix, name, m->dev, m->dt, 4, ws);
    snprintf(name, sizeof name, "%s.bias", base);
    m->convs[i].b = m->convs[i].w ? vqc_weight(map, m->prefix, name, m->dev, m->dt, 1, bs) : NULL;
    return m->convs[i].b ? 0 : VQC_ERR_MODEL;
}

static int load_rrdb(vqc_esrgan *m, const vqc_tensor_map *map)
{
    const vqc_esrgan_info *in = &m->info;
    int nf = in->num_feat, gc = in->num_grow_ch, nb = in->num_block, i = 0, rc = 0;
    int unshuffle = in->scale == 4 ? 1 : in->scale == 2 ? 4 : 16;
    rc = load_conv(m, map, i++, nf, (int64_t)in->num_in_ch * unshuffle, "conv_first");
    for (int b = 0; b < nb && !rc; b++)
        for (int r = 1; r <= 3 && !rc; r++)
            for (int c = 1; c <= 5 && !rc; c++)
                rc = load_conv(m, map, i++, c == 5 ? nf : gc, nf + (c - 1) * gc,
                               "body.%d.rdb%d.conv%d", b, r, c);
    static const char *const tail[] = {"conv_body", "conv_up1", "conv_up2", "conv_hr"};
    for (int t = 0; t < 4 && !rc; t++)
        rc = load_conv(m, map, i++, nf, nf, "%s", tail[t]);
    return rc ? rc : load_conv(m, map, i++, in->num_out_ch, nf, "conv_last");
}

static int load_srvgg(vqc_esrgan *m, const vqc_tensor_map *map)
{
    const vqc_esrgan_info *in = &m->info;
    int nf = in->num_feat, nc = in->num_block, s = in->scale, rc = 0;
    for (int i = 0; i <= nc && !rc; i++) {
        rc = load_conv(m, map, i, nf, i ? nf : in->num_in_ch, "body.%d", 2 * i);
        char name[64];
        snprintf(name, sizeof name, "body.%d.weight", 2 * i + 1);
        int64_t shape[1] = {nf};
        m->prelu[i] = rc ? NULL : vqc_weight(map, m->prefix, name, m->dev, m->dt, 1, shape);
        rc = rc ? rc : m->prelu[i] ? 0 : VQC_ERR_MODEL;
    }
    return rc ? rc
              : load_conv(m, map, nc + 1, (int64_t)in->num_out_ch * s * s, nf, "body.%d",
                          2 * nc + 2);
}

int vqc_esrgan_load_map(const vqc_tensor_map *map, vqt_device dev, vqc_dtype dt, vqc_esrgan **out)
{
    *out = NULL;
    vqc_esrgan *m = calloc(1, sizeof *m);
    if (!m)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    m->dev = dev;
    m->dt = dt;
    int rc = vqc_esrgan_inspect(map, &m->info);
    if (!rc) {
        snprintf(m->prefix, sizeof m->prefix, "%s%s", m->info.key, m->info.key[0] ? "." : "");
        bool rrdb = m->info.arch == VQC_ESRGAN_RRDB;
        m->nconv = rrdb ? 1 + 15 * m->info.num_block + 5 : m->info.num_block + 2;
        m->nprelu = rrdb ? 0 : m->info.num_block + 1;
        m->convs = calloc((size_t)m->nconv, sizeof *m->convs);
        m->prelu = calloc((size_t)m->nprelu + 1, sizeof *m->prelu);
        rc = !m->convs || !m->prelu ? vqc_error_set(VQC_ERR_NOMEM, "out of memory")
             : rrdb                 ? load_rrdb(m, map)
                                    : load_srvgg(m, map);
    }
    if (rc) {
        vqc_esrgan_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int vqc_esrgan_load(const char *path, vqt_device dev, vqc_dtype dt, vqc_esrgan **out)
{
    *out = NULL;
    vqc_tensor_map *map = NULL;
    int rc = vqc_tmap_open(path, &map);
    rc = rc ? rc : vqc_esrgan_load_map(map, dev, dt, out);
    vqc_tmap_free(map);
    return rc ? vqc_error_wrap(rc, "%s", path) : 0;
}

void vqc_esrgan_free(vqc_esrgan *m)
{
    if (!m)
        return;
    for (int i = 0; m->convs && i < m->nconv; i++) {
        vqt_free(m->convs[i].w);
        vqt_free(m->convs[i].b);
    }
    for (int i = 0; m->prelu && i < m->nprelu; i++)
        vqt_free(m->prelu[i]);
    free(m->convs);
    free(m->prelu);
    free(m);
}

const vqc_esrgan_info *vqc_esrgan_get_info(const vqc_esrgan *m)
{
    return &m->info;
}

vqt_device vqc_esrgan_device(const vqc_esrgan *m)
{
    return m->dev;
}

vqc_dtype vqc_esrgan_dtype(const vqc_esrgan *m)
{
    return m->dt;
}

/* ---- forward ------------------------------------------------------------------------------- */
/* A NULL from any op propagates (vqt ops fail on a NULL argument without a new message). Each
 * block runs in its own scope and the previous feature map is freed as soon as the next exists,
 * so memory is a few feature maps of the input's size, whatever num_block. */

static vqt_tensor *conv(const conv_t *c, const vqt_tensor *x)
{
    return vqt_conv2d(x, c->w, c->b, 1, 1, 1, 1, 1);
}

/* conv, then LeakyReLU 0.2 in place: the tail's maps are the largest (64 channels at 2x and 4x
 * the input's size), so at most the input and the output of one conv exist at a time, as in
 * RRDBNet's own in-place nn.LeakyReLU. */
static vqt_tensor *conv_lrelu(const conv_t *c, const vqt_tensor *x)
{
    vqt_tensor *y = conv(c, x);
    return y && vqt_leaky_relu_(y, 0.2) == 0 ? y : NULL;
}

static vqt_tensor *scope_out(vqt_tensor *t)
{
    vqt_keep(t);
    vqt_scope_end();
    return t;
}

/* Replaces *cur by next, freeing the old handle. */
static void advance(vqt_tensor **cur, vqt_tensor *next)
{
    vqt_free(*cur);
    *cur = next;
}

/* ResidualDenseBlock: five convs over the growing concatenation, x + 0.2 * conv5. */
static vqt_tensor *dense_block(const conv_t *c, const vqt_tensor *x)
{
    vqt_scope_begin();
    vqt_tensor *f[5] = {vqt_ref(x)};
    for (int k = 0; k < 4; k++)
        f[k + 1] = conv_lrelu(&c[k], vqt_cat(f, k + 1, 1));
    vqt_tensor *x5 = conv(&c[4], vqt_cat(f, 5, 1));
    return scope_out(vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, x5, 0.2), x));
}

/* RRDB: three dense blocks, x + 0.2 * their output. */
static vqt_tensor *rrdb_block(const conv_t *c, const vqt_tensor *x)
{
    vqt_scope_begin();
    vqt_tensor *h = vqt_ref(x);
    for (int r = 0; r < 3; r++)
        advance(&h, dense_block(c + 5 * r, h));
    return scope_out(vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, h, 0.2), x));
}

/* Nearest x2 upsampling, conv, LeakyReLU 0.2; the upsampled map is freed once convolved. */
static vqt_tensor *up_conv(const conv_t *c, const vqt_tensor *x)
{
    vqt_scope_begin();
    vqt_tensor *u =
        vqt_interpolate(x, vqt_size(x, 2) * 2, vqt_size(x, 3) * 2, VQT_INTERP_NEAREST, false);
    vqt_tensor *y = conv_lrelu(c, u);
    vqt_free(u);
    return scope_out(y);
}

static vqt_tensor *forward_rrdb(const vqc_esrgan *m, const vqt_tensor *x)
{
    const conv_t *c = m->convs, *tail = c + 1 + 15 * m->info.num_block;
    int s = m->info.scale;
    vqt_scope_begin();
    vqt_tensor *in0 = s == 4 ? vqt_ref(x) : vqt_pixel_unshuffle(x, s == 2 ? 2 : 4);
    vqt_tensor *in = vqt_channels_last(in0);
    vqt_free(in0);
    vqt_tensor *feat = conv(&c[0], in), *h = vqt_ref(feat);
    vqt_free(in);
    for (int b = 0; b < m->info.num_block; b++)
        advance(&h, rrdb_block(c + 1 + 15 * b, h));
    advance(&h, conv(&tail[RRDB_TAIL_BODY], h));
    advance(&feat, vqt_binary(VQT_ADD, feat, h));
    vqt_free(h);
    advance(&feat, up_conv(&tail[RRDB_TAIL_UP1], feat));
    advance(&feat, up_conv(&tail[RRDB_TAIL_UP2], feat));
    advance(&feat, conv_lrelu(&tail[RRDB_TAIL_HR], feat));
    return scope_out(conv(&tail[RRDB_TAIL_LAST], feat));
}

static vqt_tensor *forward_srvgg(const vqc_esrgan *m, const vqt_tensor *x)
{
    int nc = m->info.num_block, s = m->info.scale;
    vqt_scope_begin();
    vqt_tensor *h = vqt_ref(x);
    for (int i = 0; i <= nc; i++)
        advance(&h, vqt_prelu(conv(&m->convs[i], h), m->prelu[i]));
    advance(&h, vqt_pixel_shuffle(conv(&m->convs[nc + 1], h), s));
    vqt_tensor *base =
        vqt_interpolate(x, vqt_size(x, 2) * s, vqt_size(x, 3) * s, VQT_INTERP_NEAREST, false);
    return scope_out(vqt_binary(VQT_ADD, h, base));
}

vqt_tensor *vqc_esrgan_forward(const vqc_esrgan *m, const vqt_tensor *x)
{
    bool grad = vqt_set_grad_enabled(false);
    vqt_tensor *y = m->info.arch == VQC_ESRGAN_RRDB ? forward_rrdb(m, x) : forward_srvgg(m, x);
    vqt_set_grad_enabled(grad);
    if (!y)
        vqc_torch_fail("Real-ESRGAN forward");
    return y;
}

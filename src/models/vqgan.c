/* VQGAN weights and forward passes (see vqgan.h). The architecture is inferred in
 * vqgan_arch.c; this file builds the module tree from the weights and runs it. */
#include "models/vqgan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/attention.h"
#include "models/vqgan_arch.h"
#include "models/vqgan_internal.h"
#include "models/weights.h"
#include "util/error.h"
#include "util/torch_error.h"

/* ---- loading --------------------------------------------------------------------------- */

typedef struct {
    const vqc_tensor_map *map;
    vqc_weight_file *file; /* non-NULL: weights view the file where they can (see weights.h) */
    const char *prefix;
    vqc_vqgan *m;
    int cap;
} loader_t;

static vqt_tensor *load_one(loader_t *ld, const char *name)
{
    vqt_tensor *t =
        ld->file ? vqc_weight_view(ld->file, ld->prefix, name, ld->m->dev, VQC_DTYPE_F32, -1, NULL)
                 : vqc_weight(ld->map, ld->prefix, name, ld->m->dev, VQC_DTYPE_F32, -1, NULL);
    if (!t)
        return NULL;
    if (ld->m->nhandles == ld->cap) {
        ld->cap = ld->cap ? ld->cap * 2 : 256;
        vqt_tensor **h = realloc(ld->m->handles, (size_t)ld->cap * sizeof *h);
        if (!h) {
            vqt_free(t);
            vqc_error_set(VQC_ERR_NOMEM, "out of memory loading weights");
            return NULL;
        }
        ld->m->handles = h;
    }
    ld->m->handles[ld->m->nhandles++] = t;
    return t;
}

/* Loads "<base>.weight" and "<base>.bias". */
static int load_conv(loader_t *ld, conv_t *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int load_conv(loader_t *ld, conv_t *c, const char *fmt, ...)
{
    char base[256], name[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(base, sizeof base, fmt, ap);
    va_end(ap);
    snprintf(name, sizeof name, "%s.weight", base);
    if (!(c->w = load_one(ld, name)))
        return VQC_ERR_MODEL;
    snprintf(name, sizeof name, "%s.bias", base);
    if (!(c->b = load_one(ld, name)))
        return VQC_ERR_MODEL;
    return 0;
}

static int load_resblock(loader_t *ld, resblock_t *r, const char *base)
{
    int rc = 0;
    rc = rc ? rc : load_conv(ld, &r->norm1, "%s.norm1", base);
    rc = rc ? rc : load_conv(ld, &r->conv1, "%s.conv1", base);
    rc = rc ? rc : load_conv(ld, &r->norm2, "%s.norm2", base);
    rc = rc ? rc : load_conv(ld, &r->conv2, "%s.conv2", base);
    if (rc)
        return rc;
    char name[300];
    snprintf(name, sizeof name, "%s.nin_shortcut.weight", base);
    if (vqc_weight_has(ld->map, ld->prefix, name))
        return load_conv(ld, &r->shortcut, "%s.nin_shortcut", base);
    snprintf(name, sizeof name, "%s.conv_shortcut.weight", base);
    if (vqc_weight_has(ld->map, ld->prefix, name)) {
        r->shortcut_pad = 1;
        return load_conv(ld, &r->shortcut, "%s.conv_shortcut", base);
    }
    return 0;
}

static int load_attn(loader_t *ld, attn_t *a, const char *base)
{
    int rc = 0;
    rc = rc ? rc : load_conv(ld, &a->norm, "%s.norm", base);
    rc = rc ? rc : load_conv(ld, &a->q, "%s.q", base);
    rc = rc ? rc : load_conv(ld, &a->k, "%s.k", base);
    rc = rc ? rc : load_conv(ld, &a->v, "%s.v", base);
    rc = rc ? rc : load_conv(ld, &a->proj, "%s.proj_out", base);
    return rc;
}

static int load_level(loader_t *ld, level_t *lv, const char *coder, const char *dir, int i,
                      int nblocks, bool attn, bool resample)
{
    char base[256];
    lv->nblocks = nblocks;
    lv->blocks = calloc((size_t)nblocks, sizeof *lv->blocks);
    lv->attns = attn ? calloc((size_t)nblocks, sizeof *lv->attns) : NULL;
    if (!lv->blocks || (attn && !lv->attns))
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    for (int b = 0; b < nblocks; b++) {
        snprintf(base, sizeof base, "%s.%s.%d.block.%d", coder, dir, i, b);
        int rc = load_resblock(ld, &lv->blocks[b], base);
        if (rc)
            return rc;
        snprintf(base, sizeof base, "%s.%s.%d.attn.%d", coder, dir, i, b);
        if (attn && (rc = load_attn(ld, &lv->attns[b], base)))
            return rc;
    }
    if (!resample)
        return 0;
    return load_conv(ld, &lv->resample, "%s.%s.%d.%s.conv", coder, dir, i,
                     dir[0] == 'd' ? "downsample" : "upsample");
}

static int load_coder(loader_t *ld, coder_t *c, bool decoder)
{
    const vqc_vqgan_info *in = &ld->m->info;
    const char *name = decoder ? "decoder" : "encoder";
    int rc = load_conv(ld, &c->conv_in, "%s.conv_in", name);
    for (int i = 0; !rc && i < in->num_levels; i++) {
        bool resample = decoder ? i != 0 : i != in->num_levels - 1;
        rc = load_level(ld, &c->levels[i], name, decoder ? "up" : "down", i,
                        in->num_res_blocks + (decoder ? 1 : 0),
                        decoder ? in->dec_attn[i] : in->enc_attn[i], resample);
    }
    char base[64];
    snprintf(base, sizeof base, "%s.mid.block_1", name);
    rc = rc ? rc : load_resblock(ld, &c->mid1, base);
    snprintf(base, sizeof base, "%s.mid.attn_1", name);
    rc = rc ? rc : load_attn(ld, &c->mid_attn, base);
    snprintf(base, sizeof base, "%s.mid.block_2", name);
    rc = rc ? rc : load_resblock(ld, &c->mid2, base);
    rc = rc ? rc : load_conv(ld, &c->norm_out, "%s.norm_out", name);
    rc = rc ? rc : load_conv(ld, &c->conv_out, "%s.conv_out", name);
    return rc;
}

static int load_quantizer(loader_t *ld)
{
    vqc_vqgan *m = ld->m;
    int rc = load_conv(ld, &m->quant_conv, "quant_conv");
    rc = rc ? rc : load_conv(ld, &m->post_quant_conv, "post_quant_conv");
    if (rc)
        return rc;
    if (m->info.kind == VQC_VQGAN_GUMBEL) {
        if ((rc = load_conv(ld, &m->proj, "quantize.proj")))
            return rc;
        m->codebook = load_one(ld, "quantize.embed.weight");
    } else {
        m->codebook = load_one(ld, "quantize.embedding.weight");
    }
    if (!m->codebook)
        return VQC_ERR_MODEL;
    vqt_tensor *sq = vqt_unary(VQT_SQUARE, m->codebook);
    int64_t dim = 1;
    m->codebook_sq = sq ? vqt_persist(vqt_reduce(VQT_SUM, sq, 1, &dim, false)) : NULL;
    vqt_free(sq);
    if (!m->codebook_sq)
        return vqc_torch_fail("codebook");
    return 0;
}

/* The decoder's segments in the order they run. */
static int plan_segments(vqc_vqgan *m)
{
    int cap = 5;
    for (int i = 0; i < m->info.num_levels; i++)
        cap += m->dec.levels[i].nblocks + 1;
    m->segs = calloc((size_t)cap, sizeof *m->segs);
    if (!m->segs)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    int n = 0;
    m->segs[n++] = (struct segment){m, SEG_HEAD, 0, 0};
    m->segs[n++] = (struct segment){m, SEG_MID1, 0, 0};
    m->segs[n++] = (struct segment){m, SEG_MID_ATTN, 0, 0};
    m->segs[n++] = (struct segment){m, SEG_MID2, 0, 0};
    for (int i = m->info.num_levels - 1; i >= 0; i--) {
        for (int b = 0; b < m->dec.levels[i].nblocks; b++)
            m->segs[n++] = (struct segment){m, SEG_BLOCK, i, b};
        if (m->dec.levels[i].resample.w)
            m->segs[n++] = (struct segment){m, SEG_UP, i, 0};
    }
    m->segs[n++] = (struct segment){m, SEG_TAIL, 0, 0};
    m->nsegs = n;
    return 0;
}

/* Loads from map; with `file` (which owns map) the weights view the file instead of copies. */
static int load_from(const vqc_tensor_map *map, vqc_weight_file *file, const char *yaml,
                     vqt_device dev, vqc_vqgan **out)
{
    *out = NULL;
    vqc_vqgan *m = calloc(1, sizeof *m);
    if (!m)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    m->dev = dev;
    m->dec_dtype = VQC_DTYPE_F32;
    m->enc.fused_from = m->dec.fused_from = m->fused_pending = -1;
    const char *prefix = NULL;
    int rc = vqc_vqgan_arch_infer(map, &m->info, &prefix);
    if (!rc && yaml)
        rc = vqc_vqgan_arch_check_yaml(&m->info, yaml);
    bool grad = vqt_set_grad_enabled(false);
    loader_t ld = {map, file, prefix, m, 0};
    rc = rc ? rc : load_coder(&ld, &m->enc, false);
    rc = rc ? rc : load_coder(&ld, &m->dec, true);
    rc = rc ? rc : load_quantizer(&ld);
    vqt_set_grad_enabled(grad);
    if (rc) {
        vqc_vqgan_free(m);
        return rc;
    }
    rc = plan_segments(m);
    if (rc) {
        vqc_vqgan_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int vqc_vqgan_load_map(const vqc_tensor_map *map, const char *yaml, vqt_device dev, vqc_vqgan **out)
{
    return load_from(map, NULL, yaml, dev, out);
}

/* The weights view the mapped file (zero-copy, see weights.h): loading copies nothing, the
 * encoder's weights stay on disk until an init image needs them, and the map lives as long as
 * the weights that view it. */
int vqc_vqgan_load(const char *path, const char *yaml, vqt_device dev, vqc_vqgan **out)
{
    *out = NULL;
    vqc_tensor_map *map = NULL;
    int rc = vqc_tmap_open(path, &map);
    if (rc)
        return rc;
    vqc_weight_file *file = vqc_weight_file_new(map);
    if (!file) {
        vqc_tmap_free(map);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    }
    rc = load_from(map, file, yaml, dev, out);
    vqc_weight_file_unref(file); /* the views hold their own references */
    if (rc)
        return vqc_error_wrap(rc, "%s", path);
    return 0;
}

static void free_coder(coder_t *c, int nlevels)
{
    for (int i = 0; i < nlevels; i++) {
        free(c->levels[i].blocks);
        free(c->levels[i].attns);
    }
}

void vqc_vqgan_free(vqc_vqgan *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nhandles; i++)
        vqt_free(m->handles[i]);
    free(m->handles);
    vqt_free(m->codebook_sq);
    free_coder(&m->enc, m->info.num_levels);
    free_coder(&m->dec, m->info.num_levels);
    free(m->segs);
    free(m);
}

const vqc_vqgan_info *vqc_vqgan_get_info(const vqc_vqgan *m)
{
    return &m->info;
}

vqt_device vqc_vqgan_device(const vqc_vqgan *m)
{
    return m->dev;
}

const vqt_tensor *vqc_vqgan_codebook(const vqc_vqgan *m)
{
    return m->codebook;
}

/* ---- forward --------------------------------------------------------------------------- */
/* These run inside a vqt scope: intermediates are freed by vqt_scope_end(), and a NULL from any
 * op propagates (every vqt op returns NULL when given NULL). */

static vqt_tensor *conv(const conv_t *c, const vqt_tensor *x, int stride, int pad)
{
    return vqt_conv2d(x, c->w, c->b, stride, stride, pad, pad, 1);
}

static vqt_tensor *norm(const conv_t *n, const vqt_tensor *x)
{
    return vqt_group_norm(x, 32, n->w, n->b, 1e-6);
}

/* silu(norm(x)) as one op that keeps only x for the backward pass (see shim.h). */
static vqt_tensor *norm_silu(const conv_t *n, const vqt_tensor *x)
{
    return vqt_group_norm_silu(x, 32, n->w, n->b, 1e-6);
}

static vqt_tensor *resblock(const resblock_t *r, const vqt_tensor *x)
{
    vqt_tensor *h = conv(&r->conv1, norm_silu(&r->norm1, x), 1, 1);
    h = conv(&r->conv2, norm_silu(&r->norm2, h), 1, 1);
    const vqt_tensor *skip = r->shortcut.w ? conv(&r->shortcut, x, 1, r->shortcut_pad) : x;
    return vqt_binary(VQT_ADD, skip, h);
}

/* [N, C, S] as tokens [N, S, C], contiguous as the fused kernels want them (a view when the
 * decoder runs channels last). */
static vqt_tensor *tokens(const vqt_tensor *t)
{
    return vqt_contiguous(vqt_transpose(t, 1, 2));
}

static vqt_tensor *attn(const coder_t *c, const attn_t *a, const vqt_tensor *x)
{
    int64_t s[4];
    if (vqt_shape(x, s) != 4)
        return NULL;
    vqt_tensor *h = norm(&a->norm, x);
    int64_t flat[3] = {s[0], s[1], s[2] * s[3]};
    vqt_tensor *q = vqt_reshape(conv(&a->q, h, 1, 0), 3, flat);
    vqt_tensor *k = vqt_reshape(conv(&a->k, h, 1, 0), 3, flat);
    vqt_tensor *v = vqt_reshape(conv(&a->v, h, 1, 0), 3, flat);
    vqt_tensor *o; /* [N, C, S] */
    bool fused = c->fused_from >= 0 && s[2] * s[3] >= c->fused_from;
    if (fused) {
        /* one head of width C: the same scale 1/sqrt(C), and no [S, S] scores kept */
        o = vqt_transpose(vqc_attention(tokens(q), tokens(k), tokens(v), 1, NULL, true), 1, 2);
    } else {
        /* w[b, i, j] = sum_c q[b, c, i] k[b, c, j] / sqrt(C); softmax over j. */
        vqt_tensor *w = vqt_matmul(vqt_transpose(q, 1, 2), k);
        vqc_dtype dt = vqt_dtype(x);
        if (dt != VQC_DTYPE_F32) /* the softmax in float32 in a reduced-precision decoder */
            w = vqt_to(w, vqt_device_of(x), VQC_DTYPE_F32);
        w = vqt_softmax(vqt_binary_s(VQT_MUL, w, pow((double)s[1], -0.5)), 2);
        if (dt != VQC_DTYPE_F32)
            w = vqt_to(w, vqt_device_of(x), dt);
        /* out[b, c, i] = sum_j v[b, c, j] w[b, i, j] */
        o = vqt_matmul(v, vqt_transpose(w, 1, 2));
    }
    o = vqt_reshape(o, 4, s);
    if (fused && !vqt_is_channels_last(x)) /* the fused output is channels last */
        o = vqt_contiguous(o);
    o = conv(&a->proj, o, 1, 0);
    return vqt_binary(VQT_ADD, x, o);
}

static vqt_tensor *mid(const coder_t *c, vqt_tensor *h)
{
    h = resblock(&c->mid1, h);
    h = attn(c, &c->mid_attn, h);
    return resblock(&c->mid2, h);
}

static vqt_tensor *tail(const coder_t *c, const vqt_tensor *h)
{
    return conv(&c->conv_out, norm_silu(&c->norm_out, h), 1, 1);
}

static vqt_tensor *level_blocks(const coder_t *c, const level_t *lv, const vqt_tensor *x)
{
    vqt_tensor *h = (vqt_tensor *)x; /* not modified: every op makes a new handle */
    for (int b = 0; b < lv->nblocks; b++) {
        h = resblock(&lv->blocks[b], h);
        if (lv->attns)
            h = attn(c, &lv->attns[b], h);
    }
    return h;
}

static vqt_tensor *run_encoder(const vqc_vqgan *m, const vqt_tensor *x)
{
    const coder_t *c = &m->enc;
    vqt_tensor *h = conv(&c->conv_in, x, 1, 1);
    static const int64_t pad[4] = {0, 1, 0, 1};
    for (int i = 0; i < m->info.num_levels; i++) {
        h = level_blocks(c, &c->levels[i], h);
        if (c->levels[i].resample.w)
            h = conv(&c->levels[i].resample, vqt_pad(h, 4, pad, VQT_PAD_CONSTANT, 0.0), 2, 0);
    }
    return tail(c, mid(c, h));
}

/* One segment of post_quant_conv + decoder (see plan_segments). */
static vqt_tensor *decoder_segment(void *arg, const vqt_tensor *h)
{
    const struct segment *sg = arg;
    const vqc_vqgan *m = sg->m;
    const coder_t *c = &m->dec;
    const level_t *lv = &c->levels[sg->level];
    vqt_tensor *out;
    int64_t s[4];
    switch (sg->kind) {
    case SEG_HEAD: return conv(&c->conv_in, conv(&m->post_quant_conv, h, 1, 0), 1, 1);
    case SEG_MID1: return resblock(&c->mid1, h);
    case SEG_MID_ATTN: return attn(c, &c->mid_attn, h);
    case SEG_MID2: return resblock(&c->mid2, h);
    case SEG_BLOCK:
        out = resblock(&lv->blocks[sg->block], h);
        return lv->attns ? attn(c, &lv->attns[sg->block], out) : out;
    case SEG_UP:
        if (vqt_shape(h, s) != 4)
            return NULL;
        out = vqt_interpolate(h, s[2] * 2, s[3] * 2, VQT_INTERP_NEAREST, false);
        return conv(&lv->resample, out, 1, 1);
    case SEG_TAIL: return tail(c, h);
    }
    return NULL;
}

/* The segments in order, each checkpointed in low-memory mode (only their inputs are kept for
 * the backward pass; each is computed again when the gradient reaches it). Otherwise each runs
 * in a scope of its own, so that its intermediate handles are freed when it ends: what the
 * backward pass needs autograd holds anyway, and the rest would otherwise stay allocated until
 * the whole decode is done. */
static vqt_tensor *run_decode(const vqc_vqgan *m, const vqt_tensor *z)
{
    bool reduced = m->dec_dtype != VQC_DTYPE_F32;
    const vqt_tensor *h = reduced ? vqt_to(z, m->dev, m->dec_dtype) : z;
    if (m->dec_channels_last)
        h = vqt_channels_last(h);
    vqt_tensor *out = NULL, *prev = NULL;
    for (int i = 0; i < m->nsegs; i++) {
        void *seg = (void *)&m->segs[i]; /* read only */
        if (m->low_memory) {
            out = vqt_checkpoint(decoder_segment, seg, h);
        } else {
            vqt_scope_begin();
            out = vqt_keep(decoder_segment(seg, h));
            vqt_scope_end();
            vqt_free(prev); /* the previous segment's output: the next one has been made */
            prev = out;
        }
        h = out;
    }
    if (m->dec_channels_last) /* callers read pictures as NCHW memory */
        out = vqt_contiguous(out);
    return reduced ? vqt_to(out, m->dev, VQC_DTYPE_F32) : out;
}

/* Runs fn inside a scope, keeps its result, and turns NULL into a recorded error. */
static vqt_tensor *scoped(vqt_tensor *(*fn)(const vqc_vqgan *, const vqt_tensor *),
                          const vqc_vqgan *m, const vqt_tensor *x, const char *what)
{
    vqt_scope_begin();
    return vqc_torch_scope_end(fn(m, x), "VQGAN %s", what);
}

static int check_input(const vqc_vqgan *m, const vqt_tensor *x, int channels, int mult,
                       const char *what)
{
    int64_t s[8];
    int nd = x ? vqt_shape(x, s) : -1;
    if (nd != 4 || s[1] != channels)
        return vqc_error_set(VQC_ERR_USAGE, "VQGAN %s: input must be [N, %d, H, W]", what,
                             channels);
    if (mult > 1 && (s[2] % mult || s[3] % mult))
        return vqc_error_set(VQC_ERR_USAGE, "VQGAN %s: size %lldx%lld is not a multiple of %d",
                             what, (long long)s[3], (long long)s[2], mult);
    (void)m;
    return 0;
}

vqt_tensor *vqc_vqgan_encoder(const vqc_vqgan *m, const vqt_tensor *x)
{
    if (check_input(m, x, m->info.in_channels, m->info.downsample, "encode"))
        return NULL;
    return scoped(run_encoder, m, x, "encoder");
}

static vqt_tensor *run_encode(const vqc_vqgan *m, const vqt_tensor *x)
{
    return conv(&m->quant_conv, run_encoder(m, x), 1, 0);
}

vqt_tensor *vqc_vqgan_encode(const vqc_vqgan *m, const vqt_tensor *x)
{
    if (check_input(m, x, m->info.in_channels, m->info.downsample, "encode"))
        return NULL;
    return scoped(run_encode, m, x, "encode");
}

vqt_tensor *vqc_vqgan_decode(const vqc_vqgan *m, const vqt_tensor *z_q)
{
    if (check_input(m, z_q, m->info.embed_dim, 1, "decode"))
        return NULL;
    if (m->fused_pending >= 0) /* the model's settings, not its weights: a one-time check */
        vqgan_fused_check_due((vqc_vqgan *)m, vqt_size(z_q, 2), vqt_size(z_q, 3));
    return scoped(run_decode, m, z_q, "decode");
}

/* Indices [N, h, w] of the nearest codebook entries of z [N, D, h, w], by
 * |z|^2 + |e|^2 - 2 z.e as taming computes it. */
static vqt_tensor *nearest_indices(const vqc_vqgan *m, const vqt_tensor *z)
{
    int64_t s[4];
    if (vqt_shape(z, s) != 4)
        return NULL;
    int64_t perm[4] = {0, 2, 3, 1}, flat[2] = {-1, s[1]}, one = 1;
    vqt_tensor *zf = vqt_reshape(vqt_permute(z, 4, perm), 2, flat);
    vqt_tensor *zsq = vqt_reduce(VQT_SUM, vqt_unary(VQT_SQUARE, zf), 1, &one, true);
    vqt_tensor *dot = vqt_matmul(zf, vqt_transpose(m->codebook, 0, 1));
    vqt_tensor *d = vqt_binary(VQT_ADD, zsq, m->codebook_sq);
    d = vqt_binary(VQT_SUB, d, vqt_binary_s(VQT_MUL, dot, 2.0));
    int64_t ishape[3] = {s[0], s[2], s[3]};
    return vqt_reshape(vqt_argmin(d, 1, false), 3, ishape);
}

static vqt_tensor *embed(const vqc_vqgan *m, const vqt_tensor *idx)
{
    int64_t s[3];
    if (vqt_shape(idx, s) != 3)
        return NULL;
    int64_t flat = -1, zs[4] = {s[0], s[1], s[2], m->info.embed_dim}, perm[4] = {0, 3, 1, 2};
    vqt_tensor *e = vqt_index_select(m->codebook, 0, vqt_reshape(idx, 1, &flat));
    return vqt_contiguous(vqt_permute(vqt_reshape(e, 4, zs), 4, perm));
}

static vqt_tensor *run_quantize(const vqc_vqgan *m, const vqt_tensor *h, vqt_tensor **indices)
{
    vqt_tensor *idx;
    if (m->info.kind == VQC_VQGAN_GUMBEL)
        idx = vqt_argmax(conv(&m->proj, h, 1, 0), 1, false);
    else
        idx = nearest_indices(m, h);
    if (indices)
        *indices = vqt_keep(idx);
    return embed(m, idx);
}

vqt_tensor *vqc_vqgan_quantize(const vqc_vqgan *m, const vqt_tensor *prequant, vqt_tensor **indices)
{
    if (indices)
        *indices = NULL;
    if (check_input(m, prequant, m->info.embed_dim, 1, "quantize"))
        return NULL;
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *zq = vqt_keep(run_quantize(m, prequant, indices));
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    if (!zq) {
        if (indices) {
            vqt_free(*indices);
            *indices = NULL;
        }
        vqc_torch_fail("VQGAN quantize");
    }
    return zq;
}

vqt_tensor *vqc_vqgan_nearest(const vqc_vqgan *m, const vqt_tensor *z, vqt_tensor **indices)
{
    if (indices)
        *indices = NULL;
    if (check_input(m, z, m->info.embed_dim, 1, "nearest"))
        return NULL;
    vqt_scope_begin();
    bool grad = vqt_set_grad_enabled(false);
    vqt_tensor *idx = nearest_indices(m, z);
    vqt_tensor *zq = embed(m, idx);
    vqt_set_grad_enabled(grad);
    vqt_tensor *out = vqt_keep(vqt_replace_grad(zq, z));
    if (indices && out)
        *indices = vqt_keep(idx);
    vqt_scope_end();
    if (!out)
        vqc_torch_fail("VQGAN nearest");
    return out;
}

vqt_tensor *vqc_vqgan_embed(const vqc_vqgan *m, const vqt_tensor *indices)
{
    vqt_scope_begin();
    return vqc_torch_scope_end(embed(m, indices), "VQGAN embed");
}

int vqc_vqgan_inspect(const vqc_tensor_map *map, vqc_vqgan_info *info)
{
    const char *prefix;
    return vqc_vqgan_arch_infer(map, info, &prefix);
}

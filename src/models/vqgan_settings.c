/* The VQGAN decoder's run-time settings (see vqgan.h): low-memory decoding, its type and memory
 * layout (converting its weights once), and fused attention. */
#include <stdio.h>

#include "models/attention.h"
#include "models/vqgan_internal.h"
#include "util/error.h"
#include "util/torch_error.h"

void vqc_vqgan_set_low_memory(vqc_vqgan *m, bool on)
{
    if (m)
        m->low_memory = on;
}

bool vqc_vqgan_low_memory(const vqc_vqgan *m)
{
    return m && m->low_memory;
}

/* How convert_decoder changes each decoder weight: to a type, or 4-D ones to a layout. */
typedef struct {
    vqc_dtype dt;      /* VQC_DTYPE_F32.. when converting the type */
    int channels_last; /* -1: keep the layout; 0: NCHW; 1: channels last */
} conversion;

/* Replaces the handle *slot (one of m->handles) by its conversion. */
static int convert_weight(vqc_vqgan *m, vqt_tensor **slot, conversion how)
{
    if (!*slot)
        return 0;
    vqt_tensor *t;
    if (how.channels_last < 0)
        t = vqt_to(*slot, m->dev, how.dt);
    else if (vqt_ndim(*slot) != 4)
        return 0;
    else
        t = how.channels_last ? vqt_channels_last(*slot) : vqt_contiguous(*slot);
    t = vqt_persist(t);
    if (!t)
        return vqc_torch_fail("decoder weights to %s", how.channels_last < 0
                                                           ? vqc_dtype_name(how.dt)
                                                           : "another memory layout");
    for (int i = 0; i < m->nhandles; i++)
        if (m->handles[i] == *slot)
            m->handles[i] = t;
    vqt_free(*slot);
    *slot = t;
    return 0;
}

static int convert_conv(vqc_vqgan *m, conv_t *c, conversion how)
{
    int rc = convert_weight(m, &c->w, how);
    return rc ? rc : convert_weight(m, &c->b, how);
}

/* all[0..n-1] in order, up to the first failure. */
static int convert_convs(vqc_vqgan *m, conv_t *const *all, int n, conversion how)
{
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = convert_conv(m, all[i], how);
    return rc;
}

static int convert_resblock(vqc_vqgan *m, resblock_t *r, conversion how)
{
    conv_t *all[5] = {&r->norm1, &r->conv1, &r->norm2, &r->conv2, &r->shortcut};
    return convert_convs(m, all, 5, how);
}

static int convert_attn(vqc_vqgan *m, attn_t *a, conversion how)
{
    conv_t *all[5] = {&a->norm, &a->q, &a->k, &a->v, &a->proj};
    return convert_convs(m, all, 5, how);
}

/* Every weight of post_quant_conv and the decoder. A failure part-way leaves a mixed decoder:
 * callers free the model on error. */
static int convert_decoder(vqc_vqgan *m, conversion how)
{
    coder_t *c = &m->dec;
    bool grad = vqt_set_grad_enabled(false);
    conv_t *outer[4] = {&m->post_quant_conv, &c->conv_in, &c->norm_out, &c->conv_out};
    int rc = convert_convs(m, outer, 4, how);
    rc = rc ? rc : convert_resblock(m, &c->mid1, how);
    rc = rc ? rc : convert_attn(m, &c->mid_attn, how);
    rc = rc ? rc : convert_resblock(m, &c->mid2, how);
    for (int i = 0; i < m->info.num_levels && !rc; i++) {
        level_t *lv = &c->levels[i];
        for (int b = 0; b < lv->nblocks && !rc; b++) {
            rc = convert_resblock(m, &lv->blocks[b], how);
            if (!rc && lv->attns)
                rc = convert_attn(m, &lv->attns[b], how);
        }
        rc = rc ? rc : convert_conv(m, &lv->resample, how);
    }
    vqt_set_grad_enabled(grad);
    return rc;
}

int vqc_vqgan_set_decoder_dtype(vqc_vqgan *m, vqc_dtype dt)
{
    if (dt != VQC_DTYPE_F32 && dt != VQC_DTYPE_BF16 && dt != VQC_DTYPE_F16)
        return vqc_error_set(VQC_ERR_USAGE,
                             "decoder type %s: expected float32, bfloat16 or "
                             "float16",
                             vqc_dtype_name(dt));
    if (dt == m->dec_dtype)
        return 0;
    if (m->dec_dtype != VQC_DTYPE_F32)
        return vqc_error_set(VQC_ERR_USAGE, "the decoder is already in %s",
                             vqc_dtype_name(m->dec_dtype));
    int rc = convert_decoder(m, (conversion){dt, -1});
    if (!rc)
        m->dec_dtype = dt;
    return rc;
}

int vqc_vqgan_set_decoder_channels_last(vqc_vqgan *m, bool on)
{
    if (on == m->dec_channels_last)
        return 0;
    int rc = convert_decoder(m, (conversion){m->dec_dtype, on});
    if (!rc)
        m->dec_channels_last = on;
    return rc;
}

bool vqc_vqgan_decoder_channels_last(const vqc_vqgan *m)
{
    return m && m->dec_channels_last;
}

/* The decoder's attention widths (the middle block's, then each level's that has attention),
 * each once, in widths[0..]; returns how many. */
static int attention_widths(const vqc_vqgan *m, int64_t widths[VQC_VQGAN_MAX_LEVELS + 1])
{
    const coder_t *c = &m->dec;
    int n = 0;
    for (int i = -1; i < m->info.num_levels; i++) {
        const attn_t *a = i < 0 ? &c->mid_attn : c->levels[i].attns;
        int64_t w = a && a->q.w ? vqt_size(a->q.w, 0) : 0;
        bool seen = w <= 0;
        for (int j = 0; j < n && !seen; j++)
            seen = widths[j] == w;
        if (!seen)
            widths[n++] = w;
    }
    return n;
}

/* Checks the fused operator at each attention width (256 cells, the attention of a 256x256
 * picture at f16: the kernels are picked by the width and the type, and the check stays a few
 * milliseconds), then fuses from min_cells, or warns and leaves the reference's operators. */
static bool check_fused(vqc_vqgan *m, int64_t min_cells)
{
    char why[512] = "";
    int64_t widths[VQC_VQGAN_MAX_LEVELS + 1];
    int n = attention_widths(m, widths);
    bool ok = true;
    for (int i = 0; i < n && ok; i++)
        ok = vqc_attention_check(m->dev, m->dec_dtype, 1, widths[i], 256, 256, NULL, why,
                                 sizeof why);
    m->dec.fused_from = ok ? min_cells : -1;
    m->fused_pending = -1;
    if (!ok)
        vqc_log(VQC_LOG_WARN,
                "the VQGAN decoder's attention runs unfused (more memory for large pictures): "
                "the fused kernel %s",
                why);
    return ok;
}

bool vqc_vqgan_set_fused_attention(vqc_vqgan *m, bool on, int64_t min_cells)
{
    if (!m)
        return false;
    m->dec.fused_from = m->fused_pending = -1;
    if (!on)
        return false;
    if (min_cells <= 0)
        return check_fused(m, 0);
    /* the check waits for a decode that would use the fused path: pictures below the
     * threshold, most of them, then never pay for it at start-up */
    m->fused_pending = min_cells;
    return true;
}

void vqgan_fused_check_due(vqc_vqgan *m, int64_t h, int64_t w)
{
    /* the most cells an attention block attends over: the latent's at the lowest level, four
     * times as many for each upsampling above it */
    int64_t cells = 0, s = h * w;
    for (int i = m->info.num_levels - 1; i >= 0; i--, s *= 4)
        if (m->info.dec_attn[i] || i == m->info.num_levels - 1) /* the middle block's too */
            cells = s > cells ? s : cells;
    if (cells >= m->fused_pending)
        check_fused(m, m->fused_pending);
}

int64_t vqc_vqgan_fused_attention_from(const vqc_vqgan *m)
{
    if (!m)
        return -1;
    return m->fused_pending >= 0 ? m->fused_pending : m->dec.fused_from;
}

vqc_dtype vqc_vqgan_decoder_dtype(const vqc_vqgan *m)
{
    return m->dec_dtype;
}

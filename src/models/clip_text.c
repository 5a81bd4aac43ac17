/* CLIP: the residual attention transformer shared by both towers, and the text encoder. */
#include <stdlib.h>

#include "models/attention.h"
#include "models/clip_internal.h"
#include "util/error.h"
#include "util/torch_error.h"

/* ---- building blocks ------------------------------------------------------------------------ */

/* w in the type `dt` on x's device: w itself, or a converted copy left in the caller's scope
 * (the text tower's weights stay in the file's type, see clip.c's load_text). */
static const vqt_tensor *as_type(const vqt_tensor *w, vqc_dtype dt, const vqt_tensor *x)
{
    if (!w || !x || vqt_dtype(w) == dt)
        return w;
    return vqt_to(w, vqt_device_of(x), dt);
}

vqt_tensor *clip_layer_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b)
{
    if (!x)
        return NULL;
    vqc_dtype dt = vqt_dtype(x);
    w = as_type(w, VQC_DTYPE_F32, x);
    b = as_type(b, VQC_DTYPE_F32, x);
    if (dt == VQC_DTYPE_F32)
        return vqt_layer_norm(x, w, b, 1e-5);
    vqt_device dev = vqt_device_of(x);
    vqt_tensor *x32 = vqt_to(x, dev, VQC_DTYPE_F32);
    vqt_tensor *y32 = vqt_layer_norm(x32, w, b, 1e-5);
    vqt_tensor *y = vqt_to(y32, dev, dt);
    vqt_free(x32);
    vqt_free(y32);
    return y;
}

/* x + out_proj(attention(ln_1(x))) + mlp(ln_2(...)), inside the caller's scope. */
static vqt_tensor *block_forward(const clip_block *b, int heads, const vqt_tensor *x,
                                 const vqt_tensor *mask, bool fused)
{
    int64_t w = vqt_size(x, 2);
    vqc_dtype dt = vqt_dtype(x);
#define W(t) as_type(t, dt, x)
    vqt_tensor *qkv = vqt_linear(clip_layer_norm(x, b->ln1_w, b->ln1_b), W(b->in_w), W(b->in_b));
    vqt_tensor *q = vqt_narrow(qkv, 2, 0, w);
    vqt_tensor *k = vqt_narrow(qkv, 2, w, w);
    vqt_tensor *v = vqt_narrow(qkv, 2, 2 * w, w);
    vqt_tensor *a =
        vqt_linear(vqc_attention(q, k, v, heads, mask, fused), W(b->out_w), W(b->out_b));
    vqt_tensor *h = vqt_binary(VQT_ADD, x, a);
    vqt_tensor *f = vqt_linear(clip_layer_norm(h, b->ln2_w, b->ln2_b), W(b->fc_w), W(b->fc_b));
    vqt_tensor *g = vqt_linear(vqt_unary(VQT_QUICK_GELU, f), W(b->proj_w), W(b->proj_b));
#undef W
    return vqt_binary(VQT_ADD, h, g);
}

vqt_tensor *clip_transformer_forward(const clip_transformer *tr, const vqt_tensor *x,
                                     const vqt_tensor *mask, bool fused)
{
    vqt_scope_begin();
    const vqt_tensor *h = x;
    vqt_tensor *prev = NULL; /* the last block's output, freed once the next one exists */
    for (int i = 0; i < tr->layers && h; i++) {
        vqt_scope_begin();
        vqt_tensor *next = vqt_keep(block_forward(&tr->blocks[i], tr->heads, h, mask, fused));
        vqt_scope_end();
        vqt_free(prev); /* autograd keeps what backward needs */
        h = prev = next;
    }
    vqt_tensor *out = vqt_keep(h ? vqt_ref(h) : NULL);
    vqt_scope_end();
    return out;
}

/* ---- text encoder ---------------------------------------------------------------------------- */

/* Checks the ids and fills eot[i] = flat row index (i * L + argmax of row i). */
static int text_rows(const vqc_clip *m, const int64_t *tokens, int n, int64_t *eot)
{
    int64_t L = m->info.context_length;
    for (int i = 0; i < n; i++) {
        const int64_t *row = tokens + (int64_t)i * L;
        int64_t best = 0;
        for (int64_t j = 0; j < L; j++) {
            if (row[j] < 0 || row[j] >= m->info.vocab_size)
                return vqc_error_set(VQC_ERR_USAGE,
                                     "token id %lld at [%d, %lld] is outside "
                                     "the vocabulary (%d)",
                                     (long long)row[j], i, (long long)j, m->info.vocab_size);
            if (row[j] > row[best])
                best = j;
        }
        eot[i] = (int64_t)i * L + best;
    }
    return 0;
}

/* Embeddings + transformer + ln_final + EOT rows + projection, in the compute dtype. */
static vqt_tensor *text_forward(const vqc_clip *m, const int64_t *tokens, int n, const int64_t *eot)
{
    int64_t L = m->info.context_length, w = m->info.transformer_width;
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    int64_t nl = (int64_t)n * L, nn = n;
    vqt_tensor *ids = vqt_to(vqt_from_data(tokens, VQC_DTYPE_I64, 1, &nl, NULL, cpu, VQC_DTYPE_I64),
                             m->dev, VQC_DTYPE_I64);
    vqt_tensor *rows_emb = vqt_index_select(m->tok_emb, 0, ids); /* stored type */
    rows_emb = vqt_to(rows_emb, m->dev, m->cdt);
    vqt_tensor *emb = vqt_reshape(rows_emb, 3, (int64_t[]){n, L, w});
    vqt_tensor *x = vqt_binary(VQT_ADD, emb, as_type(m->pos_emb, m->cdt, emb));
    x = clip_transformer_forward(&m->text, x, m->causal_mask, false); /* clip.h: never fused */
    x = clip_layer_norm(x, m->lnf_w, m->lnf_b);
    vqt_tensor *rows_idx = vqt_to(
        vqt_from_data(eot, VQC_DTYPE_I64, 1, &nn, NULL, cpu, VQC_DTYPE_I64), m->dev, VQC_DTYPE_I64);
    vqt_tensor *rows = vqt_index_select(vqt_reshape(x, 2, (int64_t[]){nl, w}), 0, rows_idx);
    return vqt_matmul(rows, as_type(m->text_proj, m->cdt, rows));
}

vqt_tensor *vqc_clip_encode_text(const vqc_clip *m, const int64_t *tokens, int n)
{
    if (n <= 0 || !tokens) {
        vqc_error_set(VQC_ERR_USAGE, "encode_text: no tokens");
        return NULL;
    }
    int64_t *eot = malloc((size_t)n * sizeof *eot);
    if (!eot) {
        vqc_error_set(VQC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    vqt_tensor *out = NULL;
    if (text_rows(m, tokens, n, eot) == 0) {
        vqt_scope_begin();
        out = vqt_keep(vqt_to(text_forward(m, tokens, n, eot), m->dev, VQC_DTYPE_F32));
        vqt_scope_end();
        if (m->file) /* the views' pages: read again from the page cache next time */
            vqc_weight_drop_pages(vqc_weight_file_map(m->file));
        if (!out)
            vqc_torch_fail("encode_text");
    }
    free(eot);
    return out;
}

vqt_tensor *vqc_clip_normalize(const vqc_clip *m, const vqt_tensor *x01)
{
    if (!x01 || vqt_ndim(x01) != 4 || vqt_size(x01, 1) != 3) {
        vqc_error_set(VQC_ERR_USAGE, "normalize: expected an [N, 3, H, W] tensor");
        return NULL;
    }
    vqt_scope_begin();
    vqt_tensor *x = vqt_to(x01, m->dev, VQC_DTYPE_F32);
    vqt_tensor *y = vqt_binary(VQT_DIV, vqt_binary(VQT_SUB, x, m->norm_mean), m->norm_std);
    return vqc_torch_scope_end(y, "normalize");
}

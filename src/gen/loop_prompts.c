/* The loop's CLIP models and prompts (see loop.h): each prompt is embedded by every model, and
 * a step's prompt losses are the weighted sums over the models of each model's loss on its own
 * cutouts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen/loop_internal.h"
#include "util/error.h"
#include "util/torch_error.h"

/* ---- the CLIP models --------------------------------------------------------------------- */

int vqc_loop_add_clip(vqc_loop *L, const vqc_clip *clip, double weight)
{
    if (!isfinite(weight) || !(weight > 0))
        return vqc_error_set(VQC_ERR_USAGE, "a CLIP model's weight must be a number above 0");
    if (L->nprompts > 0)
        return vqc_error_set(VQC_ERR_USAGE, "CLIP models must be added before the prompts");
    if (L->nclips == VQC_MAX_CLIPS)
        return vqc_error_set(VQC_ERR_USAGE, "more than %d CLIP models", VQC_MAX_CLIPS);
    vqt_device d = vqc_clip_device(clip);
    if (d.type != L->dev.type || d.index != L->dev.index)
        return vqc_error_set(VQC_ERR_USAGE, "VQGAN and CLIP are on different devices");
    const vqc_clip_info *ci = vqc_clip_get_info(clip);
    if (ci->embed_dim <= 0)
        return vqc_error_set(VQC_ERR_MODEL, "CLIP model has no embedding size");
    int size = L->fixed_cut > 0 ? L->fixed_cut : ci->image_resolution;
    L->clips[L->nclips++] = (loop_clip){.clip = clip, .weight = weight, .cut_size = size};
    return 0;
}

int vqc_loop_clip_count(const vqc_loop *L)
{
    return L->nclips;
}

int vqc_loop_clip_losses(const vqc_loop *L, float *out)
{
    if (L->nclips < 2 || !L->have_share)
        return 0;
    memcpy(out, L->clip_share, (size_t)L->nclips * sizeof *out);
    return L->nclips;
}

int vqc_loop_read_shares(vqc_loop *L, vqt_tensor *const *shares)
{
    L->have_share = false;
    if (L->nclips < 2)
        return 0;
    if (!shares[0]) { /* no prompt */
        memset(L->clip_share, 0, sizeof L->clip_share);
        L->have_share = true;
        return 0;
    }
    vqt_tensor *all = vqt_stack(shares, L->nclips, 0);
    int64_t n = all ? vqt_to_host(all, L->clip_share, VQC_DTYPE_F32, L->nclips) : -1;
    vqt_free(all);
    if (n != L->nclips)
        return vqc_torch_fail("the CLIP models' losses");
    L->have_share = true;
    return 0;
}

/* ---- prompts --------------------------------------------------------------------------- */

static void prompt_free(vqc_loop *L, prompt_t *pr)
{
    for (int k = 0; k < L->nclips; k++)
        vqt_free(pr->embed[k]);
}

int vqc_loop_add_embed_prompts(vqc_loop *L, const vqt_tensor *const *embeds, int n, double weight,
                               double stop)
{
    if (!isfinite(weight) || isnan(stop))
        return vqc_error_set(VQC_ERR_USAGE, "prompt weight and stop must be numbers");
    if (n != L->nclips)
        return vqc_error_set(VQC_ERR_USAGE, "%d prompt embedding(s) for %d CLIP models", n,
                             L->nclips);
    for (int k = 0; k < n; k++) {
        int64_t d = vqt_size(embeds[k], -1);
        if (d != vqc_clip_get_info(L->clips[k].clip)->embed_dim)
            return vqc_error_set(VQC_ERR_USAGE, "prompt embedding has size %lld, CLIP's is %d",
                                 (long long)d, vqc_clip_get_info(L->clips[k].clip)->embed_dim);
    }
    prompt_t *ps = realloc(L->prompts, (size_t)(L->nprompts + 1) * sizeof *ps);
    if (!ps)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    L->prompts = ps;
    prompt_t pr = {{NULL}, weight, stop};
    for (int k = 0; k < n; k++) {
        int64_t shape[3] = {1, -1, vqt_size(embeds[k], -1)};
        vqt_scope_begin();
        vqt_tensor *e = vqt_to(embeds[k], L->dev, VQC_DTYPE_F32);
        pr.embed[k] = vqt_persist(vqt_normalize(vqt_detach(vqt_reshape(e, 3, shape)), 2, 1e-12));
        vqt_scope_end();
        if (!pr.embed[k]) {
            prompt_free(L, &pr);
            return vqc_torch_fail("prompt embedding");
        }
    }
    ps[L->nprompts++] = pr;
    return 0;
}

int vqc_loop_add_embed_prompt(vqc_loop *L, const vqt_tensor *embed, double weight, double stop)
{
    return vqc_loop_add_embed_prompts(L, &embed, 1, weight, stop);
}

/* Frees n embeddings. */
static void free_all(vqt_tensor **e, int n)
{
    for (int k = 0; k < n; k++)
        vqt_free(e[k]);
}

/* Adds the prompt of the n_models embeddings e (freed here), or frees them after a failure rc. */
static int add_encoded(vqc_loop *L, vqt_tensor **e, int rc, double weight, double stop)
{
    for (int k = 0; !rc && k < L->nclips; k++)
        if (!e[k])
            rc = VQC_ERR_RUNTIME;
    if (!rc)
        rc = vqc_loop_add_embed_prompts(L, (const vqt_tensor *const *)e, L->nclips, weight, stop);
    free_all(e, L->nclips);
    return rc;
}

/* Tokenises text for a context of ctx tokens into ids (warning when too long). */
static int tokenize(const vqc_tokenizer *tok, const char *text, int ctx, int64_t *ids)
{
    int dropped = 0, rc = vqc_tokenizer_tokenize(tok, text, ctx, ids, &dropped);
    if (!rc && dropped > 0)
        vqc_log(VQC_LOG_WARN, "prompt '%.40s%s' is too long for CLIP: %d token(s) dropped", text,
                strlen(text) > 40 ? "..." : "", dropped);
    return rc;
}

int vqc_loop_add_text_prompt(vqc_loop *L, const vqc_tokenizer *tok, const char *text, double weight,
                             double stop)
{
    /* Tokenised once, for the first model's context; again only for a model whose context
     * length differs. */
    int ctx = vqc_clip_get_info(L->clips[0].clip)->context_length;
    int64_t *ids = calloc((size_t)ctx, sizeof *ids), *other = NULL;
    if (!ids)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    int rc = tokenize(tok, text, ctx, ids);
    vqt_tensor *e[VQC_MAX_CLIPS] = {NULL};
    bool grad = vqt_set_grad_enabled(false);
    for (int k = 0; !rc && k < L->nclips; k++) {
        int ck = vqc_clip_get_info(L->clips[k].clip)->context_length;
        const int64_t *use = ids;
        if (ck != ctx) {
            free(other);
            other = calloc((size_t)ck, sizeof *other);
            rc = other ? tokenize(tok, text, ck, other)
                       : vqc_error_set(VQC_ERR_NOMEM, "out of memory");
            use = other;
        }
        e[k] = rc ? NULL : vqc_clip_encode_text(L->clips[k].clip, use, 1);
        if (!rc && !e[k])
            rc = VQC_ERR_RUNTIME;
    }
    vqt_set_grad_enabled(grad);
    free(ids);
    free(other);
    return add_encoded(L, e, rc, weight, stop);
}

vqt_tensor *vqc_loop_fit_image(const vqc_loop *L, const vqc_image *img)
{
    vqt_tensor *x = vqc_image_to_tensor(img, L->dev);
    if (!x || (img->w == L->p.width && img->h == L->p.height))
        return x;
    bool shrink = img->w >= L->p.width && img->h >= L->p.height;
    vqt_tensor *r = vqt_interpolate(x, L->p.height, L->p.width,
                                    shrink ? VQT_INTERP_AREA : VQT_INTERP_BICUBIC, false);
    vqt_free(x);
    vqt_tensor *c = vqt_clamp(r, 0.0, 1.0);
    vqt_free(r);
    return c;
}

int vqc_loop_add_image_prompt(vqc_loop *L, const vqc_image *img, double weight, double stop)
{
    bool grad = vqt_set_grad_enabled(false);
    vqt_tensor *e[VQC_MAX_CLIPS] = {NULL};
    vqt_scope_begin();
    vqt_tensor *x = vqc_loop_fit_image(L, img);
    for (int k = 0; x && k < L->nclips; k++) { /* each model its own cutouts, in turn */
        const loop_clip *m = &L->clips[k];
        vqc_cutout_params cut = L->p.cut;
        cut.cut_size = m->cut_size;
        vqt_tensor *cuts = vqc_make_cutouts(&cut, x);
        e[k] = cuts ? vqt_keep(vqc_clip_encode_image(m->clip, vqc_clip_normalize(m->clip, cuts)))
                    : NULL;
        if (!e[k])
            break;
    }
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    int rc = 0;
    for (int k = 0; k < L->nclips && !rc; k++)
        if (!e[k])
            rc = x ? VQC_ERR_RUNTIME : vqc_torch_fail("image prompt");
    return add_encoded(L, e, rc, weight, stop);
}

int vqc_loop_add_noise_prompt(vqc_loop *L, uint64_t seed, double weight)
{
    /* As the notebook: torch.empty([1, D]).normal_(generator=Generator().manual_seed(seed)) on
     * the CPU, for each model with its D; then the loop's own seed stream is re-established. */
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    vqt_tensor *e[VQC_MAX_CLIPS] = {NULL};
    int rc = 0;
    for (int k = 0; k < L->nclips; k++) {
        int64_t shape[2] = {1, vqc_clip_get_info(L->clips[k].clip)->embed_dim};
        vqt_manual_seed(seed);
        e[k] = vqt_randn(2, shape, cpu);
        if (!e[k] && !rc)
            rc = vqc_torch_fail("noise prompt");
    }
    vqt_manual_seed(L->p.seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(L->nprompts + 1));
    return add_encoded(L, e, rc, weight, -INFINITY);
}

void vqc_loop_clear_prompts(vqc_loop *L)
{
    for (int i = 0; i < L->nprompts; i++)
        prompt_free(L, &L->prompts[i]);
    free(L->prompts);
    L->prompts = NULL;
    L->nprompts = 0;
}

void vqc_loop_truncate_prompts(vqc_loop *L, int n)
{
    while (L->nprompts > n && L->nprompts > 0)
        prompt_free(L, &L->prompts[--L->nprompts]);
}

int vqc_loop_prompt_count(const vqc_loop *L)
{
    return L->nprompts;
}

/* ---- a step's CLIP losses ---------------------------------------------------------------- */

/* A model's image encoder as the body of its recorded graphs (arg: its loop_clip). */
static vqt_tensor *encode_body(void *arg, const vqt_tensor *x)
{
    return vqc_clip_encode_image(((const loop_clip *)arg)->clip, x);
}

/* fn(arg, x) through *g (made at the first call); a CUDA run that cannot record it says why,
 * once (*noted). */
static vqt_tensor *graphed(const vqc_loop *L, vqt_graphed **g, bool *noted, vqt_segment_fn fn,
                           void *arg, const vqt_tensor *x, const char *what)
{
    if (!*g && !(*g = vqt_graphed_new(fn, arg)))
        return NULL;
    vqt_tensor *y = vqt_graphed_call(*g, x);
    const char *why = vqt_graphed_why(*g);
    if (why && !*noted && L->dev.type == VQT_DEVICE_CUDA) {
        vqc_log(VQC_LOG_WARN, "%s runs without CUDA graphs (slower): %s", what, why);
        *noted = true;
    }
    return y;
}

static vqt_tensor *quantise_body(void *arg, const vqt_tensor *z)
{
    return vqc_vqgan_nearest(((const vqc_loop *)arg)->vq, z, NULL);
}

vqt_tensor *vqc_loop_quantise(vqc_loop *L, const vqt_tensor *z)
{
    /* Recorded only while its distances (cells x codebook entries, float32) stay within 64 MiB,
     * as at 512x512 with 16384 entries: a recording's pool keeps its largest transient for the
     * whole run, and at larger sizes the host's launches are a sliver of the step. */
    int64_t cells = vqt_size(z, 2) * vqt_size(z, 3);
    if (cells * vqc_vqgan_get_info(L->vq)->n_embed > ((int64_t)1 << 24))
        return vqc_vqgan_nearest(L->vq, z, NULL);
    return graphed(L, &L->q_graph, &L->q_graph_noted, quantise_body, L, z, "the codebook search");
}

static vqt_tensor *decode_body(void *arg, const vqt_tensor *zq)
{
    return vqc_vqgan_decode(((const vqc_loop *)arg)->vq, zq);
}

vqt_tensor *vqc_loop_decode(vqc_loop *L, const vqt_tensor *zq)
{
    if (vqc_vqgan_low_memory(L->vq))
        return vqc_vqgan_decode(L->vq, zq);
    return graphed(L, &L->dec_graph, &L->dec_graph_noted, decode_body, L, zq, "the decoder");
}

/* g's counts added to *replays and *eager. */
static void add_counts(const vqt_graphed *g, long long *replays, long long *eager)
{
    long long r, e;
    vqt_graphed_counts(g, &r, &e);
    *replays += r;
    *eager += e;
}

void vqc_loop_graph_counts(const vqc_loop *L, long long *replays, long long *eager)
{
    *replays = *eager = 0;
    add_counts(L->q_graph, replays, eager);
    add_counts(L->dec_graph, replays, eager);
    for (int k = 0; k < L->nclips; k++)
        add_counts(L->clips[k].graph, replays, eager);
}

void vqc_loop_free_graphs(vqc_loop *L)
{
    vqt_graphed_free(L->dec_graph);
    L->dec_graph = NULL;
    vqt_graphed_free(L->q_graph);
    L->q_graph = NULL;
    for (int k = 0; k < L->nclips; k++) {
        vqt_graphed_free(L->clips[k].graph);
        L->clips[k].graph = NULL;
    }
}

int vqc_loop_encode_cutouts(vqc_loop *L, vqt_tensor *img, vqt_tensor **fn, vqt_tensor **cuts0)
{
    for (int k = 0; k < L->nclips; k++) {
        loop_clip *m = &L->clips[k];
        vqc_cutout_params cut = L->p.cut;
        cut.cut_size = m->cut_size;
        vqt_tensor *cuts = vqc_make_cutouts(&cut, img);
        vqt_tensor *normed = cuts ? vqc_clip_normalize(m->clip, cuts) : NULL;
        vqc_loop_mark(L, PROF_CUTOUTS);
        vqt_tensor *feats =
            normed ? graphed(L, &m->graph, &m->graph_noted, encode_body, m, normed, "CLIP") : NULL;
        vqc_loop_mark(L, PROF_CLIP);
        if (!feats)
            return -1;
        if (k == 0) {
            *cuts0 = cuts;
            if (L->prof && (vqt_profile_mark_on_grad(L->prof, normed, PROF_CLIP_BWD) != 0 ||
                            vqt_profile_mark_on_grad(L->prof, img, PROF_CUTOUTS_BWD) != 0))
                return -1;
        }
        fn[k] = vqt_normalize(vqt_unsqueeze(feats, 1), 2, 1e-12);
    }
    return 0;
}

/* One model's loss for a prompt: |w| * mean(replace_grad(d, max(d, stop))) with
 * d = sign(w) * 2 asin(|a - b| / 2)^2 over cutout embeddings a and prompt embeddings b. */
static vqt_tensor *prompt_loss(const prompt_t *pr, int k, const vqt_tensor *feats_normed)
{
    vqt_tensor *d = vqt_norm(vqt_binary(VQT_SUB, feats_normed, pr->embed[k]), 2, false);
    d = vqt_binary_s(
        VQT_MUL, vqt_unary(VQT_SQUARE, vqt_unary(VQT_ASIN, vqt_binary_s(VQT_DIV, d, 2.0))), 2.0);
    d = vqt_binary_s(VQT_MUL, d, pr->weight > 0 ? 1.0 : pr->weight < 0 ? -1.0 : 0.0);
    if (pr->stop > -INFINITY) /* the value of d, the gradient of max(d, stop) */
        d = vqt_replace_grad(d, vqt_binary_s(VQT_MAX, d, pr->stop));
    return vqt_binary_s(VQT_MUL, vqt_reduce(VQT_MEAN, d, 0, NULL, false), fabs(pr->weight));
}

vqt_tensor *vqc_loop_prompt_term(const vqc_loop *L, int i, vqt_tensor *const *fn,
                                 vqt_tensor **shares)
{
    vqt_tensor *sum = NULL;
    for (int k = 0; k < L->nclips; k++) {
        vqt_tensor *t = prompt_loss(&L->prompts[i], k, fn[k]);
        if (L->nclips > 1 || L->clips[k].weight != 1)
            t = vqt_binary_s(VQT_MUL, t, L->clips[k].weight);
        sum = k ? vqt_binary(VQT_ADD, sum, t) : t;
        if (shares)
            shares[k] = shares[k] ? vqt_binary(VQT_ADD, shares[k], t) : t;
    }
    return sum;
}

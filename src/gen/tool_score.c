/* The CLIP tools: the tokenizer (vqc_tokenizer_open, vqc_tokenize) and vqc_score, the cosine
 * similarity of images and texts. */
#include <stdlib.h>
#include <string.h>

#include "gen/modelpath.h"
#include "gen/tools.h"
#include "io/image.h"
#include "models/clip.h"
#include "models/tokenizer.h"
#include "util/compute_lock.h"
#include "util/error.h"
#include "util/torch_error.h"

/* ---- the tokenizer ---------------------------------------------------------------------- */

int vqc_tokenizer_open(const char *bpe, vqc_tokenizer **out)
{
    if (!out)
        return vqc_error_set(VQC_ERR_USAGE, "vqc_tokenizer_open: out is NULL");
    *out = NULL;
    char path[4096];
    int rc = vqc_model_find_bpe(bpe, NULL, path, sizeof path);
    return rc ? rc : vqc_tokenizer_load(path, out);
}

int vqc_tokenize(const vqc_tokenizer *t, const char *text, int n_ctx, int64_t *ids, int *dropped)
{
    return vqc_tokenizer_tokenize(t, text, n_ctx, ids, dropped);
}

/* ---- score ------------------------------------------------------------------------------ */

vqc_score_params vqc_score_default_params(void)
{
    vqc_score_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Token rows [n_texts, ctx] for the texts (malloc'ed into *out). The vocabulary is the one kept
 * beside the CLIP file when there is one (the demo set's and Hugging Face folders keep it so). */
static int tokenize_all(const vqc_score_params *p, int ctx, const char *clip_path, int64_t **out)
{
    char path[4096];
    vqc_tokenizer *tok = NULL;
    int rc = vqc_model_find_bpe(p->bpe, clip_path, path, sizeof path);
    rc = rc ? rc : vqc_tokenizer_load(path, &tok);
    int64_t *rows = rc ? NULL : malloc((size_t)p->n_texts * (size_t)ctx * sizeof *rows);
    if (!rc && !rows)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < p->n_texts; i++) {
        int dropped = 0;
        rc = vqc_tokenizer_tokenize(tok, p->texts[i], ctx, rows + (size_t)i * ctx, &dropped);
        if (!rc && dropped)
            vqc_log(VQC_LOG_WARN, "text %d is %d tokens too long for CLIP; truncated", i + 1,
                    dropped);
    }
    vqc_tokenizer_free(tok);
    if (rc)
        free(rows);
    *out = rc ? NULL : rows;
    return rc;
}

/* Unit-normalized text features [n_texts, E] (new handle). */
static int text_features(const vqc_clip *m, const vqc_score_params *p, const char *clip_path,
                         vqt_tensor **out)
{
    int64_t *rows;
    int rc = tokenize_all(p, vqc_clip_get_info(m)->context_length, clip_path, &rows);
    if (rc)
        return rc;
    vqt_tensor *f = vqc_clip_encode_text(m, rows, p->n_texts);
    free(rows);
    if (!f)
        return VQC_ERR_RUNTIME;
    *out = vqt_normalize(f, 1, 1e-12);
    vqt_free(f);
    return *out ? 0 : vqc_torch_fail("text features");
}

/* Cosine similarities of image `path` with the normalized text features tf [T, E] into sims. */
static int score_image(const vqc_clip *m, const char *path, const vqt_tensor *tf, float *sims,
                       int n_texts)
{
    vqc_image img = {0};
    vqt_tensor *x = NULL;
    int rc = vqc_image_load(path, &img);
    rc = rc ? rc : vqc_clip_preprocess(m, &img, &x);
    vqc_image_free(&img);
    if (rc)
        return rc;
    vqt_scope_begin();
    vqt_tensor *f = vqt_normalize(vqc_clip_encode_image(m, x), 1, 1e-12);
    vqt_tensor *s = vqt_matmul(f, vqt_transpose(tf, 0, 1)); /* [1, T] */
    if (vqt_to_host(s, sims, VQC_DTYPE_F32, n_texts) != n_texts)
        rc = vqc_torch_fail("scoring %s", path);
    vqt_scope_end();
    vqt_free(x);
    return rc;
}

static int check_params(const vqc_score_params *p, const float *scores)
{
    if (!p || p->n_images < 1 || p->n_texts < 1 || !p->images || !p->texts)
        return vqc_error_set(VQC_ERR_USAGE, "score needs at least one image and one text");
    for (int i = 0; i < p->n_images; i++)
        if (!p->images[i])
            return vqc_error_set(VQC_ERR_USAGE, "score: image %d is NULL", i + 1);
    for (int i = 0; i < p->n_texts; i++)
        if (!p->texts[i])
            return vqc_error_set(VQC_ERR_USAGE, "score: text %d is NULL", i + 1);
    if (!scores && !p->on_image)
        return vqc_error_set(VQC_ERR_USAGE, "score: no scores array and no callback");
    return 0;
}

/* The texts are encoded once; the images one at a time, each handed to the callback before the
 * next is read, so that a caller sees results as they come and keeps them when a later image
 * fails. */
static int score_locked(const vqc_score_params *p, float *scores)
{
    int rc = check_params(p, scores);
    if (rc)
        return rc;
    vqt_device dev;
    vqc_clip *m = NULL;
    vqt_tensor *tf = NULL;
    float *row = scores ? NULL : malloc((size_t)p->n_texts * sizeof *row);
    char path[4096];
    rc = vqc_tool_device(p->device, &dev);
    if (!rc && !scores && !row)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    rc = rc ? rc : vqc_tool_model(VQC_MODEL_CLIP, p->clip, path, sizeof path);
    rc = rc ? rc : vqc_clip_load(path, dev, VQC_CLIP_FP32, &m);
    bool grad = vqt_set_grad_enabled(false);
    rc = rc ? rc : text_features(m, p, path, &tf);
    for (int i = 0; !rc && i < p->n_images; i++) {
        float *sims = scores ? scores + (size_t)i * p->n_texts : row;
        rc = score_image(m, p->images[i], tf, sims, p->n_texts);
        if (!rc && p->on_image)
            p->on_image(i, sims, p->n_texts, p->user);
    }
    vqt_set_grad_enabled(grad);
    vqt_free(tf);
    vqc_clip_free(m);
    free(row);
    return rc;
}

int vqc_score(const vqc_score_params *p, float *scores)
{
    vqc_compute_begin();
    int rc = score_locked(p, scores);
    vqc_compute_end();
    return rc;
}

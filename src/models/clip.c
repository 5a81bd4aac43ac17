/* CLIP: reading the hyper-parameters and weights from a tensor map (OpenAI or Hugging Face
 * names), life cycle and accessors. The forward passes are in clip_text.c and clip_vision.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/attention.h"
#include "models/clip_internal.h"
#include "models/weights.h"
#include "util/error.h"
#include "util/torch_error.h"

/* ---- name resolution ---------------------------------------------------------------------
 * The model asks for weights by OpenAI's names. For the Hugging Face layout a name is rewritten
 * to its HF counterpart, possibly with a transform: the projections are stored transposed
 * (nn.Linear weights) and attention uses separate q/k/v projections instead of a packed
 * in_proj. */

typedef enum { XF_NONE = 0, XF_T, XF_QKV } clip_xform;

typedef struct clip_loader {
    const vqc_tensor_map *map;
    const char *prefix; /* "", "state_dict.", "model.", "module." */
    bool hf;
    vqt_device dev;
    vqc_dtype wdt;         /* conv / linear / projection weights */
    vqc_dtype cdt;         /* activations and embeddings */
    int err;               /* first failure (0: none); later loads are skipped */
    vqc_weight_file *file; /* owner of map when weights may view it (vqc_clip_load) */
    bool view;             /* load views in the stored type (the text tower, see load_text) */
} clip_loader;

static const struct {
    const char *oa, *hf;
    clip_xform xf;
} hf_exact[] = {
    {"visual.class_embedding", "vision_model.embeddings.class_embedding", XF_NONE},
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", XF_NONE},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", XF_NONE},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", XF_NONE},
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", XF_NONE},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight", XF_NONE},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias", XF_NONE},
    {"visual.proj", "visual_projection.weight", XF_T},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", XF_NONE},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight", XF_NONE},
    {"ln_final.weight", "text_model.final_layer_norm.weight", XF_NONE},
    {"ln_final.bias", "text_model.final_layer_norm.bias", XF_NONE},
    {"text_projection", "text_projection.weight", XF_T},
    {"logit_scale", "logit_scale", XF_NONE},
};

static const struct {
    const char *oa, *hf;
} hf_towers[] = {
    {"visual.transformer.resblocks.", "vision_model.encoder.layers."},
    {"transformer.resblocks.", "text_model.encoder.layers."},
};

static const struct {
    const char *oa, *hf;
    clip_xform xf;
} hf_parts[] = {
    {"ln_1.", "layer_norm1.", XF_NONE},
    {"ln_2.", "layer_norm2.", XF_NONE},
    {"mlp.c_fc.", "mlp.fc1.", XF_NONE},
    {"mlp.c_proj.", "mlp.fc2.", XF_NONE},
    {"attn.out_proj.", "self_attn.out_proj.", XF_NONE},
    {"attn.in_proj_weight", "self_attn.q_proj.weight", XF_QKV},
    {"attn.in_proj_bias", "self_attn.q_proj.bias", XF_QKV},
};

static bool starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* Rewrites a block weight name "<tower>N.<part>..." to HF. Returns the transform or -1. */
static int hf_block_name(const char *oa, char *out, size_t len)
{
    for (size_t t = 0; t < sizeof hf_towers / sizeof hf_towers[0]; t++) {
        if (!starts(oa, hf_towers[t].oa))
            continue;
        const char *rest = oa + strlen(hf_towers[t].oa);
        char *end;
        long idx = strtol(rest, &end, 10);
        if (end == rest || *end != '.')
            return -1;
        for (size_t p = 0; p < sizeof hf_parts / sizeof hf_parts[0]; p++) {
            if (starts(end + 1, hf_parts[p].oa)) {
                snprintf(out, len, "%s%ld.%s%s", hf_towers[t].hf, idx, hf_parts[p].hf,
                         end + 1 + strlen(hf_parts[p].oa));
                return (int)hf_parts[p].xf;
            }
        }
        return -1;
    }
    return -1;
}

/* The stored name of OpenAI name `oa` (without the prefix) and its transform; -1 when the
 * layout has no such weight. */
static int ld_name(const clip_loader *ld, const char *oa, char *out, size_t len)
{
    if (!ld->hf) {
        snprintf(out, len, "%s", oa);
        return XF_NONE;
    }
    for (size_t i = 0; i < sizeof hf_exact / sizeof hf_exact[0]; i++) {
        if (strcmp(oa, hf_exact[i].oa) == 0) {
            snprintf(out, len, "%s", hf_exact[i].hf);
            return (int)hf_exact[i].xf;
        }
    }
    return hf_block_name(oa, out, len);
}

/* The map entry behind `oa` (for QKV: the q part), or NULL; *xf gets the transform. */
static const vqc_tensor_info *ld_info(const clip_loader *ld, const char *oa, int *xf)
{
    char name[256];
    int x = ld_name(ld, oa, name, sizeof name);
    if (xf)
        *xf = x;
    return x < 0 ? NULL : vqc_weight_info(ld->map, ld->prefix, name);
}

static bool ld_has(const clip_loader *ld, const char *oa)
{
    return ld_info(ld, oa, NULL) != NULL;
}

/* Size of dim i of `oa` as OpenAI stores it (negative i counts from the end); -1 if absent. */
static int64_t ld_dim(const clip_loader *ld, const char *oa, int i)
{
    int xf;
    const vqc_tensor_info *ti = ld_info(ld, oa, &xf);
    if (!ti || ti->ndim == 0)
        return -1;
    if (i < 0)
        i += ti->ndim;
    if (i < 0 || i >= ti->ndim)
        return -1;
    if (xf == XF_T && ti->ndim == 2)
        i = 1 - i;
    int64_t d = ti->shape[i];
    return xf == XF_QKV && i == 0 ? 3 * d : d;
}

/* Number of consecutive blocks N = 0, 1, ... for which `head` N `tail` exists. */
static int ld_count(const clip_loader *ld, const char *head, const char *tail)
{
    char name[256];
    for (int n = 0;; n++) {
        snprintf(name, sizeof name, "%s%d%s", head, n, tail);
        if (!ld_has(ld, name))
            return n;
    }
}

/* ---- loading tensors ----------------------------------------------------------------------- */

static vqt_tensor *load_transposed(clip_loader *ld, const char *name, vqc_dtype dt,
                                   const int64_t *shape)
{
    int64_t ts[2] = {shape[1], shape[0]};
    vqt_tensor *raw = vqc_weight(ld->map, ld->prefix, name, ld->dev, dt, 2, ts);
    if (!raw)
        return NULL;
    vqt_tensor *t = vqt_transpose(raw, 0, 1);
    vqt_tensor *c = vqt_contiguous(t);
    vqt_free(raw);
    vqt_free(t);
    return vqt_persist(c);
}

/* Loads HF's separate q/k/v projections (`name` has "q_proj") packed as OpenAI's in_proj. */
static vqt_tensor *load_qkv(clip_loader *ld, char *name, vqc_dtype dt, int ndim,
                            const int64_t *shape)
{
    int64_t part[2] = {shape[0] / 3, ndim > 1 ? shape[1] : 0};
    vqt_tensor *qkv[3] = {NULL, NULL, NULL};
    char *q = strstr(name, "q_proj");
    const char letters[3] = {'q', 'k', 'v'};
    for (int i = 0; i < 3; i++) {
        *q = letters[i];
        qkv[i] = vqc_weight(ld->map, ld->prefix, name, ld->dev, dt, ndim, part);
    }
    vqt_tensor *out = qkv[0] && qkv[1] && qkv[2] ? vqt_cat(qkv, 3, 0) : NULL;
    if (qkv[0] && qkv[1] && qkv[2] && !out)
        vqc_torch_fail("packing %s", name);
    for (int i = 0; i < 3; i++)
        vqt_free(qkv[i]);
    return vqt_persist(out);
}

/* The weight `oa` as a new tensor of type dt on the device, checked against ndim/shape (-1:
 * any size). Records the first failure in ld->err and returns NULL. */
static vqt_tensor *ld_get(clip_loader *ld, const char *oa, vqc_dtype dt, int ndim,
                          const int64_t *shape)
{
    if (ld->err)
        return NULL;
    char name[256];
    int xf = ld_name(ld, oa, name, sizeof name);
    vqt_tensor *t;
    if (xf < 0) {
        vqc_error_set(VQC_ERR_MODEL, "missing weight '%s'", oa);
        t = NULL;
    } else if (xf == XF_T) {
        t = load_transposed(ld, name, dt, shape);
    } else if (xf == XF_QKV) {
        t = load_qkv(ld, name, dt, ndim, shape);
    } else if (ld->view) {
        const vqc_tensor_info *ti = vqc_weight_info(ld->map, ld->prefix, name);
        t = vqc_weight_view(ld->file, ld->prefix, name, ld->dev, ti ? ti->dtype : dt, ndim, shape);
    } else {
        t = vqc_weight(ld->map, ld->prefix, name, ld->dev, dt, ndim, shape);
    }
    if (!t) { /* vqc_weight's messages tell a bad file from a failing device */
        const char *msg = vqc_error_get();
        bool file = strstr(msg, "missing weight") || strstr(msg, "has shape");
        ld->err = file ? VQC_ERR_MODEL : VQC_ERR_RUNTIME;
    }
    return t;
}

/* Shorthands: 1-d and 2-d weights. */
static vqt_tensor *ld_1d(clip_loader *ld, const char *oa, vqc_dtype dt, int64_t n)
{
    return ld_get(ld, oa, dt, 1, &n);
}

static vqt_tensor *ld_2d(clip_loader *ld, const char *oa, vqc_dtype dt, int64_t r, int64_t c)
{
    int64_t s[2] = {r, c};
    return ld_get(ld, oa, dt, 2, s);
}

static vqt_tensor *ld_fmt(clip_loader *ld, const char *base, const char *leaf, vqc_dtype dt,
                          int ndim, const int64_t *shape)
{
    char name[256];
    snprintf(name, sizeof name, "%s%s", base, leaf);
    return ld_get(ld, name, dt, ndim, shape);
}

/* ---- layout detection and hyper-parameters --------------------------------------------- */

static const char *const prefixes[] = {"", "state_dict.", "model.", "module."};

/* Finds the name prefix and the layout (OpenAI or HF) of the text tower. */
static int ld_detect(clip_loader *ld, const vqc_tensor_map *map)
{
    memset(ld, 0, sizeof *ld);
    ld->map = map;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        ld->prefix = prefixes[i];
        if (vqc_weight_has(map, ld->prefix, "token_embedding.weight"))
            return 0;
        if (vqc_weight_has(map, ld->prefix, "text_model.embeddings.token_embedding.weight")) {
            ld->hf = true;
            return 0;
        }
    }
    return vqc_error_set(VQC_ERR_MODEL, "not a CLIP model: no token_embedding.weight "
                                        "(OpenAI) or text_model.embeddings.* (Hugging Face)");
}

/* At least one head; 64 channels per head where the width allows (OpenAI: width // 64). */
static int heads_for(int width)
{
    return width / 64 > 0 ? width / 64 : 1;
}

static int inspect_text(const clip_loader *ld, vqc_clip_info *in)
{
    in->embed_dim = (int)ld_dim(ld, "text_projection", 1);
    in->context_length = (int)ld_dim(ld, "positional_embedding", 0);
    in->vocab_size = (int)ld_dim(ld, "token_embedding.weight", 0);
    in->transformer_width = (int)ld_dim(ld, "ln_final.weight", 0);
    in->transformer_heads = heads_for(in->transformer_width);
    in->transformer_layers = ld_count(ld, "transformer.resblocks.", ".attn.in_proj_weight");
    if (in->embed_dim <= 0 || in->context_length <= 0 || in->vocab_size <= 0 ||
        in->transformer_width <= 0 || in->transformer_layers <= 0)
        return vqc_error_set(VQC_ERR_MODEL, "not a CLIP model: incomplete text transformer");
    if (in->transformer_width % in->transformer_heads)
        return vqc_error_set(VQC_ERR_MODEL, "text width %d is not a multiple of %d heads",
                             in->transformer_width, in->transformer_heads);
    return 0;
}

static int inspect_vit(const clip_loader *ld, vqc_clip_info *in)
{
    in->is_vit = 1;
    in->vision_width = (int)ld_dim(ld, "visual.conv1.weight", 0);
    in->vision_patch_size = (int)ld_dim(ld, "visual.conv1.weight", -1);
    in->vision_layers = ld_count(ld, "visual.transformer.resblocks.", ".attn.in_proj_weight");
    int64_t rows = ld_dim(ld, "visual.positional_embedding", 0);
    int grid = rows > 1 ? (int)lround(sqrt((double)(rows - 1))) : 0;
    in->image_resolution = in->vision_patch_size * grid;
    in->vision_heads = heads_for(in->vision_width);
    if (in->vision_width <= 0 || in->vision_patch_size <= 0 || in->vision_layers <= 0 ||
        grid <= 0 || (int64_t)grid * grid + 1 != rows)
        return vqc_error_set(VQC_ERR_MODEL, "not a CLIP model: incomplete vision transformer");
    if (ld_dim(ld, "visual.proj", 1) != in->embed_dim)
        return vqc_error_set(VQC_ERR_MODEL, "visual.proj does not project to %d", in->embed_dim);
    if (in->vision_width % in->vision_heads)
        return vqc_error_set(VQC_ERR_MODEL, "vision width %d is not a multiple of %d heads",
                             in->vision_width, in->vision_heads);
    return 0;
}

static int inspect_rn(const clip_loader *ld, vqc_clip_info *in)
{
    in->is_vit = 0;
    in->vision_layers = 0;
    char head[32];
    for (int i = 0; i < 4; i++) {
        snprintf(head, sizeof head, "visual.layer%d.", i + 1);
        in->vision_rn_layers[i] = ld_count(ld, head, ".conv1.weight");
        in->vision_layers += in->vision_rn_layers[i];
    }
    in->vision_width = (int)ld_dim(ld, "visual.layer1.0.conv1.weight", 0);
    int64_t rows = ld_dim(ld, "visual.attnpool.positional_embedding", 0);
    int out_w = rows > 1 ? (int)lround(sqrt((double)(rows - 1))) : 0;
    in->image_resolution = out_w * 32;
    in->vision_heads = heads_for(in->vision_width * 32);
    for (int i = 0; i < 4; i++)
        if (in->vision_rn_layers[i] <= 0)
            return vqc_error_set(VQC_ERR_MODEL, "not a CLIP model: ResNet layer%d is empty", i + 1);
    if (in->vision_width <= 0 || out_w <= 0 || (int64_t)out_w * out_w + 1 != rows)
        return vqc_error_set(VQC_ERR_MODEL, "not a CLIP model: incomplete ResNet");
    if (ld_dim(ld, "visual.attnpool.c_proj.weight", 0) != in->embed_dim)
        return vqc_error_set(VQC_ERR_MODEL, "attnpool.c_proj does not project to %d",
                             in->embed_dim);
    if ((in->vision_width * 32) % in->vision_heads)
        return vqc_error_set(VQC_ERR_MODEL, "attention pool width is not a multiple of heads");
    return 0;
}

/* Whether a stored name (prefix removed) is a model parameter, not a buffer or bookkeeping. */
static bool is_param_name(const clip_loader *ld, const char *n)
{
    static const char *const oa_roots[] = {
        "visual.",   "transformer.",    "token_embedding.", "positional_embedding",
        "ln_final.", "text_projection", "logit_scale"};
    static const char *const hf_roots[] = {"text_model.", "vision_model.", "visual_projection.",
                                           "text_projection.", "logit_scale"};
    if (strstr(n, "running_mean") || strstr(n, "running_var") || strstr(n, "num_batches_tracked") ||
        strstr(n, "position_ids"))
        return false;
    const char *const *roots = ld->hf ? hf_roots : oa_roots;
    size_t nroots =
        ld->hf ? sizeof hf_roots / sizeof hf_roots[0] : sizeof oa_roots / sizeof oa_roots[0];
    for (size_t i = 0; i < nroots; i++)
        if (starts(n, roots[i]))
            return true;
    return false;
}

static int64_t count_params(const clip_loader *ld)
{
    int64_t total = 0;
    size_t plen = strlen(ld->prefix);
    for (size_t i = 0; i < vqc_tmap_count(ld->map); i++) {
        const vqc_tensor_info *ti = vqc_tmap_at(ld->map, i);
        if (strncmp(ti->name, ld->prefix, plen) == 0 && is_param_name(ld, ti->name + plen))
            total += ti->numel;
    }
    return total;
}

static int inspect_with(const clip_loader *ld, vqc_clip_info *info)
{
    memset(info, 0, sizeof *info);
    int rc = inspect_text(ld, info);
    if (rc)
        return rc;
    if (ld_has(ld, "visual.proj"))
        rc = inspect_vit(ld, info);
    else if (ld_has(ld, "visual.attnpool.c_proj.weight"))
        rc = inspect_rn(ld, info);
    else
        rc = vqc_error_set(VQC_ERR_MODEL, "not a CLIP model: no image encoder (visual.proj "
                                          "or visual.attnpool)");
    if (rc)
        return rc;
    info->n_params = count_params(ld);
    return 0;
}

int vqc_clip_inspect(const vqc_tensor_map *map, vqc_clip_info *info)
{
    clip_loader ld;
    int rc = ld_detect(&ld, map);
    return rc ? rc : inspect_with(&ld, info);
}

/* ---- loading the towers ------------------------------------------------------------------ */

static void load_block(clip_loader *ld, const char *base, int w, clip_block *b)
{
    vqc_dtype f32 = VQC_DTYPE_F32, wd = ld->wdt;
    b->ln1_w = ld_fmt(ld, base, "ln_1.weight", f32, 1, (int64_t[]){w});
    b->ln1_b = ld_fmt(ld, base, "ln_1.bias", f32, 1, (int64_t[]){w});
    b->in_w = ld_fmt(ld, base, "attn.in_proj_weight", wd, 2, (int64_t[]){3 * w, w});
    b->in_b = ld_fmt(ld, base, "attn.in_proj_bias", wd, 1, (int64_t[]){3 * w});
    b->out_w = ld_fmt(ld, base, "attn.out_proj.weight", wd, 2, (int64_t[]){w, w});
    b->out_b = ld_fmt(ld, base, "attn.out_proj.bias", wd, 1, (int64_t[]){w});
    b->ln2_w = ld_fmt(ld, base, "ln_2.weight", f32, 1, (int64_t[]){w});
    b->ln2_b = ld_fmt(ld, base, "ln_2.bias", f32, 1, (int64_t[]){w});
    b->fc_w = ld_fmt(ld, base, "mlp.c_fc.weight", wd, 2, (int64_t[]){-1, w});
    int64_t hidden = b->fc_w ? vqt_size(b->fc_w, 0) : -1;
    b->fc_b = ld_fmt(ld, base, "mlp.c_fc.bias", wd, 1, (int64_t[]){hidden});
    b->proj_w = ld_fmt(ld, base, "mlp.c_proj.weight", wd, 2, (int64_t[]){w, hidden});
    b->proj_b = ld_fmt(ld, base, "mlp.c_proj.bias", wd, 1, (int64_t[]){w});
}

static void load_transformer(clip_loader *ld, const char *tower, int width, int heads, int layers,
                             clip_transformer *tr)
{
    tr->width = width;
    tr->heads = heads;
    tr->blocks = calloc((size_t)layers, sizeof *tr->blocks);
    if (!tr->blocks) {
        ld->err = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
        return;
    }
    tr->layers = layers;
    char base[128];
    for (int i = 0; i < layers && !ld->err; i++) {
        snprintf(base, sizeof base, "%s%d.", tower, i);
        load_block(ld, base, width, &tr->blocks[i]);
    }
}

/* With a file to view and on the CPU, the text tower's weights are views in the file's own type
 * (float16 in OpenAI's files), converted block by block while a text is encoded: it runs once
 * per prompt, so keeping a float32 copy resident for the whole run would cost 250 MB for
 * ViT-B/32. */
static void load_text(clip_loader *ld, vqc_clip *m)
{
    const vqc_clip_info *in = &m->info;
    int w = in->transformer_width;
    ld->view = ld->file && ld->dev.type == VQT_DEVICE_CPU;
    m->tok_emb = ld_2d(ld, "token_embedding.weight", ld->cdt, in->vocab_size, w);
    m->pos_emb = ld_2d(ld, "positional_embedding", ld->cdt, in->context_length, w);
    m->lnf_w = ld_1d(ld, "ln_final.weight", VQC_DTYPE_F32, w);
    m->lnf_b = ld_1d(ld, "ln_final.bias", VQC_DTYPE_F32, w);
    m->text_proj = ld_2d(ld, "text_projection", ld->wdt, w, in->embed_dim);
    load_transformer(ld, "transformer.resblocks.", w, in->transformer_heads, in->transformer_layers,
                     &m->text);
    ld->view = false;
    if (ld->err)
        return;
    int64_t L = in->context_length, shape[2] = {L, L};
    vqt_tensor *full = vqt_full(2, shape, -INFINITY, ld->cdt, ld->dev);
    m->causal_mask = vqt_triu(full, 1);
    vqt_free(full);
    if (!m->causal_mask)
        ld->err = vqc_torch_fail("causal mask");
}

static void load_vit(clip_loader *ld, vqc_clip *m)
{
    const vqc_clip_info *in = &m->info;
    int w = in->vision_width, p = in->vision_patch_size;
    int64_t grid = in->image_resolution / p;
    m->patch_w = ld_get(ld, "visual.conv1.weight", ld->wdt, 4, (int64_t[]){w, 3, p, p});
    m->class_emb = ld_1d(ld, "visual.class_embedding", ld->cdt, w);
    m->vpos_emb = ld_2d(ld, "visual.positional_embedding", ld->cdt, grid * grid + 1, w);
    m->ln_pre_w = ld_1d(ld, "visual.ln_pre.weight", VQC_DTYPE_F32, w);
    m->ln_pre_b = ld_1d(ld, "visual.ln_pre.bias", VQC_DTYPE_F32, w);
    m->ln_post_w = ld_1d(ld, "visual.ln_post.weight", VQC_DTYPE_F32, w);
    m->ln_post_b = ld_1d(ld, "visual.ln_post.bias", VQC_DTYPE_F32, w);
    m->vproj = ld_2d(ld, "visual.proj", ld->wdt, w, in->embed_dim);
    load_transformer(ld, "visual.transformer.resblocks.", w, in->vision_heads, in->vision_layers,
                     &m->vis);
}

static void load_bn(clip_loader *ld, const char *base, int64_t c, clip_bn *bn)
{
    bn->w = ld_fmt(ld, base, "weight", VQC_DTYPE_F32, 1, &c);
    bn->b = ld_fmt(ld, base, "bias", VQC_DTYPE_F32, 1, &c);
    bn->mean = ld_fmt(ld, base, "running_mean", VQC_DTYPE_F32, 1, &c);
    bn->var = ld_fmt(ld, base, "running_var", VQC_DTYPE_F32, 1, &c);
}

/* A 4-d conv weight [out, in, k, k]; base + leaf names it. */
static vqt_tensor *ld_conv(clip_loader *ld, const char *base, const char *leaf, int64_t out,
                           int64_t in, int64_t k)
{
    return ld_fmt(ld, base, leaf, ld->wdt, 4, (int64_t[]){out, in, k, k});
}

static void load_bottleneck(clip_loader *ld, const char *base, int64_t inplanes, int64_t planes,
                            int stride, clip_bottleneck *b)
{
    char sub[160];
    b->stride = stride;
    b->conv1 = ld_conv(ld, base, "conv1.weight", planes, inplanes, 1);
    b->conv2 = ld_conv(ld, base, "conv2.weight", planes, planes, 3);
    b->conv3 = ld_conv(ld, base, "conv3.weight", planes * 4, planes, 1);
    clip_bn *bns[3] = {&b->bn1, &b->bn2, &b->bn3};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%sbn%d.", base, i + 1);
        load_bn(ld, sub, i < 2 ? planes : planes * 4, bns[i]);
    }
    if (stride > 1 || inplanes != planes * 4) {
        b->down_conv = ld_conv(ld, base, "downsample.0.weight", planes * 4, inplanes, 1);
        snprintf(sub, sizeof sub, "%sdownsample.1.", base);
        load_bn(ld, sub, planes * 4, &b->down_bn);
    }
}

static void load_stem(clip_loader *ld, vqc_clip *m)
{
    int64_t w = m->info.vision_width, half = w / 2;
    const int64_t ins[3] = {3, half, half}, outs[3] = {half, half, w};
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "conv%d.weight", i + 1);
        m->stem_conv[i] = ld_conv(ld, "visual.", name, outs[i], ins[i], 3);
        snprintf(name, sizeof name, "visual.bn%d.", i + 1);
        load_bn(ld, name, outs[i], &m->stem_bn[i]);
    }
}

static void load_attnpool(clip_loader *ld, vqc_clip *m)
{
    int64_t c = (int64_t)m->info.vision_width * 32, r = m->info.image_resolution / 32;
    const char *b = "visual.attnpool.";
    m->ap_pos = ld_fmt(ld, b, "positional_embedding", ld->cdt, 2, (int64_t[]){r * r + 1, c});
    m->ap_q_w = ld_fmt(ld, b, "q_proj.weight", ld->wdt, 2, (int64_t[]){c, c});
    m->ap_q_b = ld_fmt(ld, b, "q_proj.bias", ld->wdt, 1, &c);
    m->ap_k_w = ld_fmt(ld, b, "k_proj.weight", ld->wdt, 2, (int64_t[]){c, c});
    m->ap_k_b = ld_fmt(ld, b, "k_proj.bias", ld->wdt, 1, &c);
    m->ap_v_w = ld_fmt(ld, b, "v_proj.weight", ld->wdt, 2, (int64_t[]){c, c});
    m->ap_v_b = ld_fmt(ld, b, "v_proj.bias", ld->wdt, 1, &c);
    m->ap_c_w = ld_fmt(ld, b, "c_proj.weight", ld->wdt, 2, (int64_t[]){m->info.embed_dim, c});
    m->ap_c_b = ld_fmt(ld, b, "c_proj.bias", ld->wdt, 1, (int64_t[]){m->info.embed_dim});
}

static void load_rn(clip_loader *ld, vqc_clip *m)
{
    load_stem(ld, m);
    m->bottlenecks = calloc((size_t)m->info.vision_layers, sizeof *m->bottlenecks);
    if (!m->bottlenecks) {
        ld->err = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
        return;
    }
    int64_t inplanes = m->info.vision_width;
    char base[64];
    for (int l = 0; l < 4; l++) {
        int64_t planes = (int64_t)m->info.vision_width << l;
        for (int j = 0; j < m->info.vision_rn_layers[l] && !ld->err; j++) {
            snprintf(base, sizeof base, "visual.layer%d.%d.", l + 1, j);
            int stride = j == 0 && l > 0 ? 2 : 1;
            load_bottleneck(ld, base, inplanes, planes, stride,
                            &m->bottlenecks[m->n_bottlenecks++]);
            inplanes = planes * 4;
        }
    }
    load_attnpool(ld, m);
}

/* logit_scale as a double (a 0-d or 1-element tensor; 0 when absent, as in HF exports
 * without it). */
static void load_logit_scale(clip_loader *ld, vqc_clip *m)
{
    if (ld->err || !ld_has(ld, "logit_scale"))
        return;
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    vqt_device keep = ld->dev;
    ld->dev = cpu;
    vqt_tensor *t = ld_get(ld, "logit_scale", VQC_DTYPE_F32, -1, NULL);
    ld->dev = keep;
    m->logit_scale = t && vqt_numel(t) == 1 ? vqt_item(t) : 0.0;
    vqt_free(t);
}

static void load_norm_consts(clip_loader *ld, vqc_clip *m)
{
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    const int64_t shape[4] = {1, 3, 1, 1};
    m->norm_mean =
        vqt_persist(vqt_from_data(mean, VQC_DTYPE_F32, 4, shape, NULL, ld->dev, VQC_DTYPE_F32));
    m->norm_std =
        vqt_persist(vqt_from_data(std, VQC_DTYPE_F32, 4, shape, NULL, ld->dev, VQC_DTYPE_F32));
    if (!ld->err && (!m->norm_mean || !m->norm_std))
        ld->err = vqc_torch_fail("normalisation constants");
}

/* ---- public API ------------------------------------------------------------------------------ */

/* Loads from map; with `file` (the owner of map) the text tower views the file. */
static int load_from(const vqc_tensor_map *map, vqc_weight_file *file, vqt_device dev,
                     vqc_clip_precision prec, vqc_clip **out)
{
    *out = NULL;
    clip_loader ld;
    int rc = ld_detect(&ld, map);
    ld.file = file;
    vqc_clip *m = rc ? NULL : calloc(1, sizeof *m);
    if (!rc && !m)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = inspect_with(&ld, &m->info);
    if (rc) {
        free(m);
        return rc;
    }
    ld.dev = m->dev = dev;
    bool half = prec == VQC_CLIP_FP16 && dev.type == VQT_DEVICE_CUDA;
    ld.wdt = ld.cdt = m->cdt = half ? VQC_DTYPE_F16 : VQC_DTYPE_F32;
    load_text(&ld, m);
    if (m->info.is_vit)
        load_vit(&ld, m);
    else if (!ld.err)
        load_rn(&ld, m);
    load_logit_scale(&ld, m);
    load_norm_consts(&ld, m);
    if (ld.err) {
        vqc_clip_free(m);
        return ld.err;
    }
    *out = m;
    return 0;
}

int vqc_clip_load_map(const vqc_tensor_map *map, vqt_device dev, vqc_clip_precision prec,
                      vqc_clip **out)
{
    return load_from(map, NULL, dev, prec, out);
}

/* The text tower views the mapped file (see load_text); the model keeps a reference to the
 * file so that it can give the pages it read back after each text (vqc_weight_drop_pages). The
 * pages the float32 image tower was converted from are given back at once. */
int vqc_clip_load(const char *path, vqt_device dev, vqc_clip_precision prec, vqc_clip **out)
{
    *out = NULL;
    vqc_tensor_map *map;
    int rc = vqc_tmap_open(path, &map);
    if (rc)
        return rc;
    vqc_weight_file *file = vqc_weight_file_new(map);
    if (!file) {
        vqc_tmap_free(map);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    }
    rc = load_from(map, file, dev, prec, out);
    if (rc) {
        vqc_weight_file_unref(file);
        return vqc_error_wrap(rc, "%s", path);
    }
    if (vqc_weight_file_views(file) > 0) {
        (*out)->file = file;
        vqc_weight_drop_pages(map);
    } else {
        vqc_weight_file_unref(file);
    }
    return 0;
}

static void free_transformer(clip_transformer *tr)
{
    for (int i = 0; tr->blocks && i < tr->layers; i++) {
        clip_block *b = &tr->blocks[i];
        vqt_tensor *all[] = {b->ln1_w, b->ln1_b, b->in_w, b->in_b, b->out_w,  b->out_b,
                             b->ln2_w, b->ln2_b, b->fc_w, b->fc_b, b->proj_w, b->proj_b};
        for (size_t j = 0; j < sizeof all / sizeof all[0]; j++)
            vqt_free(all[j]);
    }
    free(tr->blocks);
}

static void free_bn(clip_bn *bn)
{
    vqt_free(bn->w);
    vqt_free(bn->b);
    vqt_free(bn->mean);
    vqt_free(bn->var);
}

static void free_rn(vqc_clip *m)
{
    for (int i = 0; i < 3; i++) {
        vqt_free(m->stem_conv[i]);
        free_bn(&m->stem_bn[i]);
    }
    for (int i = 0; i < m->n_bottlenecks; i++) {
        clip_bottleneck *b = &m->bottlenecks[i];
        vqt_free(b->conv1);
        vqt_free(b->conv2);
        vqt_free(b->conv3);
        vqt_free(b->down_conv);
        free_bn(&b->bn1);
        free_bn(&b->bn2);
        free_bn(&b->bn3);
        free_bn(&b->down_bn);
    }
    free(m->bottlenecks);
    vqt_tensor *ap[] = {m->ap_pos, m->ap_q_w, m->ap_q_b, m->ap_k_w, m->ap_k_b,
                        m->ap_v_w, m->ap_v_b, m->ap_c_w, m->ap_c_b};
    for (size_t j = 0; j < sizeof ap / sizeof ap[0]; j++)
        vqt_free(ap[j]);
}

void vqc_clip_free(vqc_clip *m)
{
    if (!m)
        return;
    vqt_tensor *all[] = {m->tok_emb,   m->pos_emb,     m->lnf_w,     m->lnf_b,
                         m->text_proj, m->causal_mask, m->patch_w,   m->class_emb,
                         m->vpos_emb,  m->ln_pre_w,    m->ln_pre_b,  m->ln_post_w,
                         m->ln_post_b, m->vproj,       m->norm_mean, m->norm_std};
    for (size_t j = 0; j < sizeof all / sizeof all[0]; j++)
        vqt_free(all[j]);
    free_transformer(&m->text);
    free_transformer(&m->vis);
    free_rn(m);
    vqc_weight_file_unref(m->file);
    free(m);
}

const vqc_clip_info *vqc_clip_get_info(const vqc_clip *m)
{
    return &m->info;
}

vqt_device vqc_clip_device(const vqc_clip *m)
{
    return m->dev;
}

double vqc_clip_logit_scale(const vqc_clip *m)
{
    return m->logit_scale;
}

/* Checks the fused path at the image tower's attention shape (vqc_attention_check): the
 * ViT's tokens or the ResNet's attention pool (the mean token over all of them), their counts
 * and widths those of the position embeddings. */
static bool fused_attention_works(const vqc_clip *m, char *why, size_t n)
{
    const vqc_clip_info *in = &m->info;
    const vqt_tensor *pos = in->is_vit ? m->vpos_emb : m->ap_pos; /* [tokens, width] */
    int64_t tokens = vqt_size(pos, 0);
    return vqc_attention_check(m->dev, m->cdt, in->vision_heads, vqt_size(pos, 1),
                               in->is_vit ? tokens : 1, tokens, NULL, why, n);
}

bool vqc_clip_set_fused_attention(vqc_clip *m, bool on)
{
    if (!m)
        return false;
    char why[512] = "";
    m->fused_attention = on && fused_attention_works(m, why, sizeof why);
    if (on && !m->fused_attention)
        vqc_log(VQC_LOG_WARN, "CLIP's attention runs unfused (slower): the fused kernel %s", why);
    return m->fused_attention;
}

bool vqc_clip_fused_attention(const vqc_clip *m)
{
    return m && m->fused_attention;
}

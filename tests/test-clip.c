/* CLIP parity and behaviour: features of the tiny fixtures against OpenAI's outputs
 * (VQCLIP_FIXTURES clip/NAME.pt with clip/NAME_ref.safetensors), the inferred hyper-parameters,
 * the Hugging Face and prefixed state-dict layouts, loader errors, gradients, preprocessing. */
#include <stdbool.h>

#include "io/safetensors.h"
#include "models/attention.h"
#include "models/clip.h"
#include "models/clip_internal.h"
#include "models/weights.h"
#include "testhelp.h"
#include "util/error.h"

#define ATOL 1e-4

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* ---- helpers ------------------------------------------------------------------------------- */

/* Max |a - b| over two float32 tensors of the same shape. */
static double max_abs_diff(const vqt_tensor *a, const vqt_tensor *b)
{
    ASSERT(a && b);
    ASSERT_EQ(vqt_numel(a), vqt_numel(b));
    vqt_scope_begin();
    vqt_tensor *d =
        vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, a, b)), 0, NULL, false);
    ASSERT(d);
    double v = vqt_item(d);
    vqt_scope_end();
    return v;
}

/* A reference tensor as float32 on the CPU, owned by the caller's scope. */
static vqt_tensor *ref_tensor(const vqc_tensor_map *ref, const char *name)
{
    const vqc_tensor_info *ti = vqc_tmap_get(ref, name);
    if (!ti)
        TEST_FAIL("reference %s missing", name);
    vqt_tensor *t =
        vqt_from_data(ti->data, ti->dtype, ti->ndim, ti->shape, ti->strides, cpu, VQC_DTYPE_F32);
    if (!t)
        TEST_FAIL("reference %s: %s", name, vqt_last_error());
    return t;
}

/* The reference token rows (int64 [n, context]) as a malloc'ed array. */
static int64_t *ref_tokens(const vqc_tensor_map *ref, int *n)
{
    const vqc_tensor_info *ti = vqc_tmap_get(ref, "tokens");
    ASSERT(ti && ti->ndim == 2);
    vqt_tensor *t =
        vqt_from_data(ti->data, ti->dtype, 2, ti->shape, ti->strides, cpu, VQC_DTYPE_I64);
    int64_t *buf = malloc((size_t)ti->numel * sizeof *buf);
    ASSERT(t && buf);
    ASSERT_EQ(vqt_to_host(t, buf, VQC_DTYPE_I64, ti->numel), ti->numel);
    vqt_free(t);
    *n = (int)ti->shape[0];
    return buf;
}

static vqc_clip *load_ok(const char *path)
{
    vqc_clip *m = NULL;
    ASSERT_OK(vqc_clip_load(path, cpu, VQC_CLIP_FP32, &m));
    ASSERT(m);
    return m;
}

/* ---- parity ------------------------------------------------------------------------------- */

/* Compares encode_image / encode_text / logit_scale of `m` with the reference file. */
static void check_features(const vqc_clip *m, const char *ref_path, const char *label)
{
    vqc_tensor_map *ref;
    ASSERT_OK(vqc_tmap_open(ref_path, &ref));
    vqt_scope_begin();
    vqt_tensor *img = vqc_clip_encode_image(m, ref_tensor(ref, "image"));
    if (!img)
        TEST_FAIL("%s: encode_image: %s", label, vqc_error_get());
    double di = max_abs_diff(img, ref_tensor(ref, "image_features"));
    int n;
    int64_t *tok = ref_tokens(ref, &n);
    vqt_tensor *txt = vqc_clip_encode_text(m, tok, n);
    if (!txt)
        TEST_FAIL("%s: encode_text: %s", label, vqc_error_get());
    double dt = max_abs_diff(txt, ref_tensor(ref, "text_features"));
    double ls = vqt_item(ref_tensor(ref, "logit_scale"));
    printf("%-24s image_features max|diff| %.3g, text_features max|diff| %.3g, "
           "logit_scale %.6f (ref %.6f)\n",
           label, di, dt, vqc_clip_logit_scale(m), ls);
    ASSERT(di <= ATOL);
    ASSERT(dt <= ATOL);
    ASSERT_NEAR(vqc_clip_logit_scale(m), ls, 1e-6);
    free(tok);
    vqt_scope_end();
    vqc_tmap_free(ref);
}

static void test_parity(const char *name)
{
    char rel[64], ref[64];
    snprintf(rel, sizeof rel, "clip/%s.pt", name);
    snprintf(ref, sizeof ref, "clip/%s_ref.safetensors", name);
    vqc_clip *m = load_ok(fixture_path(rel));
    check_features(m, fixture_path(ref), name);
    vqc_clip_free(m);
}

/* ---- hyper-parameters ------------------------------------------------------------------- */

static void check_text_info(const vqc_clip_info *in)
{
    ASSERT_EQ(in->embed_dim, 32);
    ASSERT_EQ(in->context_length, 77);
    ASSERT_EQ(in->vocab_size, 49408);
    ASSERT_EQ(in->transformer_width, 64);
    ASSERT_EQ(in->transformer_heads, 1);
    ASSERT_EQ(in->transformer_layers, 2);
}

static void test_info(void)
{
    vqc_clip *m = load_ok(fixture_path("clip/tiny_vit.pt"));
    const vqc_clip_info *in = vqc_clip_get_info(m);
    check_text_info(in);
    ASSERT_EQ(in->is_vit, 1);
    ASSERT_EQ(in->image_resolution, 32);
    ASSERT_EQ(in->vision_width, 64);
    ASSERT_EQ(in->vision_layers, 2);
    ASSERT_EQ(in->vision_patch_size, 8);
    ASSERT_EQ(in->vision_heads, 1);
    ASSERT_EQ(in->n_params, 3384897); /* sum(p.numel() for p in model.parameters()) */
    vqc_clip_free(m);

    m = load_ok(fixture_path("clip/tiny_rn.pt"));
    in = vqc_clip_get_info(m);
    check_text_info(in);
    ASSERT_EQ(in->is_vit, 0);
    ASSERT_EQ(in->image_resolution, 64);
    ASSERT_EQ(in->vision_width, 32);
    ASSERT_EQ(in->vision_layers, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(in->vision_rn_layers[i], 1);
    ASSERT_EQ(in->vision_patch_size, 0);
    ASSERT_EQ(in->vision_heads, 16);
    ASSERT_EQ(in->n_params, 8469777);
    vqc_clip_free(m);
}

/* ---- other layouts: Hugging Face CLIPModel, prefixed state dict (written as safetensors) -- */

typedef struct out_tensor {
    char name[200];
    vqc_dtype dt;
    int ndim;
    int64_t shape[VQC_MAX_DIMS];
    void *data;
} out_tensor;

typedef struct out_list {
    out_tensor v[512];
    size_t n;
} out_list;

/* Appends `t` (copied to the host, contiguous, in its own dtype) under `name`. */
static void out_add(out_list *l, const char *name, const vqt_tensor *t)
{
    ASSERT(t && l->n < sizeof l->v / sizeof l->v[0]);
    out_tensor *o = &l->v[l->n++];
    snprintf(o->name, sizeof o->name, "%s", name);
    o->dt = vqt_dtype(t);
    o->ndim = vqt_shape(t, o->shape);
    int64_t numel = vqt_numel(t);
    o->data = malloc((size_t)(numel ? numel : 1) * vqc_dtype_size(o->dt));
    ASSERT(o->data);
    ASSERT_EQ(vqt_to_host(t, o->data, o->dt, numel), numel);
}

static void out_write(out_list *l, const char *path)
{
    vqc_st_tensor *st = calloc(l->n, sizeof *st);
    ASSERT(st);
    for (size_t i = 0; i < l->n; i++)
        st[i] =
            (vqc_st_tensor){l->v[i].name, l->v[i].dt, l->v[i].ndim, l->v[i].shape, l->v[i].data};
    ASSERT_OK(vqc_safetensors_write(path, st, l->n, NULL));
    free(st);
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    l->n = 0;
}

/* Hugging Face names for OpenAI's (block parts after "<tower>N."). */
static const char *const hf_exact[][2] = {
    {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
    {"ln_final.weight", "text_model.final_layer_norm.weight"},
    {"ln_final.bias", "text_model.final_layer_norm.bias"},
    {"logit_scale", "logit_scale"},
};
static const char *const hf_part[][2] = {
    {"ln_1.", "layer_norm1."},
    {"ln_2.", "layer_norm2."},
    {"mlp.c_fc.", "mlp.fc1."},
    {"mlp.c_proj.", "mlp.fc2."},
    {"attn.out_proj.", "self_attn.out_proj."},
};

/* Converts one block weight ("<tower>N.<part>") to HF, splitting the packed in_proj. */
static void hf_block(out_list *l, const char *hf_tower, const char *rest, const vqt_tensor *t)
{
    char name[200];
    const char *dot = strchr(rest, '.');
    int idx = atoi(rest);
    ASSERT(dot);
    if (strncmp(dot + 1, "attn.in_proj_", 13) == 0) {
        const char *leaf = dot + 1 + 13; /* "weight" or "bias" */
        int64_t d = vqt_size(t, 0) / 3;
        const char qkv[3] = {'q', 'k', 'v'};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s%d.self_attn.%c_proj.%s", hf_tower, idx, qkv[i], leaf);
            out_add(l, name, vqt_narrow(t, 0, i * d, d));
        }
        return;
    }
    for (size_t i = 0; i < sizeof hf_part / sizeof hf_part[0]; i++) {
        size_t n = strlen(hf_part[i][0]);
        if (strncmp(dot + 1, hf_part[i][0], n) == 0) {
            snprintf(name, sizeof name, "%s%d.%s%s", hf_tower, idx, hf_part[i][1], dot + 1 + n);
            out_add(l, name, t);
            return;
        }
    }
    TEST_FAIL("no HF name for block weight %s", rest);
}

/* One OpenAI entry to HF; entries HF does not have are dropped. */
static void hf_convert(out_list *l, const char *oa, const vqt_tensor *t)
{
    if (strcmp(oa, "visual.proj") == 0 || strcmp(oa, "text_projection") == 0) {
        out_add(l, oa[0] == 'v' ? "visual_projection.weight" : "text_projection.weight",
                vqt_transpose(t, 0, 1));
        return;
    }
    if (strncmp(oa, "visual.transformer.resblocks.", 29) == 0) {
        hf_block(l, "vision_model.encoder.layers.", oa + 29, t);
        return;
    }
    if (strncmp(oa, "transformer.resblocks.", 22) == 0) {
        hf_block(l, "text_model.encoder.layers.", oa + 22, t);
        return;
    }
    for (size_t i = 0; i < sizeof hf_exact / sizeof hf_exact[0]; i++)
        if (strcmp(oa, hf_exact[i][0]) == 0)
            out_add(l, hf_exact[i][1], t);
}

/* Rewrites the weights of `src` into `dst` (safetensors): HF names when hf, else with
 * `prefix` added; the entry `skip` (an output name, may be NULL) is left out. */
static void convert_file(const char *src, const char *dst, bool hf, const char *prefix,
                         const char *skip)
{
    static out_list l;
    vqc_tensor_map *map;
    ASSERT_OK(vqc_tmap_open(src, &map));
    vqt_scope_begin();
    for (size_t i = 0; i < vqc_tmap_count(map); i++) {
        const vqc_tensor_info *ti = vqc_tmap_at(map, i);
        vqt_tensor *t =
            vqt_from_data(ti->data, ti->dtype, ti->ndim, ti->shape, ti->strides, cpu, ti->dtype);
        char name[200];
        snprintf(name, sizeof name, "%s%s", prefix, ti->name);
        if (hf)
            hf_convert(&l, ti->name, t);
        else
            out_add(&l, name, t);
        if (skip && l.n > 0 && strcmp(l.v[l.n - 1].name, skip) == 0)
            free(l.v[--l.n].data);
    }
    if (hf) { /* a buffer that HF checkpoints carry and the model must ignore */
        int64_t ids[77], shape[2] = {1, 77};
        for (int i = 0; i < 77; i++)
            ids[i] = i;
        out_add(&l, "text_model.embeddings.position_ids",
                vqt_from_data(ids, VQC_DTYPE_I64, 2, shape, NULL, cpu, VQC_DTYPE_I64));
    }
    vqt_scope_end();
    vqc_tmap_free(map);
    out_write(&l, dst);
}

static void test_layouts(void)
{
    char hf[4096], pre[4096];
    const char *dir = test_tmpdir("clip");
    snprintf(hf, sizeof hf, "%s/tiny_vit_hf.safetensors", dir);
    snprintf(pre, sizeof pre, "%s/tiny_rn_prefixed.safetensors", dir);
    convert_file(fixture_path("clip/tiny_vit.pt"), hf, true, "", NULL);
    convert_file(fixture_path("clip/tiny_rn.pt"), pre, false, "state_dict.", NULL);

    vqc_clip *m = load_ok(hf);
    ASSERT_EQ(vqc_clip_get_info(m)->is_vit, 1);
    ASSERT_EQ(vqc_clip_get_info(m)->vision_layers, 2);
    ASSERT_EQ(vqc_clip_get_info(m)->n_params, 3384897);
    check_features(m, fixture_path("clip/tiny_vit_ref.safetensors"), "tiny_vit (HF layout)");
    vqc_clip_free(m);

    m = load_ok(pre);
    ASSERT_EQ(vqc_clip_get_info(m)->n_params, 8469777);
    check_features(m, fixture_path("clip/tiny_rn_ref.safetensors"), "tiny_rn (state_dict.)");
    vqc_clip_free(m);
}

/* ---- loader and argument errors -------------------------------------------------------- */

static void expect_load_error(const char *path, int code, const char *needle)
{
    vqc_clip *m = (vqc_clip *)1;
    int rc = vqc_clip_load(path, cpu, VQC_CLIP_FP32, &m);
    printf("load %s -> %d: %s\n", strrchr(path, '/') + 1, rc, vqc_error_get());
    ASSERT_EQ(rc, code);
    ASSERT(m == NULL);
    if (needle && !strstr(vqc_error_get(), needle))
        TEST_FAIL("error '%s' does not mention '%s'", vqc_error_get(), needle);
}

/* Writes the first `keep` of the bytes of `src` to `dst`. */
static void truncate_copy(const char *src, const char *dst, double keep)
{
    FILE *f = fopen(src, "rb");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    ASSERT(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    FILE *g = fopen(dst, "wb");
    ASSERT(g && fwrite(buf, 1, (size_t)(n * keep), g) == (size_t)(n * keep));
    fclose(g);
    free(buf);
}

static void test_errors(void)
{
    char path[4096];
    const char *dir = test_tmpdir("clip");
    expect_load_error("/nonexistent/dir/ViT-B-32.pt", VQC_ERR_IO, NULL);
    expect_load_error(fixture_path("vqgan/tiny_vq.ckpt"), VQC_ERR_MODEL, "not a CLIP model");
    snprintf(path, sizeof path, "%s/truncated.pt", dir);
    truncate_copy(fixture_path("clip/tiny_vit.pt"), path, 0.5);
    expect_load_error(path, VQC_ERR_FORMAT, NULL);
    snprintf(path, sizeof path, "%s/no_post_ln.safetensors", dir);
    convert_file(fixture_path("clip/tiny_vit.pt"), path, true, "",
                 "vision_model.post_layernorm.bias");
    expect_load_error(path, VQC_ERR_MODEL, "post_layernorm.bias");

    vqc_clip *m = load_ok(fixture_path("clip/tiny_vit.pt"));
    vqt_scope_begin();
    int64_t bad_shape[4] = {1, 3, 16, 16};
    ASSERT(vqc_clip_encode_image(m, vqt_full(4, bad_shape, 0.0, VQC_DTYPE_F32, cpu)) == NULL);
    ASSERT(strstr(vqc_error_get(), "[N, 3, 32, 32]"));
    int64_t tok[77] = {49406, 320, 49407};
    tok[5] = 49408; /* outside the vocabulary */
    ASSERT(vqc_clip_encode_text(m, tok, 1) == NULL);
    ASSERT(strstr(vqc_error_get(), "vocabulary"));
    ASSERT(vqc_clip_encode_text(m, tok, 0) == NULL);
    vqt_scope_end();
    vqc_clip_free(m);
}

/* ---- gradients ------------------------------------------------------------------------- */

/* sum(features) or sum(features^2) of the image features of x. */
static vqt_tensor *feature_loss(const vqc_clip *m, const vqt_tensor *x, bool squared)
{
    vqt_tensor *f = vqc_clip_encode_image(m, x);
    return vqt_reduce(VQT_SUM, squared ? vqt_unary(VQT_SQUARE, f) : f, 0, NULL, false);
}

/* d loss / d x for a leaf x, copied to a new host array of n floats. */
static float *input_grad(const vqc_clip *m, vqt_tensor *x, bool squared, int64_t n)
{
    vqt_grad_clear(x);
    ASSERT_OK(vqt_backward(feature_loss(m, x, squared)));
    vqt_tensor *g = vqt_grad(x);
    float *gh = malloc((size_t)n * sizeof *gh);
    ASSERT(g && gh && vqt_to_host(g, gh, VQC_DTYPE_F32, n) == n);
    return gh;
}

/* A leaf [2, 3, R, R] of normal noise that records gradients, in the caller's scope; *n: its
 * element count. */
static vqt_tensor *random_input(const vqc_clip *m, uint64_t seed, int64_t *n)
{
    int64_t r = vqc_clip_get_info(m)->image_resolution, shape[4] = {2, 3, r, r};
    *n = 2 * 3 * r * r;
    vqt_manual_seed(seed);
    vqt_tensor *x = vqt_randn(4, shape, cpu);
    ASSERT_OK(vqt_set_requires_grad(x, true));
    return x;
}

/* Backward from the sum of the features gives a finite, non-zero gradient at the input. */
static void test_grad(const char *rel)
{
    vqc_clip *m = load_ok(fixture_path(rel));
    int64_t n, nonzero = 0;
    vqt_scope_begin();
    vqt_tensor *x = random_input(m, 1, &n);
    float *g = input_grad(m, x, false, n);
    for (int64_t i = 0; i < n; i++) {
        ASSERT(isfinite(g[i]));
        nonzero += g[i] != 0.0f;
    }
    printf("%-24s grad of sum(features): %lld/%lld non-zero\n", rel, (long long)nonzero,
           (long long)n);
    ASSERT(nonzero > n / 2);
    free(g);
    vqt_scope_end();
    vqc_clip_free(m);
}

/* Fused attention (vqc_clip_set_fused_attention: vqt_sdpa for the four operators, in the image
 * tower): the reference's features within ATOL, the text features bit for bit those of the
 * reference's operators (the text tower is never fused), and the input gradient of
 * sum(features^2) within rounding of the composed operators'. */
/* m's text features are the same with fused attention on and off, bit for bit. */
static void text_unfused(vqc_clip *m, const char *ref_path)
{
    vqc_tensor_map *ref;
    ASSERT_OK(vqc_tmap_open(ref_path, &ref));
    int n;
    int64_t *tok = ref_tokens(ref, &n);
    bool was = vqc_clip_fused_attention(m);
    vqt_scope_begin();
    vqt_tensor *on = vqc_clip_encode_text(m, tok, n);
    vqc_clip_set_fused_attention(m, false);
    vqt_tensor *off = vqc_clip_encode_text(m, tok, n);
    ASSERT(on && off);
    ASSERT(max_abs_diff(on, off) == 0);
    vqt_scope_end();
    vqc_clip_set_fused_attention(m, was);
    free(tok);
    vqc_tmap_free(ref);
}

static void test_fused(const char *name)
{
    char rel[64], ref[64];
    snprintf(rel, sizeof rel, "clip/%s.pt", name);
    snprintf(ref, sizeof ref, "clip/%s_ref.safetensors", name);
    vqc_clip *m = load_ok(fixture_path(rel));
    ASSERT(!vqc_clip_fused_attention(m));
    vqt_manual_seed(11);
    ASSERT(vqc_clip_set_fused_attention(m, true)); /* its check passes here */
    ASSERT(vqc_clip_fused_attention(m));
    /* the check draws no random numbers: the run's sequence is as without it */
    vqt_scope_begin();
    double after = vqt_item(vqt_rand(0, NULL, vqc_clip_device(m)));
    vqt_manual_seed(11);
    ASSERT(after == vqt_item(vqt_rand(0, NULL, vqc_clip_device(m))));
    vqt_scope_end();
    char label[80];
    snprintf(label, sizeof label, "%s fused", name);
    check_features(m, fixture_path(ref), label);
    text_unfused(m, fixture_path(ref));

    int64_t n;
    vqt_scope_begin();
    vqt_tensor *x = random_input(m, 3, &n);
    float *gf = input_grad(m, x, true, n);
    vqc_clip_set_fused_attention(m, false);
    float *gc = input_grad(m, x, true, n);
    double worst = 0, big = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)gf[i] - gc[i]));
        big = fmax(big, fabs((double)gc[i]));
    }
    printf("%-24s d sum(f^2)/dx max|fused - composed| %.3g of max|g| %.3g\n", label, worst, big);
    ASSERT(big > 0);
    ASSERT(worst <= 1e-4 * big);
    free(gf);
    free(gc);
    vqt_scope_end();
    vqc_clip_free(m);
}

/* The fused attention's check (vqc_attention_check) says why when the fused operator
 * fails: here a mask of the wrong shape, which the reference's operators refuse too. */
static void test_fused_check_fails(void)
{
    vqt_device cpu = {VQT_DEVICE_CPU, 0};
    char why[256] = "";
    ASSERT(vqc_attention_check(cpu, VQC_DTYPE_F32, 2, 16, 5, 5, NULL, why, sizeof why));
    ASSERT(vqc_attention_check(cpu, VQC_DTYPE_F32, 2, 16, 1, 7, NULL, why, sizeof why));
    vqt_scope_begin();
    vqt_tensor *bad = vqt_full(2, (int64_t[]){6, 6}, 0.0, VQC_DTYPE_F32, cpu);
    ASSERT(!vqc_attention_check(cpu, VQC_DTYPE_F32, 2, 16, 5, 5, bad, why, sizeof why));
    vqt_scope_end();
    printf("fused check with a [6, 6] mask for 5 tokens: %s\n", why);
    ASSERT(why[0] != 0);
}

/* The gradient g of sum(features^2) against a central finite difference along u = g / |g|
 * (where the directional derivative is |g|, free of cancellation). Checked on the smooth ViT
 * only: with the ResNet's ReLU kinks a float32 finite difference is too noisy (its analytic
 * gradient was checked against PyTorch in float64 instead). */
static void test_grad_fd(const char *rel)
{
    vqc_clip *m = load_ok(fixture_path(rel));
    int64_t n;
    vqt_scope_begin();
    vqt_tensor *x = random_input(m, 2, &n);
    float *g = input_grad(m, x, true, n);
    double norm = 0;
    for (int64_t i = 0; i < n; i++)
        norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    ASSERT(norm > 0);
    bool prev = vqt_set_grad_enabled(false);
    const double eps = 1e-2;
    int64_t shape[4];
    ASSERT_EQ(vqt_shape(x, shape), 4);
    vqt_tensor *step = vqt_affine(
        vqt_from_data(g, VQC_DTYPE_F32, 4, shape, NULL, cpu, VQC_DTYPE_F32), eps / norm, 0.0);
    double numeric = (vqt_item(feature_loss(m, vqt_binary(VQT_ADD, x, step), true)) -
                      vqt_item(feature_loss(m, vqt_binary(VQT_SUB, x, step), true))) /
                     (2 * eps);
    vqt_set_grad_enabled(prev);
    printf("%-24s |grad sum(f^2)| %.6g, finite difference along it %.6g\n", rel, norm, numeric);
    ASSERT(fabs(norm - numeric) <= 1e-2 * norm);
    free(g);
    vqt_scope_end();
    vqc_clip_free(m);
}

/* ---- preprocessing --------------------------------------------------------------------- */

static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711};

static vqc_image make_image(int w, int h)
{
    vqc_image img = {w, h, malloc((size_t)w * h * 3 * sizeof(float))};
    ASSERT(img.rgb);
    return img;
}

/* Runs vqc_clip_preprocess and copies the [1, 3, r, r] result to the host (caller frees). */
static float *preprocess_host(const vqc_clip *m, const vqc_image *img)
{
    int r = vqc_clip_get_info(m)->image_resolution;
    vqt_tensor *x = NULL;
    ASSERT_OK(vqc_clip_preprocess(m, img, &x));
    ASSERT_EQ(vqt_ndim(x), 4);
    ASSERT_EQ(vqt_size(x, 0), 1);
    ASSERT_EQ(vqt_size(x, 2), r);
    ASSERT_EQ(vqt_size(x, 3), r);
    float *h = malloc((size_t)3 * r * r * sizeof *h);
    ASSERT(h && vqt_to_host(x, h, VQC_DTYPE_F32, 3 * r * r) == 3 * r * r);
    vqt_free(x);
    return h;
}

/* A constant image stays constant through resizing; values are (v - mean) / std. */
static void test_preprocess_constant(const vqc_clip *m, int r)
{
    vqc_image img = make_image(77, 50);
    for (int i = 0; i < 77 * 50 * 3; i++)
        img.rgb[i] = 0.3f;
    float *x = preprocess_host(m, &img);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < r * r; i++)
            ASSERT_NEAR(x[c * r * r + i], (0.3 - clip_mean[c]) / clip_std[c], 1e-5);
    free(x);
    vqc_image_free(&img);
}

/* Shorter side already r: no resampling, only the centre crop (left = (2r - r) / 2). */
static void test_preprocess_crop(const vqc_clip *m, int r)
{
    vqc_image img = make_image(2 * r, r);
    for (int y = 0; y < r; y++)
        for (int xx = 0; xx < 2 * r; xx++)
            for (int c = 0; c < 3; c++)
                img.rgb[(y * 2 * r + xx) * 3 + c] = (float)(xx + c) / (2 * r + 2);
    float *x = preprocess_host(m, &img);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < r; y++)
            for (int xx = 0; xx < r; xx++) {
                double v = (double)(xx + r / 2 + c) / (2 * r + 2);
                ASSERT_NEAR(x[(c * r + y) * r + xx], (v - clip_mean[c]) / clip_std[c], 1e-5);
            }
    free(x);
    vqc_image_free(&img);
}

/* Shrinking a one-pixel checkerboard by 4 must average it (antialiasing), not alias it. */
static void test_preprocess_antialias(const vqc_clip *m, int r)
{
    int s = 4 * r;
    vqc_image img = make_image(s, s);
    for (int y = 0; y < s; y++)
        for (int xx = 0; xx < s; xx++)
            for (int c = 0; c < 3; c++)
                img.rgb[(y * s + xx) * 3 + c] = (float)((xx + y) & 1);
    float *x = preprocess_host(m, &img);
    double worst = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < r * r; i++) {
            double v = x[c * r * r + i] * clip_std[c] + clip_mean[c];
            worst = fmax(worst, fabs(v - 0.5));
        }
    printf("antialias: max |pixel - 0.5| after 4x shrink of a checkerboard: %.3g\n", worst);
    ASSERT(worst < 0.02);
    free(x);
    vqc_image_free(&img);
}

static void test_preprocess(void)
{
    vqc_clip *m = load_ok(fixture_path("clip/tiny_rn.pt"));
    int r = vqc_clip_get_info(m)->image_resolution;
    test_preprocess_constant(m, r);
    test_preprocess_crop(m, r);
    test_preprocess_antialias(m, r);

    /* vqc_clip_normalize on [N, 3, H, W] */
    vqt_scope_begin();
    int64_t shape[4] = {2, 3, 5, 7};
    vqt_tensor *y = vqc_clip_normalize(m, vqt_full(4, shape, 1.0, VQC_DTYPE_F32, cpu));
    ASSERT(y);
    float h[2 * 3 * 5 * 7];
    ASSERT_EQ(vqt_to_host(y, h, VQC_DTYPE_F32, 210), 210);
    for (int i = 0; i < 210; i++) {
        int c = (i / 35) % 3;
        ASSERT_NEAR(h[i], (1.0 - clip_mean[c]) / clip_std[c], 1e-5);
    }
    vqt_scope_end();
    vqc_clip_free(m);
}

/* ---- the CLI: vqclip score ----------------------------------------------------------- */

/* Cosine similarity of the image file `png` with row `row` of the reference text features,
 * computed through the library. */
static double library_score(const vqc_clip *m, const char *png, const char *ref_path, int row)
{
    vqc_tensor_map *ref;
    vqc_image img = {0};
    vqt_tensor *x = NULL;
    ASSERT_OK(vqc_tmap_open(ref_path, &ref));
    ASSERT_OK(vqc_image_load(png, &img));
    ASSERT_OK(vqc_clip_preprocess(m, &img, &x));
    vqt_scope_begin();
    vqt_tensor *fi = vqt_normalize(vqc_clip_encode_image(m, x), 1, 1e-12);
    vqt_tensor *ft = vqt_normalize(vqt_select(ref_tensor(ref, "text_features"), 0, row), 0, 1e-12);
    double s = vqt_item(vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, fi, ft), 0, NULL, false));
    vqt_scope_end();
    vqt_free(x);
    vqc_image_free(&img);
    vqc_tmap_free(ref);
    return s;
}

/* Runs `vqclip score` on a PNG with the reference texts; each printed score must match the
 * library's. Skipped (with a note) while the binary is absent or has no `score` command. */
static void test_cli_score(void)
{
    const char *bin = getenv("VQCLIP_BIN"), *dir = test_tmpdir("clip");
    char cmd[8192], png[4096], line[1024], text[512], image[4096];
    snprintf(cmd, sizeof cmd, "'%s' score --help 2>/dev/null | grep -q '^usage: vqclip score'",
             bin ? bin : "/nonexistent");
    if (!bin || system(cmd) != 0) {
        printf("note: %s has no score command yet; CLI check skipped\n", bin ? bin : "vqclip");
        return;
    }
    snprintf(png, sizeof png, "%s/score.png", dir);
    vqc_image img = make_image(50, 40);
    for (int i = 0; i < 50 * 40 * 3; i++)
        img.rgb[i] = (float)((i * 7919) % 256) / 255.0f;
    ASSERT_OK(vqc_image_save_png(png, &img, NULL));
    vqc_image_free(&img);
    static const char *const texts[2] = {"a clockwork angel, trending on ArtStation",
                                         "Cyberpunk City artstationHQ"};
    snprintf(cmd, sizeof cmd,
             "'%s' score --device cpu --clip '%s' --bpe '%s' -i '%s' -p '%s' "
             "-p '%s'",
             bin, fixture_path("clip/tiny_vit.pt"),
             fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"), png, texts[0], texts[1]);
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    vqc_clip *m = load_ok(fixture_path("clip/tiny_vit.pt"));
    for (int row = 0; row < 2; row++) {
        double got;
        ASSERT(fgets(line, sizeof line, p));
        ASSERT_EQ(sscanf(line, "%lf\t%4095[^\t]\t%511[^\n]", &got, image, text), 3);
        ASSERT_STR_EQ(image, png);
        ASSERT_STR_EQ(text, texts[row]);
        double want = library_score(m, png, fixture_path("clip/tiny_vit_ref.safetensors"), row);
        printf("vqclip score: %.6f, library %.6f\n", got, want);
        ASSERT_NEAR(got, want, 2e-6);
    }
    ASSERT(fgets(line, sizeof line, p) == NULL);
    ASSERT_EQ(pclose(p), 0);
    vqc_clip_free(m);
}

int main(void)
{
    vqt_init(0);
    test_parity("tiny_vit");
    test_parity("tiny_rn");
    test_info();
    test_layouts();
    test_errors();
    test_grad("clip/tiny_vit.pt");
    test_grad("clip/tiny_rn.pt");
    test_grad_fd("clip/tiny_vit.pt");
    test_fused("tiny_vit");
    test_fused("tiny_rn");
    test_fused_check_fails();
    test_preprocess();
    test_cli_score();
    printf("ok\n");
    return 0;
}

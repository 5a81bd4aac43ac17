/* The public tools of include/vqclip.h on the fixtures: vqc_model_describe against the internal
 * inspectors and the fixtures' known architectures, vqc_reconstruct against the same round trip
 * done here with the model functions, the tokenizer against OpenAI's clip.tokenize, vqc_score
 * against CLIP features computed here (and, with the demo CLIP, the matching caption winning),
 * the error codes and one-line messages, vqc_system_check and vqc_cuda_device_check. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen/tools.h"
#include "io/image.h"
#include "io/tensor_map.h"
#include "models/clip.h"
#include "models/tokenizer.h"
#include "models/vqgan.h"
#include "testhelp.h"
#include "vqclip.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};
static const char *tmp;      /* this test's scratch folder */
static char empty_dir[4200]; /* a models folder with nothing in it */

/* ---- helpers ------------------------------------------------------------------------------ */

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* The models are looked up in `dir` only ($HOME points at an empty folder too). */
static void models_in(const char *dir)
{
    setenv("VQCLIP_MODELS", dir, 1);
    setenv("HOME", empty_dir, 1);
}

/* Fails unless the last error is one line mentioning `needle`. */
static void expect_error(int rc, int want, const char *needle)
{
    const char *msg = vqc_last_error();
    if (rc != want)
        TEST_FAIL("returned %d, want %d (%s)", rc, want, msg);
    if (!*msg || strchr(msg, '\n') || (needle && !strstr(msg, needle)))
        TEST_FAIL("error message \"%s\" is not one line mentioning \"%s\"", msg, needle);
}

static const char *tmp_file(const char *name)
{
    static char buf[4][4300];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

static void write_pattern_png(const char *path, int w, int h)
{
    vqc_image img = {w, h, malloc((size_t)w * h * 3 * sizeof(float))};
    for (int i = 0; i < w * h * 3; i++)
        img.rgb[i] = (float)((i * 7919 % 256) / 255.0);
    ASSERT_OK(vqc_image_save_png(path, &img, NULL));
    vqc_image_free(&img);
}

/* A 64x64 `fill` picture with a shape of colour `ink` in the middle: a disc or a square. */
static void write_shape_png(const char *path, const float *ink, const float *fill, int disc)
{
    vqc_image img = {64, 64, malloc(64 * 64 * 3 * sizeof(float))};
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            int dx = x - 32, dy = y - 32;
            int in = disc ? dx * dx + dy * dy <= 15 * 15 : abs(dx) <= 13 && abs(dy) <= 13;
            memcpy(img.rgb + (y * 64 + x) * 3, in ? ink : fill, 3 * sizeof(float));
        }
    ASSERT_OK(vqc_image_save_png(path, &img, NULL));
    vqc_image_free(&img);
}

/* ---- describe ------------------------------------------------------------------------------ */

static void check_vqgan_desc(const char *name, const char *format, bool gumbel, bool transformer)
{
    char rel[128];
    snprintf(rel, sizeof rel, "vqgan/%s.ckpt", name);
    const char *path = fixture_path(rel);
    snprintf(rel, sizeof rel, "vqgan/%s.yaml", name);
    const char *yaml = fixture_path(rel);
    vqc_model_desc d;
    ASSERT_OK(vqc_model_describe(VQC_MODEL_VQGAN, path, yaml, &d));
    ASSERT_EQ(d.kind, VQC_MODEL_VQGAN);
    ASSERT_STR_EQ(d.path, path);
    ASSERT_STR_EQ(d.format, format);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(d.file_bytes, st.st_size);
    ASSERT_EQ(d.gumbel, gumbel);
    ASSERT_EQ(d.from_transformer, transformer);

    vqc_tensor_map *map;
    vqc_vqgan_info in;
    ASSERT_OK(vqc_tmap_open(path, &map));
    ASSERT_OK(vqc_vqgan_inspect(map, &in));
    vqc_tmap_free(map);
    ASSERT_EQ(d.ch, in.ch);
    ASSERT_EQ(d.num_levels, in.num_levels);
    for (int i = 0; i < in.num_levels; i++) {
        ASSERT_EQ(d.ch_mult[i], in.ch_mult[i]);
        ASSERT_EQ(d.enc_attn[i], in.enc_attn[i]);
        ASSERT_EQ(d.dec_attn[i], in.dec_attn[i]);
    }
    ASSERT_EQ(d.num_res_blocks, in.num_res_blocks);
    ASSERT_EQ(d.in_channels, in.in_channels);
    ASSERT_EQ(d.out_ch, in.out_ch);
    ASSERT_EQ(d.z_channels, in.z_channels);
    ASSERT_EQ(d.embed_dim, in.embed_dim);
    ASSERT_EQ(d.n_embed, in.n_embed);
    ASSERT_EQ(d.downsample, in.downsample);
    ASSERT_EQ(d.n_params, in.n_params);
    ASSERT_EQ(d.clip_embed_dim, 0); /* the CLIP fields stay zero */

    /* Without the config the same description. */
    vqc_model_desc d2;
    ASSERT_OK(vqc_model_describe(VQC_MODEL_VQGAN, path, NULL, &d2));
    ASSERT(memcmp(&d, &d2, sizeof d) == 0);
}

static void test_describe_vqgan(void)
{
    check_vqgan_desc("tiny_vq", "zip", false, false);
    check_vqgan_desc("tiny_vq_legacy", "legacy", false, false);
    check_vqgan_desc("tiny_gumbel", "zip", true, false);
    check_vqgan_desc("tiny_transformer", "zip", false, true);

    /* The architectures the fixtures were made with (fixtures/README.md, their .yaml files). */
    vqc_model_desc d;
    ASSERT_OK(vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("vqgan/tiny_vq.ckpt"), NULL, &d));
    ASSERT_EQ(d.ch, 32);
    ASSERT_EQ(d.num_levels, 3);
    ASSERT(d.ch_mult[0] == 1 && d.ch_mult[1] == 2 && d.ch_mult[2] == 2);
    ASSERT(!d.enc_attn[0] && !d.enc_attn[1] && d.enc_attn[2]);
    ASSERT_EQ(d.num_res_blocks, 1);
    ASSERT(d.z_channels == 16 && d.embed_dim == 16 && d.n_embed == 64 && d.downsample == 4);
    ASSERT(d.in_channels == 3 && d.out_ch == 3);
    ASSERT_OK(
        vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("vqgan/tiny_transformer.ckpt"), NULL, &d));
    ASSERT_EQ(d.num_res_blocks, 2);
    ASSERT(!d.enc_attn[0] && d.enc_attn[1] && d.enc_attn[2]); /* two resolutions */
    ASSERT_OK(
        vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("vqgan/tiny_gumbel.ckpt"), NULL, &d));
    ASSERT(d.num_levels == 2 && d.downsample == 2);
}

static void check_clip_desc(const char *rel, bool vit, int resolution, long long n_params)
{
    const char *path = fixture_path(rel);
    vqc_model_desc d;
    ASSERT_OK(vqc_model_describe(VQC_MODEL_CLIP, path, NULL, &d));
    ASSERT_EQ(d.kind, VQC_MODEL_CLIP);
    ASSERT_STR_EQ(d.path, path);
    ASSERT_STR_EQ(d.format, "torchscript");
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(d.file_bytes, st.st_size);
    ASSERT_EQ(d.vit, vit);
    ASSERT_EQ(d.image_resolution, resolution);
    ASSERT_EQ(d.n_params, n_params); /* sum(p.numel() for p in model.parameters()) */
    ASSERT_EQ(d.ch, 0);              /* the VQGAN fields stay zero */

    vqc_tensor_map *map;
    vqc_clip_info in;
    ASSERT_OK(vqc_tmap_open(path, &map));
    ASSERT_OK(vqc_clip_inspect(map, &in));
    vqc_tmap_free(map);
    ASSERT_EQ(d.clip_embed_dim, in.embed_dim);
    ASSERT_EQ(d.vision_width, in.vision_width);
    ASSERT_EQ(d.vision_layers, in.vision_layers);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(d.vision_rn_layers[i], in.vision_rn_layers[i]);
    ASSERT_EQ(d.vision_patch_size, in.vision_patch_size);
    ASSERT_EQ(d.vision_heads, in.vision_heads);
    ASSERT_EQ(d.context_length, 77);
    ASSERT_EQ(d.vocab_size, 49408);
    ASSERT_EQ(d.transformer_width, in.transformer_width);
    ASSERT_EQ(d.transformer_heads, in.transformer_heads);
    ASSERT_EQ(d.transformer_layers, in.transformer_layers);
}

static void test_describe_clip(void)
{
    check_clip_desc("clip/tiny_vit.pt", true, 32, 3384897);
    check_clip_desc("clip/tiny_rn.pt", false, 64, 8469777);
    vqc_model_desc d;
    ASSERT_OK(vqc_model_describe(VQC_MODEL_CLIP, fixture_path("clip/tiny_rn.pt"), NULL, &d));
    ASSERT(d.vision_layers == 4 && d.vision_rn_layers[3] == 1 && d.vision_patch_size == 0);
}

/* Names are looked up in the models folders, for both kinds. */
static void test_describe_names(void)
{
    char dir[4200];
    vqc_model_desc d;
    snprintf(dir, sizeof dir, "%s", fixture_path("vqgan/tiny_vq.ckpt"));
    *strrchr(dir, '/') = 0;
    models_in(dir);
    ASSERT_OK(vqc_model_describe(VQC_MODEL_VQGAN, "tiny_gumbel", NULL, &d));
    ASSERT(d.gumbel && strstr(d.path, "tiny_gumbel.ckpt"));
    snprintf(dir, sizeof dir, "%s", fixture_path("clip/tiny_vit.pt"));
    *strrchr(dir, '/') = 0;
    models_in(dir);
    ASSERT_OK(vqc_model_describe(VQC_MODEL_CLIP, "tiny_rn", NULL, &d));
    ASSERT(!d.vit && strstr(d.path, "tiny_rn.pt"));
    models_in(empty_dir);
}

static void test_describe_errors(void)
{
    vqc_model_desc d;
    expect_error(vqc_model_describe(VQC_MODEL_VQGAN, "/no/such/model.ckpt", NULL, &d), VQC_ERR_IO,
                 "/no/such/model.ckpt");
    expect_error(vqc_model_describe(VQC_MODEL_CLIP, "ViT-Q/99", NULL, &d), VQC_ERR_IO, "ViT-Q/99");
    expect_error(vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("clip/tiny_vit.pt"), NULL, &d),
                 VQC_ERR_MODEL, "CLIP");
    expect_error(vqc_model_describe(VQC_MODEL_CLIP, fixture_path("vqgan/tiny_vq.ckpt"), NULL, &d),
                 VQC_ERR_MODEL, "tiny_vq.ckpt");
    expect_error(vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("vqgan/tiny_vq.ckpt"),
                                    fixture_path("vqgan/tiny_gumbel.yaml"), &d),
                 VQC_ERR_MODEL, "tiny_gumbel.yaml");
    expect_error(vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("vqgan/tiny_vq.ckpt"),
                                    "/no/such.yaml", &d),
                 VQC_ERR_IO, "/no/such.yaml");
    expect_error(
        vqc_model_describe(VQC_MODEL_VQGAN, fixture_path("clip/tokenizer_cases.json"), NULL, &d),
        VQC_ERR_FORMAT, "tokenizer_cases.json");
    expect_error(vqc_model_describe(VQC_MODEL_BPE, "x", NULL, &d), VQC_ERR_USAGE, NULL);
}

/* ---- reconstruct --------------------------------------------------------------------------- */

/* The round trip done here with the model functions: x = 2 * pixels - 1, nearest codebook
 * entries of the encoding, decoded, mapped back to [0, 1]. */
static void reference_round_trip(const char *ckpt, const char *png, vqc_image *out)
{
    vqc_vqgan *m;
    vqc_image img;
    ASSERT_OK(vqc_vqgan_load(ckpt, NULL, cpu, &m));
    ASSERT_OK(vqc_image_load(png, &img));
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *x = vqt_affine(vqc_image_to_tensor(&img, cpu), 2.0, -1.0);
    vqt_tensor *y = vqc_vqgan_decode(m, vqc_vqgan_quantize(m, vqc_vqgan_encode(m, x), NULL));
    ASSERT(y);
    ASSERT_OK(vqc_image_from_tensor(vqt_clamp(vqt_affine(y, 0.5, 0.5), 0.0, 1.0), out));
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    vqc_image_free(&img);
    vqc_vqgan_free(m);
}

/* The PNG at `path` holds `want` as 8-bit pixels (rounded as vqc_image_save_png does). */
static void expect_png(const char *path, const vqc_image *want)
{
    vqc_image got;
    ASSERT_OK(vqc_image_load(path, &got));
    ASSERT_EQ(got.w, want->w);
    ASSERT_EQ(got.h, want->h);
    for (int i = 0; i < got.w * got.h * 3; i++) {
        float v = want->rgb[i] < 0 ? 0 : want->rgb[i] > 1 ? 1 : want->rgb[i];
        ASSERT_NEAR(got.rgb[i] * 255.0, (double)lrintf(v * 255.0f), 1e-3);
    }
    vqc_image_free(&got);
}

static void test_reconstruct(void)
{
    const char *ckpt = fixture_path("vqgan/tiny_vq.ckpt");
    const char *in = tmp_file("in.png"), *odd = tmp_file("odd.png"), *out = tmp_file("rec.png");
    write_pattern_png(in, 32, 24);
    write_pattern_png(odd, 30, 24);
    vqc_reconstruct_params p = vqc_reconstruct_default_params();
    ASSERT(!p.vqgan && !p.vqgan_config && !p.input && !p.output && !p.device && !p.resize);
    p.vqgan = ckpt;
    p.input = in;
    p.output = out;
    p.device = "cpu";
    ASSERT_OK(vqc_reconstruct(&p));
    vqc_image want;
    reference_round_trip(ckpt, in, &want);
    expect_png(out, &want);

    /* Sides that are no multiple of the factor: refused, the output untouched; or resized. */
    unlink(out);
    p.input = odd;
    expect_error(vqc_reconstruct(&p), VQC_ERR_USAGE, "multiples of 4");
    ASSERT(access(out, F_OK) != 0);
    p.resize = true;
    ASSERT_OK(vqc_reconstruct(&p));
    vqc_image img;
    ASSERT_OK(vqc_image_load(out, &img));
    ASSERT(img.w == 28 && img.h == 24);
    vqc_image_free(&img);

    /* No VQGAN named: the default in the models folders (here the fixture under its name). */
    char dir[4300], link[4400];
    snprintf(dir, sizeof dir, "%s/models", tmp);
    mkdir(dir, 0755);
    snprintf(link, sizeof link, "%s/" VQC_DEFAULT_VQGAN ".ckpt", dir);
    unlink(link);
    ASSERT_EQ(symlink(ckpt, link), 0);
    models_in(dir);
    p = vqc_reconstruct_default_params();
    p.input = in;
    p.output = out;
    test_log_clear();
    ASSERT_OK(vqc_reconstruct(&p));
    expect_png(out, &want);
    ASSERT_EQ(count(test_log(), "demo"), 0);
    vqc_image_free(&want);

    /* ... or the demo set's VQGAN, with one notice, when no default is found. */
    char demo[4000];
    models_in(empty_dir);
    if (vqc_demo_dir(demo, sizeof demo) == 0) {
        char demo_vq[4100];
        snprintf(demo_vq, sizeof demo_vq, "%s/vqgan_demo.ckpt", demo);
        test_log_clear();
        ASSERT_OK(vqc_reconstruct(&p));
        ASSERT_EQ(count(test_log(), "demo VQGAN"), 1);
        reference_round_trip(demo_vq, in, &want);
        expect_png(out, &want);
        vqc_image_free(&want);
    } else {
        printf("note: no demo set here; the demo fallback is not checked\n");
    }
}

static void test_reconstruct_errors(void)
{
    const char *in = tmp_file("in.png"), *out = tmp_file("err.png");
    vqc_reconstruct_params p = vqc_reconstruct_default_params();
    p.vqgan = fixture_path("vqgan/tiny_vq.ckpt");
    p.input = in;
    p.output = out;
    p.device = "tpu";
    expect_error(vqc_reconstruct(&p), VQC_ERR_USAGE, "tpu");
    p.device = "cuda:63";
    expect_error(vqc_reconstruct(&p), VQC_ERR_RUNTIME, "cuda");
    p.device = "cpu";
    p.vqgan = fixture_path("clip/tiny_vit.pt");
    expect_error(vqc_reconstruct(&p), VQC_ERR_MODEL, "CLIP");
    p.vqgan = "/no/such/vqgan.ckpt";
    expect_error(vqc_reconstruct(&p), VQC_ERR_IO, "/no/such/vqgan.ckpt");
    p.vqgan = fixture_path("vqgan/tiny_vq.ckpt");
    p.input = "/no/such/input.png";
    expect_error(vqc_reconstruct(&p), VQC_ERR_IO, "input.png");
    p.input = in;
    p.output = "/no/such/dir/out.png";
    expect_error(vqc_reconstruct(&p), VQC_ERR_IO, "/no/such/dir");
    p.output = out;
    p.vqgan_config = fixture_path("vqgan/tiny_gumbel.yaml");
    expect_error(vqc_reconstruct(&p), VQC_ERR_MODEL, "tiny_gumbel.yaml");
    ASSERT(access(out, F_OK) != 0);
    expect_error(vqc_reconstruct(NULL), VQC_ERR_USAGE, NULL);
}

/* ---- tokenizer ----------------------------------------------------------------------------- */

/* Every case of tokenizer_cases.json: clip.tokenize(text, truncate=True)[0]. */
static void test_tokenize_cases(const vqc_tokenizer *t)
{
    char *json = read_file(fixture_path("clip/tokenizer_cases.json"), NULL);
    cJSON *root = cJSON_Parse(json);
    const cJSON *c, *cases = cJSON_GetObjectItem(root, "cases");
    ASSERT(cJSON_GetArraySize(cases) > 0);
    int truncated = 0;
    cJSON_ArrayForEach(c, cases)
    {
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"));
        const cJSON *want = cJSON_GetObjectItem(c, "context77");
        int n_bpe = cJSON_GetArraySize(cJSON_GetObjectItem(c, "bpe"));
        int64_t ids[VQC_TOKENIZER_CONTEXT];
        int dropped = -1, i = 0;
        ASSERT(text && cJSON_GetArraySize(want) == VQC_TOKENIZER_CONTEXT);
        ASSERT_OK(vqc_tokenize(t, text, VQC_TOKENIZER_CONTEXT, ids, &dropped));
        for (const cJSON *w = want->child; w; w = w->next, i++)
            if (ids[i] != (int64_t)w->valuedouble)
                TEST_FAIL("\"%s\": id %d is %lld, want %.0f", text, i, (long long)ids[i],
                          w->valuedouble);
        int over = n_bpe + 2 - VQC_TOKENIZER_CONTEXT;
        ASSERT_EQ(dropped, over > 0 ? over : 0);
        truncated += over > 0;
        ASSERT_OK(vqc_tokenize(t, text, VQC_TOKENIZER_CONTEXT, ids, NULL)); /* dropped optional */
    }
    ASSERT(truncated > 0); /* the fixture has over-long prompts */
    printf("%d reference cases tokenized\n", cJSON_GetArraySize(cases));
    cJSON_Delete(root);
    free(json);
}

static void test_tokenizer(void)
{
    static const int64_t fox[] = {49406, 320, 3086, 539, 320, 3240, 49407, 0};
    const char *bpe = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz");
    vqc_tokenizer *t;
    int64_t ids[VQC_TOKENIZER_CONTEXT];
    ASSERT_OK(vqc_tokenizer_open(bpe, &t));
    test_tokenize_cases(t);
    vqc_tokenizer_free(t);

    /* NULL: the default vocabulary in the models folders... */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", bpe);
    *strrchr(dir, '/') = 0;
    models_in(dir);
    test_log_clear();
    ASSERT_OK(vqc_tokenizer_open(NULL, &t));
    ASSERT_OK(vqc_tokenize(t, "a painting of a fox", VQC_TOKENIZER_CONTEXT, ids, NULL));
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(ids[i], fox[i]);
    ASSERT_EQ(count(test_log(), "demo"), 0);
    vqc_tokenizer_free(t);

    /* ... else the demo set's, with a notice. */
    char demo[4000];
    models_in(empty_dir);
    if (vqc_demo_dir(demo, sizeof demo) == 0) {
        test_log_clear();
        ASSERT_OK(vqc_tokenizer_open(NULL, &t));
        ASSERT_EQ(count(test_log(), "demo models' vocabulary"), 1);
        ASSERT_OK(vqc_tokenize(t, "a red circle", VQC_TOKENIZER_CONTEXT, ids, NULL));
        ASSERT_EQ(ids[0], 594); /* the demo vocabulary's start token */
        vqc_tokenizer_free(t);
    }
    t = (vqc_tokenizer *)1;
    expect_error(vqc_tokenizer_open("/no/such/vocab.txt.gz", &t), VQC_ERR_IO, "vocab.txt.gz");
    ASSERT(t == NULL);
    vqc_tokenizer_free(NULL);
}

/* ---- score --------------------------------------------------------------------------------- */

/* cos(image, text) for every pair, computed here from the CLIP model and the tokenizer. */
static void reference_scores(const char *clip, const char *bpe, const char *const *images,
                             int n_images, const char *const *texts, int n_texts, float *out)
{
    vqc_clip *m;
    vqc_tokenizer *t;
    ASSERT_OK(vqc_clip_load(clip, cpu, VQC_CLIP_FP32, &m));
    ASSERT_OK(vqc_tokenizer_load(bpe, &t));
    int ctx = vqc_clip_get_info(m)->context_length;
    int64_t *rows = calloc((size_t)n_texts * ctx, sizeof *rows);
    for (int j = 0; j < n_texts; j++)
        ASSERT_OK(vqc_tokenizer_tokenize(t, texts[j], ctx, rows + (size_t)j * ctx, NULL));
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *tf = vqt_normalize(vqc_clip_encode_text(m, rows, n_texts), 1, 1e-12);
    for (int i = 0; i < n_images; i++) {
        vqc_image img;
        vqt_tensor *x;
        ASSERT_OK(vqc_image_load(images[i], &img));
        ASSERT_OK(vqc_clip_preprocess(m, &img, &x));
        vqc_image_free(&img);
        vqt_tensor *f = vqt_normalize(vqc_clip_encode_image(m, x), 1, 1e-12);
        vqt_tensor *s = vqt_matmul(f, vqt_transpose(tf, 0, 1));
        ASSERT_EQ(vqt_to_host(s, out + (size_t)i * n_texts, VQC_DTYPE_F32, n_texts), n_texts);
    }
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    free(rows);
    vqc_tokenizer_free(t);
    vqc_clip_free(m);
}

typedef struct {
    float rows[8][8];
    int calls;
} score_log;

static void on_image(int image, const float *scores, int n_texts, void *user)
{
    score_log *l = user;
    ASSERT_EQ(image, l->calls); /* in order, once each */
    memcpy(l->rows[l->calls++], scores, (size_t)n_texts * sizeof *scores);
}

static void test_score(void)
{
    const char *clip = fixture_path("clip/tiny_vit.pt");
    const char *bpe = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz");
    const char *a = tmp_file("a.png"), *b = tmp_file("b.png");
    write_pattern_png(a, 50, 40);
    const float red[3] = {1, 0, 0}, blue[3] = {0, 0, 1};
    write_shape_png(b, red, blue, 1);
    const char *images[] = {a, b};
    const char *texts[] = {"a clockwork angel, trending on ArtStation", "Cyberpunk City",
                           "a red circle on a blue background"};
    vqc_score_params p = vqc_score_default_params();
    ASSERT(!p.clip && !p.bpe && !p.device && !p.on_image && p.n_images == 0);
    p.clip = clip;
    p.bpe = bpe;
    p.device = "cpu";
    p.images = images;
    p.n_images = 2;
    p.texts = texts;
    p.n_texts = 3;
    float got[6], want[6];
    score_log l = {.calls = 0};
    p.on_image = on_image;
    p.user = &l;
    ASSERT_OK(vqc_score(&p, got));
    ASSERT_EQ(l.calls, 2);
    reference_scores(clip, bpe, images, 2, texts, 3, want);
    for (int k = 0; k < 6; k++) {
        ASSERT(isfinite(got[k]) && got[k] >= -1.0001f && got[k] <= 1.0001f);
        ASSERT_NEAR(got[k], want[k], 2e-6);
        ASSERT(l.rows[k / 3][k % 3] == got[k]);
    }
    /* The CLI's way: no array, only the callback. */
    l.calls = 0;
    ASSERT_OK(vqc_score(&p, NULL));
    ASSERT(l.calls == 2 && l.rows[1][2] == got[5]);

    /* A missing second image: the first one's scores have been handed over. */
    const char *broken[] = {a, "/no/such/image.png"};
    p.images = broken;
    l.calls = 0;
    expect_error(vqc_score(&p, NULL), VQC_ERR_IO, "image.png");
    ASSERT_EQ(l.calls, 1);
}

/* The demo CLIP knows coloured shapes: each picture's own caption scores highest. */
static void test_score_demo(void)
{
    char demo[4000];
    models_in(empty_dir);
    if (vqc_demo_dir(demo, sizeof demo) != 0) {
        printf("note: no demo set here; the demo score is not checked\n");
        return;
    }
    const float red[3] = {0.9f, 0.1f, 0.1f}, blue[3] = {0.1f, 0.1f, 0.9f};
    const float green[3] = {0.1f, 0.8f, 0.1f}, white[3] = {1, 1, 1};
    const char *a = tmp_file("red_circle.png"), *b = tmp_file("green_square.png");
    write_shape_png(a, red, blue, 1);
    write_shape_png(b, green, white, 0);
    const char *images[] = {a, b};
    const char *texts[] = {"a red circle on a blue background",
                           "a green square on a white background"};
    vqc_score_params p = vqc_score_default_params();
    p.images = images;
    p.n_images = 2;
    p.texts = texts;
    p.n_texts = 2;
    float s[4];
    test_log_clear();
    ASSERT_OK(vqc_score(&p, s)); /* no CLIP named: the demo CLIP, with its vocabulary */
    ASSERT_EQ(count(test_log(), "demo CLIP"), 1);
    printf("demo CLIP: red circle %.3f / %.3f, green square %.3f / %.3f\n", s[0], s[1], s[3], s[2]);
    ASSERT(s[0] > s[1]);
    ASSERT(s[3] > s[2]);
}

static void test_score_errors(void)
{
    const char *images[] = {tmp_file("a.png")};
    const char *texts[] = {"x"};
    vqc_score_params p = vqc_score_default_params();
    p.clip = fixture_path("clip/tiny_vit.pt");
    p.bpe = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz");
    p.images = images;
    p.texts = texts;
    p.n_texts = 1;
    float s[1];
    expect_error(vqc_score(&p, s), VQC_ERR_USAGE, NULL); /* no image */
    p.n_images = 1;
    expect_error(vqc_score(&p, NULL), VQC_ERR_USAGE, NULL); /* nowhere to put the scores */
    p.device = "npu:0";
    expect_error(vqc_score(&p, s), VQC_ERR_USAGE, "npu");
    p.device = "cpu";
    p.clip = "/no/such/clip.pt";
    expect_error(vqc_score(&p, s), VQC_ERR_IO, "clip.pt");
    p.clip = fixture_path("vqgan/tiny_vq.ckpt");
    expect_error(vqc_score(&p, s), VQC_ERR_MODEL, NULL);
}

/* ---- this machine -------------------------------------------------------------------------- */

static void test_system_check(void)
{
    vqc_system_info si;
    ASSERT_OK(vqc_system_check(1, false, &si));
    ASSERT_EQ(si.n_threads, 1);
    ASSERT(si.matmul_ok);
    ASSERT_EQ(si.matmul_gflops, 0);
    ASSERT(si.n_cuda_devices >= 0);
    ASSERT_OK(vqc_system_check(0, true, &si));
    ASSERT(si.n_threads >= 1 && si.matmul_ok && si.matmul_gflops > 0);
    printf("%d threads, %.1f GFLOP/s\n", si.n_threads, si.matmul_gflops);
    expect_error(vqc_system_check(-1, false, &si), VQC_ERR_USAGE, NULL);
}

/* vqc_cuda_device_check's exact computations, on the CPU here (test-gpu-agreement runs them on a
 * GPU): float32 and bfloat16 must pass; float16 must pass or fail with a message naming it
 * (libtorch 1.13's CPU has no float16 matrix product or convolution, 2.x's has). Then the public
 * function's refusals: no device, a negative index, no result. */
static void test_cuda_device_check(void)
{
    char msg[256];
    if (vqc_device_compute_check(cpu, VQC_DTYPE_F32, msg, sizeof msg) != 0 ||
        vqc_device_compute_check(cpu, VQC_DTYPE_BF16, msg, sizeof msg) != 0)
        TEST_FAIL("on the CPU: %s", msg);
    if (vqc_device_compute_check(cpu, VQC_DTYPE_F16, msg, sizeof msg) != 0) {
        printf("float16 on the CPU: %s\n", msg);
        ASSERT(strncmp(msg, "float16: ", 9) == 0 && !strchr(msg, '\n'));
    }
    vqc_system_info si;
    ASSERT_OK(vqc_system_check(1, false, &si));
    vqc_cuda_device_info d;
    expect_error(vqc_cuda_device_check(si.n_cuda_devices, &d), VQC_ERR_USAGE, "no CUDA device");
    printf("%s\n", vqc_last_error());
    expect_error(vqc_cuda_device_check(-1, &d), VQC_ERR_USAGE, "no CUDA device -1");
    expect_error(vqc_cuda_device_check(0, NULL), VQC_ERR_USAGE, NULL);
    if (si.n_cuda_devices == 0)
        ASSERT(d.cc_major == -1 && d.free_bytes == -1 && !d.compute_ok && !d.name[0]);
}

int main(void)
{
    fixture_path("vqgan/tiny_vq.ckpt"); /* skips without the fixtures */
    tmp = test_tmpdir("tools");
    snprintf(empty_dir, sizeof empty_dir, "%s/empty", tmp);
    mkdir(empty_dir, 0755);
    models_in(empty_dir);
    vqc_log_set(test_log_sink, NULL, VQC_LOG_INFO);
    test_describe_vqgan();
    test_describe_clip();
    test_describe_names();
    test_describe_errors();
    test_reconstruct();
    test_reconstruct_errors();
    test_tokenizer();
    test_score();
    test_score_demo();
    test_score_errors();
    test_system_check();
    test_cuda_device_check();
    vqc_log_set(NULL, NULL, VQC_LOG_INFO);
    printf("ok\n");
    return 0;
}

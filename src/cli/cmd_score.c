/* vqclip score: CLIP cosine similarity of images and texts; and the CLIP part of vqclip info. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cmd_clip.h"
#include "cli/commands.h"
#include "torch/shim.h"
int cli_pick_device(const char *opt, vqt_device *out);
#include "gen/modelpath.h"
#include "io/image.h"
#include "io/tensor_map.h"
#include "models/clip.h"
#include "models/tokenizer.h"
#include "util/error.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip score [--clip MODEL] [--bpe FILE] -i IMG [-i IMG ...] -p TEXT\n"
               "                    [-p TEXT ...] [--json] [--device D]\n\n"
               "Prints the CLIP cosine similarity of every image with every text, one line per\n"
               "pair: the score with 6 decimals, a TAB, the image path, a TAB, the text.\n\n"
               "  --clip MODEL       CLIP weights (OpenAI .pt, state dict, .safetensors, HF\n"
               "                     layout): a path, or a name such as ViT-B/32 looked up in\n"
               "                     $VQCLIP_MODELS, then ~/.cache/vqclip (default: ViT-B/32;\n"
               "                     the demo CLIP when no downloaded model is found)\n"
               "  --bpe FILE         the tokenizer's vocabulary (default: vocab.json with\n"
               "                     merges.txt next to the CLIP file, else\n"
               "                     " VQC_DEFAULT_BPE " looked up in the same folders)\n"
               "  -i, --image IMG    an image (PNG, JPEG, ...); repeatable\n"
               "  -p, --prompt TEXT  a text; repeatable\n"
               "  --json             one JSON object per line:\n"
               "                     {\"image\":..,\"text\":..,\"score\":..}\n"
               "  --device D         cpu, cuda or cuda:N (default: cuda when available)\n");
}

typedef struct score_opts {
    const char *clip, *bpe, *device;
    const char **images, **texts;
    int n_images, n_texts, json;
} score_opts;

static int parse(int argc, char **argv, score_opts *o)
{
    enum { O_CLIP = 256, O_BPE, O_JSON, O_DEVICE, O_HELP };
    static const struct option lo[] = {
        {"clip", required_argument, 0, O_CLIP}, {"bpe", required_argument, 0, O_BPE},
        {"image", required_argument, 0, 'i'},   {"prompt", required_argument, 0, 'p'},
        {"json", no_argument, 0, O_JSON},       {"device", required_argument, 0, O_DEVICE},
        {"help", no_argument, 0, O_HELP},       {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:p:h", lo, NULL)) != -1) {
        switch (c) {
        case O_CLIP: o->clip = optarg; break;
        case O_BPE: o->bpe = optarg; break;
        case 'i': o->images[o->n_images++] = optarg; break;
        case 'p': o->texts[o->n_texts++] = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_DEVICE: o->device = optarg; break;
        case 'h':
        case O_HELP: usage(stdout); return -1;
        default:
            cli_option_error("score", c, argv);
            cli_print_error(NULL);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vqclip: error: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (!o->n_images || !o->n_texts) {
        fprintf(stderr, "vqclip: error: score needs at least one -i and at least one -p "
                        "(see vqclip score --help)\n");
        return 1;
    }
    return 0;
}

/* ---- inputs -------------------------------------------------------------------------------- */

/* Token rows [n_texts, ctx] for the texts (malloc'ed into *out). */
static int tokenize_all(const score_opts *o, int ctx, const char *clip_path, int64_t **out)
{
    char path[4096];
    vqc_tokenizer *tok = NULL;
    int rc = vqc_model_find_bpe(o->bpe, clip_path, path, sizeof path);
    rc = rc ? rc : vqc_tokenizer_load(path, &tok);
    int64_t *rows = rc ? NULL : malloc((size_t)o->n_texts * (size_t)ctx * sizeof *rows);
    if (!rc && !rows)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < o->n_texts; i++) {
        int dropped = 0;
        rc = vqc_tokenizer_tokenize(tok, o->texts[i], ctx, rows + (size_t)i * ctx, &dropped);
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
static int text_features(const vqc_clip *m, const score_opts *o, const char *clip_path,
                         vqt_tensor **out)
{
    int64_t *rows;
    int rc = tokenize_all(o, vqc_clip_get_info(m)->context_length, clip_path, &rows);
    if (rc)
        return rc;
    vqt_tensor *f = vqc_clip_encode_text(m, rows, o->n_texts);
    free(rows);
    if (!f)
        return VQC_ERR_RUNTIME;
    *out = vqt_normalize(f, 1, 1e-12);
    vqt_free(f);
    return *out ? 0 : vqc_error_set(VQC_ERR_RUNTIME, "%s", vqt_last_error());
}

/* ---- output -------------------------------------------------------------------------------- */

/* Writes s as a JSON string (quotes included); UTF-8 passes through. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void print_score(const score_opts *o, const char *image, const char *text, double s)
{
    if (!o->json) {
        printf("%.6f\t%s\t%s\n", s, image, text);
        return;
    }
    fputs("{\"image\":", stdout);
    json_str(stdout, image);
    fputs(",\"text\":", stdout);
    json_str(stdout, text);
    printf(",\"score\":%.6f}\n", s);
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
        rc = vqc_error_set(VQC_ERR_RUNTIME, "scoring %s: %s", path, vqt_last_error());
    vqt_scope_end();
    vqt_free(x);
    return rc;
}

/* The CLIP named by --clip; without one the default ViT-B/32, or the demo set's CLIP (with a
 * notice) when no downloaded model is found. */
static int find_clip(const score_opts *o, char *path, size_t len)
{
    char demo[4000];
    if (!o->clip && vqc_demo_fallback(demo, sizeof demo)) {
        vqc_log(VQC_LOG_WARN,
                "no downloaded models found: using the small demo CLIP in %s; "
                "scripts/download-models.sh fetches the real one",
                demo);
        snprintf(path, len, "%s/%s", demo, VQC_DEMO_CLIP);
        return 0;
    }
    return vqc_model_find(VQC_MODEL_CLIP, o->clip ? o->clip : VQC_DEFAULT_CLIP, path, len);
}

static int run(const score_opts *o, vqt_device dev)
{
    vqc_clip *m = NULL;
    vqt_tensor *tf = NULL;
    float *sims = malloc((size_t)o->n_texts * sizeof *sims);
    if (!sims)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    char path[4096];
    int rc = find_clip(o, path, sizeof path);
    rc = rc ? rc : vqc_clip_load(path, dev, VQC_CLIP_FP32, &m);
    bool grad = vqt_set_grad_enabled(false);
    rc = rc ? rc : text_features(m, o, path, &tf);
    for (int i = 0; !rc && i < o->n_images; i++) {
        rc = score_image(m, o->images[i], tf, sims, o->n_texts);
        for (int j = 0; !rc && j < o->n_texts; j++)
            print_score(o, o->images[i], o->texts[j], sims[j]);
        fflush(stdout);
    }
    vqt_set_grad_enabled(grad);
    vqt_free(tf);
    vqc_clip_free(m);
    free(sims);
    return rc;
}

int cmd_score(int argc, char **argv)
{
    score_opts o = {0};
    o.images = calloc((size_t)argc + 1, sizeof *o.images);
    o.texts = calloc((size_t)argc + 1, sizeof *o.texts);
    int rc = o.images && o.texts ? parse(argc, argv, &o) : 3;
    vqt_device dev;
    if (rc == 0)
        rc = cli_pick_device(o.device, &dev);
    if (rc == 0) {
        int err = run(&o, dev);
        if (err)
            cli_print_error(NULL);
        rc = cli_exit_status(err);
    }
    free(o.images);
    free(o.texts);
    return rc < 0 ? 0 : rc;
}

/* ---- vqclip info --clip -------------------------------------------------------------------- */

static void info_text(const char *path, const vqc_tensor_map *map, const vqc_clip_info *in)
{
    printf("file:             %s (%s, %.1f MB)\n", path, vqc_tmap_format(map),
           vqc_tmap_file_size(map) / 1e6);
    printf("model:            CLIP %s\n",
           in->is_vit ? "ViT (VisionTransformer)" : "ResNet (ModifiedResNet)");
    printf("embed_dim:        %d\nimage_resolution: %d\n", in->embed_dim, in->image_resolution);
    if (in->is_vit)
        printf("vision:           width %d, layers %d, patch %d, heads %d\n", in->vision_width,
               in->vision_layers, in->vision_patch_size, in->vision_heads);
    else
        printf("vision:           width %d, layers [%d, %d, %d, %d], heads %d\n", in->vision_width,
               in->vision_rn_layers[0], in->vision_rn_layers[1], in->vision_rn_layers[2],
               in->vision_rn_layers[3], in->vision_heads);
    printf("text:             context %d, vocab %d, width %d, heads %d, layers %d\n",
           in->context_length, in->vocab_size, in->transformer_width, in->transformer_heads,
           in->transformer_layers);
    printf("parameters:       %lld\n", (long long)in->n_params);
}

static void info_json(const vqc_tensor_map *map, const vqc_clip_info *in)
{
    printf("{\"model\":\"clip\",\"arch\":\"%s\",\"format\":\"%s\",\"embed_dim\":%d,"
           "\"image_resolution\":%d,\"vision_width\":%d,\"vision_layers\":%d,",
           in->is_vit ? "vit" : "resnet", vqc_tmap_format(map), in->embed_dim, in->image_resolution,
           in->vision_width, in->vision_layers);
    if (!in->is_vit)
        printf("\"vision_rn_layers\":[%d,%d,%d,%d],", in->vision_rn_layers[0],
               in->vision_rn_layers[1], in->vision_rn_layers[2], in->vision_rn_layers[3]);
    printf("\"vision_patch_size\":%d,\"vision_heads\":%d,\"context_length\":%d,"
           "\"vocab_size\":%d,\"transformer_width\":%d,\"transformer_heads\":%d,"
           "\"transformer_layers\":%d,\"parameters\":%lld}\n",
           in->vision_patch_size, in->vision_heads, in->context_length, in->vocab_size,
           in->transformer_width, in->transformer_heads, in->transformer_layers,
           (long long)in->n_params);
}

int clip_info_cmd(const char *name, int json)
{
    char path[4096];
    vqc_tensor_map *map;
    int rc = vqc_model_find(VQC_MODEL_CLIP, name, path, sizeof path);
    rc = rc ? rc : vqc_tmap_open(path, &map);
    if (rc)
        return rc;
    vqc_clip_info info;
    rc = vqc_clip_inspect(map, &info);
    if (rc) {
        vqc_tmap_free(map);
        return vqc_error_wrap(rc, "%s", path);
    }
    if (json)
        info_json(map, &info);
    else
        info_text(path, map, &info);
    vqc_tmap_free(map);
    return 0;
}

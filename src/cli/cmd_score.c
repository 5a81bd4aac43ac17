/* vqclip score: CLIP cosine similarity of images and texts. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "vqclip.h"

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

/* ---- output -------------------------------------------------------------------------------- */

/* Writes s as a JSON string (quotes included); UTF-8 passes through. */
static void json_str(FILE *f, const char *s)
{
    cJSON *str = cJSON_CreateString(s);
    char *text = str ? cJSON_PrintUnformatted(str) : NULL;
    fputs(text ? text : "null", f);
    cJSON_free(text);
    cJSON_Delete(str);
}

/* Prints image `image`'s line for every text (the library's score callback). */
static void print_scores(int image, const float *scores, int n_texts, void *user)
{
    const score_opts *o = user;
    for (int j = 0; j < n_texts; j++) {
        const char *path = o->images[image], *text = o->texts[j];
        if (!o->json) {
            printf("%.6f\t%s\t%s\n", scores[j], path, text);
            continue;
        }
        fputs("{\"image\":", stdout);
        json_str(stdout, path);
        fputs(",\"text\":", stdout);
        json_str(stdout, text);
        printf(",\"score\":%.6f}\n", scores[j]);
    }
    fflush(stdout);
}

int cmd_score(int argc, char **argv)
{
    score_opts o = {0};
    o.images = calloc((size_t)argc + 1, sizeof *o.images);
    o.texts = calloc((size_t)argc + 1, sizeof *o.texts);
    int rc = o.images && o.texts ? parse(argc, argv, &o) : 3;
    if (rc == 0) {
        vqc_score_params p = vqc_score_default_params();
        p.clip = o.clip;
        p.bpe = o.bpe;
        p.device = o.device;
        p.images = o.images;
        p.n_images = o.n_images;
        p.texts = o.texts;
        p.n_texts = o.n_texts;
        p.on_image = print_scores;
        p.user = &o;
        int err = vqc_score(&p, NULL);
        if (err)
            cli_print_error(NULL);
        rc = cli_exit_status(err);
    }
    free(o.images);
    free(o.texts);
    return rc < 0 ? 0 : rc;
}

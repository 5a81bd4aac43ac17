/* vqclip info: describe a VQGAN or CLIP model file (architecture inferred from the weights). */
#include <getopt.h>
#include <stdio.h>

#include "cli/commands.h"
#include "vqclip.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip info (--vqgan CKPT [--vqgan-config YAML] | --clip MODEL) [--json]\n\n"
               "Prints the architecture vqclip infers from the weights, the parameter count and\n"
               "the container format, without loading the model onto a device.\n");
}

/* ---- VQGAN ------------------------------------------------------------------------------- */

/* The levels with attention, separated by `sep`. */
static void print_levels(const vqc_model_desc *d, const bool *attn, const char *sep)
{
    for (int i = 0, first = 1; i < d->num_levels; i++) {
        if (!attn[i])
            continue;
        printf("%s%d", first ? "" : sep, i);
        first = 0;
    }
}

static void print_ch_mult(const vqc_model_desc *d, const char *sep)
{
    for (int i = 0; i < d->num_levels; i++)
        printf("%s%d", i ? sep : "", d->ch_mult[i]);
}

static void vqgan_json(const vqc_model_desc *d)
{
    printf("{\"model\":\"vqgan\",\"kind\":\"%s\",\"from_transformer\":%s,\"ch\":%d,"
           "\"ch_mult\":[",
           d->gumbel ? "GumbelVQ" : "VQModel", d->from_transformer ? "true" : "false", d->ch);
    print_ch_mult(d, ",");
    printf("],\"num_res_blocks\":%d,\"attn_levels_encoder\":[", d->num_res_blocks);
    print_levels(d, d->enc_attn, ",");
    printf("],\"attn_levels_decoder\":[");
    print_levels(d, d->dec_attn, ",");
    printf("],\"z_channels\":%d,\"embed_dim\":%d,\"n_embed\":%d,\"downsample\":%d,"
           "\"in_channels\":%d,\"out_ch\":%d,\"parameters\":%lld}\n",
           d->z_channels, d->embed_dim, d->n_embed, d->downsample, d->in_channels, d->out_ch,
           d->n_params);
}

static void vqgan_text(const vqc_model_desc *d)
{
    printf("model:            VQGAN %s%s\n", d->gumbel ? "GumbelVQ" : "VQModel",
           d->from_transformer ? " (first stage of a Net2NetTransformer)" : "");
    printf("ch:               %d\nch_mult:          ", d->ch);
    print_ch_mult(d, " ");
    printf("\nnum_res_blocks:   %d\nattention levels: encoder [", d->num_res_blocks);
    print_levels(d, d->enc_attn, " ");
    printf("] decoder [");
    print_levels(d, d->dec_attn, " ");
    printf("]\nz_channels:       %d\nembed_dim:        %d\nn_embed:          %d\n"
           "downsampling:     f%d\nparameters:       %lld\n",
           d->z_channels, d->embed_dim, d->n_embed, d->downsample, d->n_params);
}

/* ---- CLIP -------------------------------------------------------------------------------- */

static void clip_json(const vqc_model_desc *d)
{
    printf("{\"model\":\"clip\",\"arch\":\"%s\",\"format\":\"%s\",\"embed_dim\":%d,"
           "\"image_resolution\":%d,\"vision_width\":%d,\"vision_layers\":%d,",
           d->vit ? "vit" : "resnet", d->format, d->clip_embed_dim, d->image_resolution,
           d->vision_width, d->vision_layers);
    if (!d->vit)
        printf("\"vision_rn_layers\":[%d,%d,%d,%d],", d->vision_rn_layers[0],
               d->vision_rn_layers[1], d->vision_rn_layers[2], d->vision_rn_layers[3]);
    printf("\"vision_patch_size\":%d,\"vision_heads\":%d,\"context_length\":%d,"
           "\"vocab_size\":%d,\"transformer_width\":%d,\"transformer_heads\":%d,"
           "\"transformer_layers\":%d,\"parameters\":%lld}\n",
           d->vision_patch_size, d->vision_heads, d->context_length, d->vocab_size,
           d->transformer_width, d->transformer_heads, d->transformer_layers, d->n_params);
}

static void clip_text(const vqc_model_desc *d)
{
    printf("model:            CLIP %s\n",
           d->vit ? "ViT (VisionTransformer)" : "ResNet (ModifiedResNet)");
    printf("embed_dim:        %d\nimage_resolution: %d\n", d->clip_embed_dim, d->image_resolution);
    if (d->vit)
        printf("vision:           width %d, layers %d, patch %d, heads %d\n", d->vision_width,
               d->vision_layers, d->vision_patch_size, d->vision_heads);
    else
        printf("vision:           width %d, layers [%d, %d, %d, %d], heads %d\n", d->vision_width,
               d->vision_rn_layers[0], d->vision_rn_layers[1], d->vision_rn_layers[2],
               d->vision_rn_layers[3], d->vision_heads);
    printf("text:             context %d, vocab %d, width %d, heads %d, layers %d\n",
           d->context_length, d->vocab_size, d->transformer_width, d->transformer_heads,
           d->transformer_layers);
    printf("parameters:       %lld\n", d->n_params);
}

/* ---- the command ------------------------------------------------------------------------- */

/* Prints the description: text lines, or one JSON object on one line. */
static void print_desc(const vqc_model_desc *d, int json)
{
    bool vqgan = d->kind == VQC_MODEL_VQGAN;
    if (json) {
        (vqgan ? vqgan_json : clip_json)(d);
        return;
    }
    printf("file:             %s (%s, %.1f MB)\n", d->path, d->format, d->file_bytes / 1e6);
    (vqgan ? vqgan_text : clip_text)(d);
}

int cmd_info(int argc, char **argv)
{
    enum { O_VQGAN = 256, O_YAML, O_CLIP, O_JSON, O_HELP };
    static const struct option lo[] = {
        {"vqgan", required_argument, 0, O_VQGAN}, {"vqgan-config", required_argument, 0, O_YAML},
        {"clip", required_argument, 0, O_CLIP},   {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},         {0, 0, 0, 0}};
    const char *vqgan = NULL, *yaml = NULL, *clip = NULL;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case O_VQGAN: vqgan = optarg; break;
        case O_YAML: yaml = optarg; break;
        case O_CLIP: clip = optarg; break;
        case O_JSON: json = 1; break;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        default:
            cli_option_error("info", c, argv);
            cli_print_error(NULL);
            return 1;
        }
    }
    if (optind < argc || (!vqgan == !clip)) {
        fprintf(stderr, "vqclip: error: info needs exactly one of --vqgan or --clip\n");
        return 1;
    }
    vqc_model_desc d;
    int rc = vqgan ? vqc_model_describe(VQC_MODEL_VQGAN, vqgan, yaml, &d)
                   : vqc_model_describe(VQC_MODEL_CLIP, clip, NULL, &d);
    if (rc)
        cli_print_error(NULL);
    else
        print_desc(&d, json);
    return cli_exit_status(rc);
}

/* vqclip reconstruct: encode, quantise and decode an image with a VQGAN. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "vqclip.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip reconstruct --vqgan CKPT [--vqgan-config YAML] -i IN -o OUT.png\n"
               "                          [--resize] [--device D]\n\n"
               "Encodes IN with the VQGAN, replaces every latent by its nearest codebook entry,\n"
               "decodes, and writes OUT.png (.jpg/.jpeg: JPEG). Image sides must be multiples of "
               "the model's\n"
               "downsampling factor (16 for the f16 models); --resize rounds them down instead.\n\n"
               "  --vqgan CKPT         taming-transformers checkpoint (.ckpt, .safetensors)\n"
               "  --vqgan-config YAML  its config, cross-checked against the weights\n"
               "  -i, --input IN       input image (PNG, JPEG, ...)\n"
               "  -o, --output OUT     output .png or .jpg (written atomically)\n"
               "  --resize             resize to the nearest smaller multiple of the factor\n"
               "  --device D           cpu, cuda or cuda:N (default: cuda when available)\n");
}

typedef struct {
    const char *vqgan, *yaml, *in, *out, *device;
    bool resize;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
    enum { O_VQGAN = 256, O_YAML, O_RESIZE, O_DEVICE, O_HELP };
    static const struct option lo[] = {
        {"vqgan", required_argument, 0, O_VQGAN}, {"vqgan-config", required_argument, 0, O_YAML},
        {"input", required_argument, 0, 'i'},     {"output", required_argument, 0, 'o'},
        {"resize", no_argument, 0, O_RESIZE},     {"device", required_argument, 0, O_DEVICE},
        {"help", no_argument, 0, O_HELP},         {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:o:h", lo, NULL)) != -1) {
        switch (c) {
        case O_VQGAN: o->vqgan = optarg; break;
        case O_YAML: o->yaml = optarg; break;
        case 'i': o->in = optarg; break;
        case 'o': o->out = optarg; break;
        case O_RESIZE: o->resize = true; break;
        case O_DEVICE: o->device = optarg; break;
        case 'h':
        case O_HELP: usage(stdout); exit(0);
        default:
            cli_option_error("reconstruct", c, argv);
            cli_print_error(NULL);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vqclip: error: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (!o->vqgan || !o->in || !o->out) {
        fprintf(stderr, "vqclip: error: reconstruct needs --vqgan, -i and -o "
                        "(see vqclip reconstruct --help)\n");
        return 1;
    }
    return 0;
}

int cmd_reconstruct(int argc, char **argv)
{
    opts_t o = {0};
    if (parse(argc, argv, &o))
        return 1;
    vqc_reconstruct_params p = vqc_reconstruct_default_params();
    p.vqgan = o.vqgan;
    p.vqgan_config = o.yaml;
    p.input = o.in;
    p.output = o.out;
    p.device = o.device;
    p.resize = o.resize;
    int rc = vqc_reconstruct(&p);
    if (rc) {
        cli_print_error(NULL);
        return cli_exit_status(rc);
    }
    return 0;
}

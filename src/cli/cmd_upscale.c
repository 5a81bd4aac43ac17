/* vqclip upscale: a picture through a Real-ESRGAN network (include/vqclip.h, docs/upscale.md). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "vqclip.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vqclip upscale -m MODEL -i IN -o OUT.png [--tile N] [--tile-pad N]\n"
            "                      [--pre-pad N] [--outscale S] [--fp32] [--device D]\n\n"
            "Upscales IN with a Real-ESRGAN network as Real-ESRGAN's own inference does, and\n"
            "writes OUT.png (grey stays grey, alpha is kept, 16-bit stays 16-bit).\n\n"
            "  -m, --model MODEL  RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B,\n"
            "                     RealESRGAN_x2plus, realesr-general-x4v3, realesr-animevideov3\n"
            "                     (found in the models folders) or a .pth path\n"
            "  -i, --input IN     input image (PNG 8/16-bit, JPEG, ...)\n"
            "  -o, --output OUT   output PNG (written atomically; never the input)\n"
            "  --tile N           compute in tiles of N input pixels: memory bounded by the\n"
            "                     tile (default 0: the whole picture at once)\n"
            "  --tile-pad N       context around each tile (default 10)\n"
            "  --pre-pad N        reflect padding at the right and bottom (default 0)\n"
            "  --outscale S       final size / input size (default: the network's scale);\n"
            "                     another value resizes with Lanczos\n"
            "  --fp32             on CUDA, compute in float32 (default float16)\n"
            "  --device D         cpu, cuda or cuda:N (default: cuda when available)\n");
}

typedef struct {
    const char *in, *out;
    vqc_upscale_params p;
} opts_t;

/* A whole non-negative integer, or -1. */
static int parse_count(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || end == s || *end || v < 0 || v > 1000000 ? -1 : (int)v;
}

static int bad_value(const char *opt, const char *val)
{
    vqc_set_error(VQC_ERR_USAGE, "upscale: %s '%s' is not a valid value", opt, val);
    cli_print_error(NULL);
    return 1;
}

static int parse(int argc, char **argv, opts_t *o)
{
    enum { O_TILE = 256, O_TILE_PAD, O_PRE_PAD, O_OUTSCALE, O_FP32, O_DEVICE, O_HELP };
    static const struct option lo[] = {{"model", required_argument, 0, 'm'},
                                       {"input", required_argument, 0, 'i'},
                                       {"output", required_argument, 0, 'o'},
                                       {"tile", required_argument, 0, O_TILE},
                                       {"tile-pad", required_argument, 0, O_TILE_PAD},
                                       {"pre-pad", required_argument, 0, O_PRE_PAD},
                                       {"outscale", required_argument, 0, O_OUTSCALE},
                                       {"fp32", no_argument, 0, O_FP32},
                                       {"device", required_argument, 0, O_DEVICE},
                                       {"help", no_argument, 0, O_HELP},
                                       {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:i:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o->p.model = optarg; break;
        case 'i': o->in = optarg; break;
        case 'o': o->out = optarg; break;
        case O_TILE:
            if ((o->p.tile = parse_count(optarg)) < 0)
                return bad_value("--tile", optarg);
            break;
        case O_TILE_PAD:
            if ((o->p.tile_pad = parse_count(optarg)) < 0)
                return bad_value("--tile-pad", optarg);
            break;
        case O_PRE_PAD:
            if ((o->p.pre_pad = parse_count(optarg)) < 0)
                return bad_value("--pre-pad", optarg);
            break;
        case O_OUTSCALE: {
            char *end;
            o->p.outscale = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(o->p.outscale) || o->p.outscale <= 0 ||
                o->p.outscale > 64)
                return bad_value("--outscale", optarg);
            break;
        }
        case O_FP32: o->p.fp32 = true; break;
        case O_DEVICE: o->p.device = optarg; break;
        case 'h':
        case O_HELP: usage(stdout); exit(0);
        default:
            cli_option_error("upscale", c, argv);
            cli_print_error(NULL);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vqclip: error: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (!o->p.model || !o->in || !o->out) {
        fprintf(stderr, "vqclip: error: upscale needs -m, -i and -o (see vqclip upscale --help)\n");
        return 1;
    }
    return 0;
}

int cmd_upscale(int argc, char **argv)
{
    opts_t o = {NULL, NULL, vqc_upscale_default_params()};
    if (parse(argc, argv, &o))
        return 1;
    vqc_upscaler *u = NULL;
    int rc = vqc_check_output(o.out); /* before the model is read */
    rc = rc ? rc : vqc_upscaler_load(&o.p, &u);
    rc = rc ? rc : vqc_upscale_file(u, o.in, o.out);
    vqc_upscaler_free(u);
    if (rc) {
        cli_print_error(NULL);
        return cli_exit_status(rc);
    }
    return 0;
}

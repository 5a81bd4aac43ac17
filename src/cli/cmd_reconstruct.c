/* vqclip reconstruct: encode, quantise and decode an image with a VQGAN. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "torch/shim.h"
int cli_pick_device(const char *opt, vqt_device *out);
#include "io/image.h"
#include "models/vqgan.h"
#include "util/error.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip reconstruct --vqgan CKPT [--vqgan-config YAML] -i IN -o OUT.png\n"
               "                          [--resize] [--device D]\n\n"
               "Encodes IN with the VQGAN, replaces every latent by its nearest codebook entry,\n"
               "decodes, and writes OUT.png. Image sides must be multiples of the model's\n"
               "downsampling factor (16 for the f16 models); --resize rounds them down instead.\n\n"
               "  --vqgan CKPT         taming-transformers checkpoint (.ckpt, .safetensors)\n"
               "  --vqgan-config YAML  its config, cross-checked against the weights\n"
               "  -i, --input IN       input image (PNG, JPEG, ...)\n"
               "  -o, --output OUT     output PNG (written atomically)\n"
               "  --resize             resize to the nearest smaller multiple of the factor\n"
               "  --device D           cpu, cuda or cuda:N (default: cuda when available)\n");
}

typedef struct {
    const char *vqgan, *yaml, *in, *out, *device;
    int resize;
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
        case O_RESIZE: o->resize = 1; break;
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

/* x in [-1, 1] of the image, resized down to multiples of f when asked. */
static vqt_tensor *input_tensor(const vqc_image *img, int f, int resize, vqt_device dev)
{
    int w = img->w, h = img->h;
    if (w % f || h % f) {
        if (!resize) {
            vqc_error_set(VQC_ERR_USAGE,
                          "image is %dx%d, sides must be multiples of %d (try --resize)", w, h, f);
            return NULL;
        }
        w = w / f * f;
        h = h / f * f;
        if (w == 0 || h == 0) {
            vqc_error_set(VQC_ERR_USAGE, "image is smaller than %dx%d", f, f);
            return NULL;
        }
        vqc_log(VQC_LOG_INFO, "resizing %dx%d to %dx%d", img->w, img->h, w, h);
    }
    vqt_scope_begin();
    vqt_tensor *x = vqc_image_to_tensor(img, dev);
    if (w != img->w || h != img->h)
        x = vqt_clamp(vqt_interpolate(x, h, w, VQT_INTERP_AREA, false), 0.0, 1.0);
    x = vqt_keep(vqt_affine(x, 2.0, -1.0));
    vqt_scope_end();
    if (!x)
        vqc_error_set(VQC_ERR_RUNTIME, "%s", vqt_last_error());
    return x;
}

static int run(const opts_t *o, vqt_device dev)
{
    vqc_image img = {0}, out = {0};
    vqc_vqgan *m = NULL;
    int rc = vqc_check_writable(o->out);
    rc = rc ? rc : vqc_image_load(o->in, &img);
    rc = rc ? rc : vqc_vqgan_load(o->vqgan, o->yaml, dev, &m);
    if (rc) {
        vqc_image_free(&img);
        return rc;
    }
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *x = input_tensor(&img, vqc_vqgan_get_info(m)->downsample, o->resize, dev);
    vqt_tensor *zq = x ? vqc_vqgan_quantize(m, vqc_vqgan_encode(m, x), NULL) : NULL;
    vqt_tensor *y = zq ? vqc_vqgan_decode(m, zq) : NULL;
    if (y) {
        vqt_tensor *px = vqt_clamp(vqt_affine(y, 0.5, 0.5), 0.0, 1.0);
        rc = vqc_image_from_tensor(px, &out);
    } else {
        rc = x ? VQC_ERR_RUNTIME : VQC_ERR_USAGE;
    }
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    const char *meta[] = {"Software", "vqclip " VQCLIP_VERSION, NULL};
    rc = rc ? rc : vqc_image_save_png(o->out, &out, meta);
    vqc_image_free(&img);
    vqc_image_free(&out);
    vqc_vqgan_free(m);
    return rc;
}

int cmd_reconstruct(int argc, char **argv)
{
    opts_t o = {0};
    if (parse(argc, argv, &o))
        return 1;
    vqt_device dev;
    int st = cli_pick_device(o.device, &dev);
    if (st)
        return st;
    int rc = run(&o, dev);
    if (rc) {
        cli_print_error(NULL);
        return cli_exit_status(rc);
    }
    return 0;
}

/* vqc_reconstruct: an image through a VQGAN's encoder, codebook and decoder. */
#include <string.h>

#include "gen/tools.h"
#include "io/image.h"
#include "models/vqgan.h"
#include "util/compute_lock.h"
#include "util/error.h"
#include "util/torch_error.h"

vqc_reconstruct_params vqc_reconstruct_default_params(void)
{
    vqc_reconstruct_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* x in [-1, 1] of the image, resized down to multiples of f when asked. */
static vqt_tensor *input_tensor(const vqc_image *img, int f, bool resize, vqt_device dev)
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
    if (w != img->w || h != img->h) /* area averaging: each output pixel is its block's mean */
        x = vqt_clamp(vqt_interpolate(x, h, w, VQT_INTERP_AREA, false), 0.0, 1.0);
    return vqc_torch_scope_end(vqt_affine(x, 2.0, -1.0), "input image");
}

/* Encodes, quantises and decodes img into *out (pixels in [0, 1]). */
static int round_trip(const vqc_vqgan *m, const vqc_image *img, bool resize, vqt_device dev,
                      vqc_image *out)
{
    int rc;
    bool grad = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    vqt_tensor *x = input_tensor(img, vqc_vqgan_get_info(m)->downsample, resize, dev);
    vqt_tensor *zq = x ? vqc_vqgan_quantize(m, vqc_vqgan_encode(m, x), NULL) : NULL;
    vqt_tensor *y = zq ? vqc_vqgan_decode(m, zq) : NULL;
    if (y) {
        vqt_tensor *px = vqt_clamp(vqt_affine(y, 0.5, 0.5), 0.0, 1.0);
        rc = vqc_image_from_tensor(px, out);
    } else { /* the model functions recorded their own message */
        rc = x ? VQC_ERR_RUNTIME : VQC_ERR_USAGE;
    }
    vqt_scope_end();
    vqt_set_grad_enabled(grad);
    return rc;
}

/* The order of the checks is the command line's: a bad device, output or input fails before
 * the model is read. */
static int reconstruct_locked(const vqc_reconstruct_params *p)
{
    if (!p || !p->input || !p->output)
        return vqc_error_set(VQC_ERR_USAGE, "reconstruct needs an input and an output image");
    vqt_device dev;
    char path[4096];
    vqc_image img = {0}, out = {0};
    vqc_vqgan *m = NULL;
    int rc = vqc_tool_device(p->device, &dev);
    rc = rc ? rc : vqc_image_check_name(p->output, "output");
    rc = rc ? rc : vqc_check_writable(p->output);
    rc = rc ? rc : vqc_image_load(p->input, &img);
    rc = rc ? rc : vqc_tool_model(VQC_MODEL_VQGAN, p->vqgan, path, sizeof path);
    rc = rc ? rc : vqc_vqgan_load(path, p->vqgan_config, dev, &m);
    rc = rc ? rc : round_trip(m, &img, p->resize, dev, &out);
    const char *meta[] = {"Software", "vqclip " VQCLIP_VERSION, NULL};
    rc = rc ? rc : vqc_image_save(p->output, &out, meta);
    vqc_image_free(&img);
    vqc_image_free(&out);
    vqc_vqgan_free(m);
    return rc;
}

int vqc_reconstruct(const vqc_reconstruct_params *p)
{
    vqc_compute_begin();
    int rc = reconstruct_locked(p);
    vqc_compute_end();
    return rc;
}

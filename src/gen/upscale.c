/* vqc_upscale_*: Real-ESRGAN's RealESRGANer.enhance in C (include/vqclip.h, docs/upscale.md).
 *
 * The picture goes through the network as RealESRGANer sends it: samples / 255 (or / 65535 for
 * a 16-bit picture whose largest sample exceeds 256), grey repeated into RGB, reflect padding of
 * pre_pad on the right and bottom, then reflect padding up to a multiple of 2 (x2 networks) or
 * 4 (x1), the whole padded picture at once or in tiles of `tile` input pixels, each computed
 * with `tile_pad` pixels of context that are then cut off. The output is clamped to [0, 1],
 * converted back to grey where the input was (0.299 R + 0.587 G + 0.114 B, OpenCV's weights),
 * and rounded to the output depth. Alpha is a second pass: the alpha plane as a grey RGB picture.
 * Each tile's output is rounded into the result as soon as it exists, so the device holds one
 * tile's activations and the host the input and the rounded result, never the float output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen/lanczos.h"
#include "gen/tools.h"
#include "io/image.h"
#include "models/esrgan.h"
#include "util/compute_lock.h"
#include "util/error.h"
#include "util/torch_error.h"
#include "vqclip.h"

struct vqc_upscaler {
    vqc_esrgan *net;
    vqt_device dev;
    vqc_upscale_params p;
};

vqc_upscale_params vqc_upscale_default_params(void)
{
    vqc_upscale_params p;
    memset(&p, 0, sizeof p);
    p.tile_pad = 10; /* Real-ESRGAN's inference script: tile 0, tile_pad 10, pre_pad 0 */
    return p;
}

/* ---- finding the model --------------------------------------------------------------------- */

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A path, or NAME / NAME.pth in the models folders. */
static int find_model(const char *name, char *out, size_t len)
{
    if (is_file(name))
        return snprintf(out, len, "%s", name) < (int)len
                   ? 0
                   : vqc_error_set(VQC_ERR_USAGE, "model path too long");
    if (strchr(name, '/'))
        return vqc_error_set(VQC_ERR_IO, "upscaler model file %s does not exist", name);
    const char *dirs[4], *suffixes[] = {"", ".pth"};
    int nd = vqc_model_dirs(dirs, 4);
    char tried[2048] = "";
    size_t at = 0;
    for (int d = 0; d < nd; d++)
        for (int s = 0; s < 2; s++) {
            snprintf(out, len, "%s/%s%s", dirs[d], name, suffixes[s]);
            if (is_file(out))
                return 0;
            if (at < sizeof tried)
                at += (size_t)snprintf(tried + at, sizeof tried - at, "%s%s", at ? ", " : "", out);
        }
    return vqc_error_set(VQC_ERR_IO,
                         "upscaler model '%s' not found (tried %s, %s); put the file in one of "
                         "those folders or pass its path (see models/README.md)",
                         name, name, tried);
}

/* The multiple that RealESRGANer pads the picture to: 2 for x2 networks, 4 for x1, else none. */
static int mod_scale(int scale)
{
    return scale == 2 ? 2 : scale == 1 ? 4 : 0;
}

static int upscaler_load_locked(const vqc_upscale_params *p, vqc_upscaler **out)
{
    *out = NULL;
    if (!p || !p->model || !*p->model)
        return vqc_error_set(VQC_ERR_USAGE, "upscaling needs a model");
    if (p->tile < 0 || p->tile_pad < 0 || p->pre_pad < 0 || !(p->outscale >= 0) || p->outscale > 64)
        return vqc_error_set(VQC_ERR_USAGE, "upscale: tile, tile padding and pre-padding must be "
                                            ">= 0, and the output scale in [0, 64]");
    vqc_upscaler *u = calloc(1, sizeof *u);
    if (!u)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    u->p = *p;
    u->p.model = u->p.device = NULL; /* borrowed strings are not kept */
    char path[4096];
    int rc = vqc_tool_device(p->device, &u->dev);
    rc = rc ? rc : find_model(p->model, path, sizeof path);
    vqc_dtype dt = u->dev.type == VQT_DEVICE_CUDA && !p->fp32 ? VQC_DTYPE_F16 : VQC_DTYPE_F32;
    rc = rc ? rc : vqc_esrgan_load(path, u->dev, dt, &u->net);
    /* x2 and x1 networks pixel-unshuffle their input: every tile must have even (x2) or
     * multiple-of-4 (x1) sides, which the original leaves to fail inside the network */
    int mod = rc ? 0 : mod_scale(vqc_esrgan_get_info(u->net)->scale);
    if (mod && p->tile > 0 && (p->tile % mod || p->tile_pad % mod))
        rc = vqc_error_set(VQC_ERR_USAGE,
                           "a x%d network needs a tile size and tile padding that are multiples "
                           "of %d (got %d and %d)",
                           vqc_esrgan_get_info(u->net)->scale, mod, p->tile, p->tile_pad);
    if (rc) {
        vqc_esrgan_free(u->net);
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int vqc_upscaler_load(const vqc_upscale_params *p, vqc_upscaler **out)
{
    vqc_compute_begin();
    int rc = upscaler_load_locked(p, out);
    vqc_compute_end();
    return rc;
}

int vqc_upscaler_scale(const vqc_upscaler *u)
{
    return vqc_esrgan_get_info(u->net)->scale;
}

static void upscaler_free_locked(vqc_upscaler *u)
{
    if (!u)
        return;
    vqc_esrgan_free(u->net);
    free(u);
}

void vqc_upscaler_free(vqc_upscaler *u)
{
    vqc_compute_begin();
    upscaler_free_locked(u);
    vqc_compute_end();
}

/* ---- the network over a padded picture, tile by tile ---------------------------------------- */

/* Where a pass's output goes: the rounded result, the channel written (-1: channels 0..2 as RGB,
 * or channel 0 as grey when the result has 1 or 2 channels), and the largest sample. */
typedef struct {
    vqc_raw_image *res;
    int channel;
    float top;
} sink_t;

/* v (in [0, 1], or NaN from broken weights: 0, as NumPy's cast gives) times top, rounded half
 * to even as NumPy's round. */
static uint16_t quantise(float v, float top)
{
    return isnan(v) ? 0 : (uint16_t)lrintf(v * top);
}

/* Rounds an output region (rgb: 3 planes of th x tw floats in [0, 1]) into the result at
 * (oy, ox). */
static void sink_put(const sink_t *s, const float *rgb, int oy, int ox, int th, int tw)
{
    size_t plane = (size_t)th * tw;
    int c = s->res->channels;
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            size_t i = (size_t)y * tw + x;
            float r = rgb[i], g = rgb[plane + i], b = rgb[2 * plane + i];
            uint16_t *px = s->res->px + ((size_t)(oy + y) * s->res->w + ox + x) * c;
            /* OpenCV's BGR2GRAY on float pictures, in its order of terms */
            float grey = b * 0.114f + g * 0.587f + r * 0.299f;
            if (s->channel >= 0)
                px[s->channel] = quantise(grey, s->top);
            else if (c <= 2)
                px[0] = quantise(grey, s->top);
            else
                for (int k = 0; k < 3; k++)
                    px[k] = quantise(k == 0 ? r : k == 1 ? g : b, s->top);
        }
}

/* The network on the input region [y0, y1) x [x0, x1) of the padded picture xp, with its
 * context [py0, py1) x [px0, px1); the part of the output inside the final picture (oh x ow)
 * goes to the sink. */
typedef struct {
    int y0, y1, x0, x1, py0, py1, px0, px1;
} region_t;

static int run_region(const vqc_upscaler *u, const vqt_tensor *xp, region_t r, int oh, int ow,
                      const sink_t *s)
{
    int sc = vqc_upscaler_scale(u);
    int oy0 = r.y0 * sc, ox0 = r.x0 * sc;
    int oy1 = r.y1 * sc < oh ? r.y1 * sc : oh, ox1 = r.x1 * sc < ow ? r.x1 * sc : ow;
    if (oy1 <= oy0 || ox1 <= ox0)
        return 0; /* all of it is padding that would be cut off */
    int th = oy1 - oy0, tw = ox1 - ox0;
    vqt_scope_begin();
    vqt_tensor *in = vqt_narrow(vqt_narrow(xp, 2, r.py0, r.py1 - r.py0), 3, r.px0, r.px1 - r.px0);
    vqt_tensor *y = vqc_esrgan_forward(u->net, in);
    if (!y) {
        vqt_scope_end();
        return vqc_error_code() ? vqc_error_code() : VQC_ERR_RUNTIME;
    }
    y = vqt_narrow(vqt_narrow(y, 2, (r.y0 - r.py0) * sc, th), 3, (r.x0 - r.px0) * sc, tw);
    y = vqt_clamp(vqt_to(y, (vqt_device){VQT_DEVICE_CPU, 0}, VQC_DTYPE_F32), 0.0, 1.0);
    size_t n = (size_t)3 * th * tw;
    float *buf = malloc(n * sizeof *buf);
    int rc = 0;
    if (!buf)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory for a %dx%d tile", tw, th);
    else if (vqt_to_host(y, buf, VQC_DTYPE_F32, (int64_t)n) != (int64_t)n)
        rc = vqc_torch_fail("upscaled tile");
    else
        sink_put(s, buf, oy0, ox0, th, tw);
    free(buf);
    vqt_scope_end();
    return rc;
}

/* Pads x [1, 3, h, w] as RealESRGANer.pre_process does: pre_pad, then up to the modulus. */
static vqt_tensor *pre_process(const vqc_upscaler *u, const vqt_tensor *x)
{
    int pre = u->p.pre_pad, mod = mod_scale(vqc_upscaler_scale(u));
    vqt_tensor *t = vqt_ref(x);
    if (pre) {
        int64_t pads[4] = {0, pre, 0, pre};
        vqt_tensor *p = vqt_pad(t, 4, pads, VQT_PAD_REFLECT, 0);
        vqt_free(t);
        t = p;
    }
    if (t && mod) {
        int64_t h = vqt_size(t, 2), w = vqt_size(t, 3);
        int64_t pads[4] = {0, (mod - w % mod) % mod, 0, (mod - h % mod) % mod};
        vqt_tensor *p = pads[1] || pads[3] ? vqt_pad(t, 4, pads, VQT_PAD_REFLECT, 0) : vqt_ref(t);
        vqt_free(t);
        t = p;
    }
    return t;
}

/* One pass: planes (3 x h x w floats in [0, 1]) through the network into the sink. */
static int run_pass(const vqc_upscaler *u, const float *planes, int h, int w, const sink_t *s)
{
    int64_t shape[4] = {1, 3, h, w};
    /* reflect padding needs more pixels than it adds */
    int mod = mod_scale(vqc_upscaler_scale(u)), hp = h + u->p.pre_pad, wp = w + u->p.pre_pad;
    if (u->p.pre_pad >= h || u->p.pre_pad >= w ||
        (mod && ((mod - hp % mod) % mod >= hp || (mod - wp % mod) % mod >= wp)))
        return vqc_error_set(VQC_ERR_USAGE,
                             "a %dx%d picture is too small for reflect padding of %d (and to a "
                             "multiple of %d)",
                             w, h, u->p.pre_pad, mod ? mod : 1);
    vqt_scope_begin();
    vqt_tensor *x =
        vqt_from_data(planes, VQC_DTYPE_F32, 4, shape, NULL, u->dev, vqc_esrgan_dtype(u->net));
    vqt_tensor *xp = x ? pre_process(u, x) : NULL;
    vqt_free(x);
    if (!xp) {
        vqt_scope_end();
        return vqc_torch_fail("upscale input");
    }
    int H = (int)vqt_size(xp, 2), W = (int)vqt_size(xp, 3), sc = vqc_upscaler_scale(u);
    int tile = u->p.tile > 0 ? u->p.tile : (H > W ? H : W), pad = u->p.tile > 0 ? u->p.tile_pad : 0;
    int rc = 0, ny = (H + tile - 1) / tile, nx = (W + tile - 1) / tile;
    vqc_log(VQC_LOG_INFO, "upscaling %s%dx%d to %dx%d (%d tile%s)", s->channel >= 0 ? "alpha " : "",
            w, h, w * sc, h * sc, nx * ny, nx * ny > 1 ? "s" : "");
    for (int ty = 0; !rc && ty * tile < H; ty++)
        for (int tx = 0; !rc && tx * tile < W; tx++) {
            region_t r;
            r.y0 = ty * tile;
            r.y1 = r.y0 + tile < H ? r.y0 + tile : H;
            r.x0 = tx * tile;
            r.x1 = r.x0 + tile < W ? r.x0 + tile : W;
            r.py0 = r.y0 - pad > 0 ? r.y0 - pad : 0;
            r.py1 = r.y1 + pad < H ? r.y1 + pad : H;
            r.px0 = r.x0 - pad > 0 ? r.x0 - pad : 0;
            r.px1 = r.x1 + pad < W ? r.x1 + pad : W;
            rc = run_region(u, xp, r, h * sc, w * sc, s);
        }
    vqt_scope_end();
    return rc;
}

/* ---- pictures ------------------------------------------------------------------------------ */

static int check_pixels(const vqc_pixels *in)
{
    if (!in || !in->data || in->w < 1 || in->h < 1 || in->channels < 1 || in->channels > 4 ||
        (in->depth != 8 && in->depth != 16) || in->w > VQC_IMAGE_MAX_SIDE ||
        in->h > VQC_IMAGE_MAX_SIDE)
        return vqc_error_set(VQC_ERR_USAGE,
                             "upscale: a picture must have 1 to 4 channels of 8 "
                             "or 16 bits and sides from 1 to %d",
                             VQC_IMAGE_MAX_SIDE);
    return 0;
}

/* The colour planes (3 x h x w) of `in` scaled by 1/top, or its alpha plane repeated 3 times. */
static void fill_planes(const vqc_pixels *in, bool alpha, float top, float *planes)
{
    size_t n = (size_t)in->w * in->h;
    int c = in->channels;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            int ch = alpha ? c - 1 : c <= 2 ? 0 : k;
            planes[k * n + i] = (float)in->data[i * c + ch] / top;
        }
}

/* The network's part without the final resize: *res gets w*s x h*s. */
static int upscale_native(vqc_upscaler *u, const vqc_pixels *in, vqc_raw_image *res)
{
    size_t n = (size_t)in->w * in->h;
    uint16_t largest = 0;
    for (size_t i = 0; i < n * in->channels; i++)
        largest = in->data[i] > largest ? in->data[i] : largest;
    /* RealESRGANer: 16-bit arithmetic when the largest sample exceeds 256 */
    bool wide = in->depth == 16 && largest > 256;
    float top = wide ? 65535.0f : 255.0f;
    int sc = vqc_upscaler_scale(u);
    res->w = in->w * sc;
    res->h = in->h * sc;
    res->channels = in->channels;
    res->depth = wide ? 16 : 8;
    res->px = malloc((size_t)res->w * res->h * res->channels * sizeof *res->px);
    float *planes = malloc(3 * n * sizeof *planes);
    int rc = !res->px || !planes
                 ? vqc_error_set(VQC_ERR_NOMEM, "out of memory upscaling %dx%d", in->w, in->h)
                 : 0;
    bool has_alpha = in->channels == 2 || in->channels == 4;
    for (int pass = 0; !rc && pass < 1 + has_alpha; pass++) {
        fill_planes(in, pass == 1, top, planes);
        sink_t s = {res, pass == 1 ? in->channels - 1 : -1, top};
        rc = run_pass(u, planes, in->h, in->w, &s);
    }
    free(planes);
    if (rc)
        vqc_raw_image_free(res);
    return rc;
}

static int upscale_pixels_locked(vqc_upscaler *u, const vqc_pixels *in, vqc_pixels *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_pixels(in);
    vqc_raw_image res = {0}, sized = {0};
    rc = rc ? rc : upscale_native(u, in, &res);
    if (rc)
        return rc;
    double os = u->p.outscale;
    if (os > 0 && os != (double)vqc_upscaler_scale(u)) {
        /* RealESRGANer: int(w * outscale) x int(h * outscale) */
        int ow = (int)(in->w * os), oh = (int)(in->h * os);
        rc = vqc_lanczos_resize(&res, ow, oh, &sized);
        vqc_raw_image_free(&res);
        if (rc)
            return rc;
        res = sized;
    }
    *out = (vqc_pixels){res.w, res.h, res.channels, res.depth, res.px};
    return 0;
}

int vqc_upscale_pixels(vqc_upscaler *u, const vqc_pixels *in, vqc_pixels *out)
{
    vqc_compute_begin();
    int rc = upscale_pixels_locked(u, in, out);
    vqc_compute_end();
    return rc;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int upscale_file_locked(vqc_upscaler *u, const char *input, const char *output)
{
    if (!u || !input || !output)
        return vqc_error_set(VQC_ERR_USAGE, "upscale needs an input and an output image");
    if (strcmp(input, output) == 0 || same_file(input, output))
        return vqc_error_set(VQC_ERR_USAGE, "the output %s is the input: refusing to overwrite it",
                             output);
    vqc_raw_image img = {0};
    vqc_pixels out = {0};
    int rc = vqc_check_writable(output);
    rc = rc ? rc : vqc_raw_image_load(input, &img);
    vqc_pixels in = {img.w, img.h, img.channels, img.depth, img.px};
    rc = rc ? rc : vqc_upscale_pixels(u, &in, &out);
    vqc_raw_image res = {out.w, out.h, out.channels, out.depth, out.data};
    const char *meta[] = {"Software", "vqclip " VQCLIP_VERSION, NULL};
    rc = rc ? rc : vqc_raw_image_save_png(output, &res, meta);
    vqc_raw_image_free(&img);
    free(out.data);
    return rc;
}

int vqc_upscale_file(vqc_upscaler *u, const char *input, const char *output)
{
    vqc_compute_begin();
    int rc = upscale_file_locked(u, input, output);
    vqc_compute_end();
    return rc;
}

/* Memory planning for a generation (see memplan.h). */
#include "gen/memplan.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "util/error.h"

/* Elements kept for the backward pass per ResnetBlock (the GroupNorm+SiLU inputs, the two
 * convolution outputs, the sum) and per attention block (q, k, v, the output) at the block's
 * resolution; attention also keeps its scores and softmax, two S x S matrices. */
#define RESBLOCK_KEEP 4.0
#define ATTN_KEEP 4.0

static double attn_elems(double c, double s)
{
    return ATTN_KEEP * c * s + 2.0 * s * s;
}

/* Running count of a decoder's activations by segment, as vqgan.c checkpoints them (the head
 * convolutions, each middle block, each ResnetBlock with its attention, each upsampling, the
 * tail): `total` all segments' activations (their inputs among them), `inputs` the segments'
 * inputs, `biggest` the largest segment's activations. */
typedef struct {
    double total, inputs, biggest;
} seg_count;

static void add_segment(seg_count *n, double input, double kept)
{
    n->inputs += input;
    n->total += kept;
    n->biggest = kept > n->biggest ? kept : n->biggest;
}

/* The VQGAN decoder at a latent of hl x wl cells, with the gradient to its input: all of its
 * activations, or with low_memory the segments' inputs and the largest segment's activations
 * (recomputed one at a time in the backward pass). */
static double decoder_elems(const vqc_vqgan_info *vi, double hl, double wl, bool low_memory)
{
    int L = vi->num_levels > 0 ? vi->num_levels : 1;
    double s = hl * wl, top = (double)vi->ch * vi->ch_mult[L - 1], z = vi->z_channels * s;
    seg_count n = {0, 0, 0};
    add_segment(&n, z, top * s); /* z -> conv_in */
    add_segment(&n, top * s, RESBLOCK_KEEP * top * s);
    add_segment(&n, top * s, attn_elems(top, s));
    add_segment(&n, top * s, RESBLOCK_KEEP * top * s);
    double largest = top * s, scores = s * s, c_in = top;
    for (int i = L - 1; i >= 0; i--) {
        double c = (double)vi->ch * vi->ch_mult[i];
        for (int b = 0; b <= vi->num_res_blocks; b++) {
            double kept = RESBLOCK_KEEP * c * s;
            if (vi->dec_attn[i]) {
                kept += attn_elems(c, s);
                scores = s * s > scores ? s * s : scores;
            }
            add_segment(&n, c_in * s, kept);
            c_in = c;
        }
        if (i > 0) {
            add_segment(&n, c * s, 2 * c * s * 4); /* nearest upsampling and its convolution */
            s *= 4;
        }
        largest = c * s > largest ? c * s : largest;
    }
    add_segment(&n, c_in * s, 2.0 * c_in * s + 2.0 * vi->out_ch * s); /* norm_out, conv_out */
    /* The backward pass holds about three gradients of the largest activation at once, and
     * through an attention block the gradients of its scores and softmax. */
    double transient = 3 * largest > 2 * scores ? 3 * largest : 2 * scores;
    return (low_memory ? n.inputs + n.biggest : z + n.total) + transient;
}

/* The CLIP image tower over cutn cutouts of side r, with the gradient to its input. */
static double clip_elems(const vqc_clip_info *ci, int cutn, int r)
{
    double img = 3.0 * r * r;
    if (ci->is_vit) {
        int p = ci->vision_patch_size > 0 ? ci->vision_patch_size : 32;
        double t = (double)(r / p) * (r / p) + 1, w = ci->vision_width;
        double heads = ci->vision_heads > 0 ? ci->vision_heads : 1;
        /* per layer: two LayerNorm inputs, qkv (3w), attention output, residuals, MLP 4w twice,
         * and the scores + softmax of every head */
        double layer = 17.0 * w * t + 2.0 * heads * t * t;
        return cutn * (img * 2 + ci->vision_layers * layer);
    }
    /* ResNet: about 24 stem-width feature maps at a quarter of the input resolution per block
     * stage; coarse, the ResNet towers are small next to the decoder. */
    double w = ci->vision_width, q = (double)r * r / 16;
    return cutn * (img * 2 + 24.0 * w * q * (ci->vision_layers > 0 ? ci->vision_layers : 1) / 4);
}

int64_t vqc_memplan_step_bytes(const vqc_memplan_step *st, int w, int h)
{
    const vqc_vqgan_info *vi = st->vi;
    const vqc_clip_info *ci = st->ci;
    int cutn = st->cutn, cut_size = st->cut_size;
    bool low_memory = st->low_memory;
    int f = vi->downsample > 0 ? vi->downsample : 1;
    int r = cut_size > 0 ? cut_size : ci->image_resolution;
    double px = (double)w * h;
    /* decoded image, its augmentation inputs/outputs and their gradients */
    double dec_b = st->decoder_bytes > 0 ? st->decoder_bytes : 4;
    double clip_b = st->clip_bytes > 0 ? st->clip_bytes : 4;
    double bytes = dec_b * decoder_elems(vi, (double)h / f, (double)w / f, low_memory) +
                   4.0 * 3.0 * px * 6 + clip_b * clip_elems(ci, cutn, r);
    for (int k = 0; k < st->n_more_clips; k++) {
        const vqc_clip_info *mk = st->more_clips[k];
        int rk = cut_size > 0 ? cut_size : mk->image_resolution;
        bytes += clip_b * clip_elems(mk, cutn, rk);
    }
    bytes += 4.0 * (3.0 * cutn * r * r * st->shape_cut_tensors + 3.0 * px * st->shape_img_tensors);
    return bytes > 9.0e18 ? INT64_MAX : (int64_t)bytes;
}

/* ---- what the device has ---------------------------------------------------------------- */

/* A "Key:   123 kB" line of a /proc file, in bytes; -1 when absent. */
static int64_t proc_kb(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    char line[256];
    int64_t v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            long long kb;
            if (sscanf(line + n + 1, "%lld", &kb) == 1)
                v = (int64_t)kb * 1024;
            break;
        }
    fclose(f);
    return v;
}

int64_t vqc_memplan_available(vqt_device dev)
{
    if (dev.type == VQT_DEVICE_CUDA)
        return vqt_cuda_free_bytes(dev);
    int64_t avail = proc_kb("/proc/meminfo", "MemAvailable");
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        int64_t used = proc_kb("/proc/self/status", "VmSize");
        int64_t left = (int64_t)rl.rlim_cur - (used > 0 ? used : 0);
        left = left < 0 ? 0 : left;
        avail = avail < 0 || left < avail ? left : avail;
    }
    return avail;
}

void vqc_memplan_fit(const vqc_memplan_step *st, int w, int h, int64_t bytes, int *fit_w,
                     int *fit_h)
{
    int f = st->vi->downsample > 0 ? st->vi->downsample : 1;
    /* the longer side in latent cells; the other follows the aspect ratio */
    int longest = (w > h ? w : h) / f, lo = 0, hi = longest;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        int cw = w >= h ? mid : (int)((double)mid * w / h),
            ch = h >= w ? mid : (int)((double)mid * h / w);
        cw = cw < 1 ? 1 : cw;
        ch = ch < 1 ? 1 : ch;
        if (vqc_memplan_step_bytes(st, cw * f, ch * f) <= bytes)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0) {
        *fit_w = *fit_h = 0;
        return;
    }
    int cw = w >= h ? lo : (int)((double)lo * w / h), ch = h >= w ? lo : (int)((double)lo * h / w);
    *fit_w = (cw < 1 ? 1 : cw) * f;
    *fit_h = (ch < 1 ? 1 : ch) * f;
}

static double gib(int64_t b)
{
    return (double)b / (1024.0 * 1024.0 * 1024.0);
}

void vqc_memplan_advise(const vqc_memplan_step *st, vqt_device dev, int w, int h, bool failed,
                        vqc_memplan_advice *out)
{
    memset(out, 0, sizeof *out);
    int64_t avail = vqc_memplan_available(dev);
    /* what failed did not fit, whatever the estimate says: advise at most 3/4 of it */
    int64_t failed_at = vqc_memplan_step_bytes(st, w, h) / 4 * 3;
    if (failed && avail > failed_at)
        avail = failed_at;
    if (avail <= 0)
        return;
    out->known = true;
    /* the advice keeps a fifth in reserve: the estimate is rough */
    vqc_memplan_fit(st, w, h, avail / 5 * 4, &out->fit_width, &out->fit_height);
    vqc_memplan_step low = *st;
    low.low_memory = true;
    out->low_memory = !st->low_memory && vqc_memplan_step_bytes(&low, w, h) <= avail / 5 * 4;
    out->fewer_cutn = st->cutn > 8;
}

int vqc_memplan_check(const vqc_memplan_step *st, vqt_device dev, int w, int h)
{
    int64_t need = vqc_memplan_step_bytes(st, w, h);
    int64_t avail = vqc_memplan_available(dev);
    if (avail < 0 || need <= avail)
        return 0;
    char where[32];
    vqt_device_str(dev, where, sizeof where);
    return vqc_error_set(VQC_ERR_NOMEM,
                         "size %dx%d needs about %.1f GiB for one step but %.1f GiB is "
                         "available on %s",
                         w, h, gib(need), gib(avail), where);
}

int vqc_memplan_oom_error(vqt_device dev, int w, int h)
{
    char first[200], where[32];
    /* keep the start of the original message: it names the step and the operation */
    snprintf(first, sizeof first, "%s", vqc_error_get());
    vqt_device_str(dev, where, sizeof where);
    return vqc_error_set(VQC_ERR_NOMEM, "out of memory on %s at %dx%d (%s)", where, w, h, first);
}

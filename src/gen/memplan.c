/* Memory planning for a generation (see memplan.h). */
#include "gen/memplan.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "util/error.h"

/* How much a step keeps, per device. The counts are elements of the model's own width.
 *
 * On the CPU they are what a step keeps there, as measured by vqt_peak_bytes (the counting CPU
 * allocator) on the full-size f16-16384 VQGAN and ViT-B/32 at 64 to 512 pixels, 1 to 64
 * cutouts, with and without low memory (docs/benchmarks.md). The CLIP towers are counted from
 * their structure: a ViT layer keeps 9 widths per token and each head's softmax, and 24 widths
 * per token lie outside the layers at the tower's peak (read off the counting allocator layer by
 * layer on ViT-B/32 and ViT-L/14); a ResNet's blocks as rn_tower says. Each cutout keeps five
 * pictures of its size through the CLIP pass (--profile: the cutouts and the augmentations' inputs
 * and outputs), and the augmentations hold thirteen at their largest moment. The shim's
 * convolutions keep no input when their weight needs no gradient, and GroupNorm+SiLU keeps only its
 * input (lean_ops.h), so a ResnetBlock keeps its input and its first convolution's output. The peak
 * is the larger of two moments: the CLIP pass (the decoder's activations and CLIP's) and the
 * decoder's backward pass (its activations and about three gradients of its largest one).
 *
 * CUDA runs the same operators, but the caching allocator's peaks were larger than that
 * structure in the reduced types (the H200 call of 2026-12-04: about 0.7 GiB more at 512x512,
 * about three times the structure at 2048x2048), for reasons not yet measured (cuDNN's
 * workspaces are one suspect). Since the CUDA graphs, CLIP and the decoder also hold their
 * memory in separate pools, which add up. The CUDA constants are the larger ones that were
 * within 15% of that call's peaks at 512 and 1024 pixels; --profile's memory lines are there
 * to replace them with measured parts. */
typedef struct {
    double z;           /* the decoder's input z, times its size */
    double head;        /* post_quant_conv and conv_in, times the top width and positions */
    double resblock;    /* per ResnetBlock, times its width and positions */
    double attn_scores; /* S x S matrices per attention block */
    double upsample;    /* per upsampling, times the width and positions it produces */
    double tail;        /* norm_out and conv_out, times the last width and positions */
    double out;         /* the picture, times its channels and positions */
    double transient;   /* gradients the backward pass holds at once, times the largest */
    double clip_layer;  /* per CLIP ViT layer, times its width and tokens */
    double clip_scores; /* per CLIP ViT layer, times heads and tokens squared */
    double clip_around; /* per CLIP ViT, outside what its layers keep, times width and tokens */
    double clip_images; /* per cutout through the CLIP pass, times its picture's size */
    double cut_images;  /* per cutout at the augmentations' largest moment, the same */
    bool phases;        /* the peak is the larger moment (CPU), not the sum (CUDA) */
} keep_model;

static const keep_model cpu_keeps = {.resblock = 2.0,
                                     .attn_scores = 1.0,
                                     .tail = 1.0,
                                     .transient = 3.0,
                                     .clip_layer = 9.0,
                                     .clip_scores = 1.0,
                                     .clip_around = 24.0,
                                     .clip_images = 5.0,
                                     .cut_images = 13.0,
                                     .phases = true};
static const keep_model cuda_keeps = {.z = 1.0,
                                      .head = 1.0,
                                      .resblock = 4.0,
                                      .attn_scores = 2.0,
                                      .upsample = 2.0,
                                      .tail = 2.0,
                                      .out = 2.0,
                                      .transient = 3.0,
                                      .clip_layer = 17.0,
                                      .clip_scores = 2.0,
                                      .clip_images = 2.0};

/* Whether an attention block over s cells runs fused (fused_from: vqc_memplan_step's). */
static bool fused_at(int64_t fused_from, double s)
{
    return fused_from >= 0 && s >= (double)fused_from;
}

/* Attention keeps q, k, v and its output at the block's resolution, and S x S matrices unless
 * it runs fused (then one float per cell, nothing next to those). */
static double attn_elems(const keep_model *km, double c, double s, int64_t fused_from)
{
    return 4.0 * c * s + (fused_at(fused_from, s) ? 0.0 : km->attn_scores * s * s);
}

/* Running count of a decoder's activations by segment, as vqgan.c checkpoints them (the head
 * convolutions, each middle block, each ResnetBlock with its attention, each upsampling, the
 * tail): `total` all segments' activations (their inputs among them), `inputs` the segments'
 * inputs, `biggest` the largest segment's activations.
 *
 * With libtorch's own CPU convolutions (vqc_memplan_step.own_convs) each 3x3 convolution also
 * unfolds its input into a matrix of 9 x its input channels x its output positions while it
 * runs (im2col, allocated and counted; their backward pass's like buffer is not allocated
 * through libtorch's allocator). That matrix, not the activations kept, makes the step's peak at
 * small pictures: `fwd` is the largest moment of the forward pass, the activations kept before
 * a segment and the segment's convolution moment; `rec` the largest moment of low memory's
 * recomputation, when the backward pass has come back to a segment: the inputs kept up to it
 * (those after it are gone), its convolution moment and its output's gradient. */
typedef struct {
    double total, inputs, biggest;
    double fwd, rec;
} seg_count;

/* conv_moment: what a segment holds while its largest 3x3 convolution runs with libtorch's own
 * convolutions (elements, none without them). */
static void add_segment(seg_count *n, double input, double kept, double conv_moment, double out)
{
    double before = n->total, inputs_before = n->inputs;
    n->inputs += input;
    n->total += kept;
    n->biggest = kept > n->biggest ? kept : n->biggest;
    if (conv_moment > 0) {
        n->fwd = before + conv_moment > n->fwd ? before + conv_moment : n->fwd;
        double r = inputs_before + conv_moment + out;
        n->rec = r > n->rec ? r : n->rec;
    }
}

/* A 3x3 convolution from cin to cout channels at s positions (stride 1) with libtorch's own
 * kernels: its input, the unfolded matrix, its output, and `held` beside them. */
static double own_conv(double held, double cin, double cout, double s)
{
    return held + cin * s + 9.0 * cin * s + cout * s;
}

/* A ResnetBlock from cin to c channels at s: its first convolution holds the block's input
 * beside the normalised one, its second also the first's output. */
static double own_resblock(double cin, double c, double s)
{
    double a = own_conv(cin * s, cin, c, s), b = own_conv(cin * s + c * s, c, c, s);
    return a > b ? a : b;
}

/* The VQGAN decoder at a latent of hl x wl cells, with the gradient to its input: what it keeps
 * through the CLIP pass (*kept: all of its activations, or with low_memory the segments'
 * inputs), and what its backward pass adds to that (*backward: the gradients in flight, and with
 * low_memory the largest segment's activations, recomputed one at a time). */
static void decoder_elems(const keep_model *km, const vqc_vqgan_info *vi, double hl, double wl,
                          bool low_memory, int64_t fused_from, bool own, double *kept,
                          double *backward, double *forward, double *recompute)
{
    int L = vi->num_levels > 0 ? vi->num_levels : 1;
    double s = hl * wl, top = (double)vi->ch * vi->ch_mult[L - 1], zc = vi->z_channels, z = zc * s;
    double on = own ? 1.0 : 0.0; /* the convolution moments count only then */
    seg_count n = {0, 0, 0, 0, 0};
    add_segment(&n, z, km->head * top * s, on * own_conv(z, zc, top, s), top * s); /* conv_in */
    add_segment(&n, top * s, km->resblock * top * s, on * own_resblock(top, top, s), top * s);
    add_segment(&n, top * s, attn_elems(km, top, s, fused_from), 0, 0);
    add_segment(&n, top * s, km->resblock * top * s, on * own_resblock(top, top, s), top * s);
    double largest = top * s, scores = fused_at(fused_from, s) ? 0.0 : s * s, c_in = top;
    for (int i = L - 1; i >= 0; i--) {
        double c = (double)vi->ch * vi->ch_mult[i];
        for (int b = 0; b <= vi->num_res_blocks; b++) {
            double k = km->resblock * c * s;
            if (vi->dec_attn[i]) {
                k += attn_elems(km, c, s, fused_from);
                if (!fused_at(fused_from, s))
                    scores = s * s > scores ? s * s : scores;
            }
            add_segment(&n, c_in * s, k, on * own_resblock(c_in, c, s), c * s);
            c_in = c;
        }
        if (i > 0) { /* nearest upsampling, its convolution at the larger size */
            add_segment(&n, c * s, km->upsample * c * s * 4, on * own_conv(c * s, c, c, s * 4),
                        c * s * 4);
            s *= 4;
        }
        largest = c * s > largest ? c * s : largest;
    }
    add_segment(&n, c_in * s, km->tail * c_in * s + km->out * vi->out_ch * s,
                on * own_conv(c_in * s, c_in, vi->out_ch, s), vi->out_ch * s);
    /* the gradients of the largest activation in flight at once, and through an attention
     * block those of its scores and softmax */
    double transient = km->transient * largest > 2 * scores ? km->transient * largest : 2 * scores;
    *kept = low_memory ? n.inputs : km->z * z + n.total;
    *backward = (low_memory ? n.biggest : 0.0) + transient;
    /* with low memory the forward pass keeps only the inputs: the recomputation's moment is the
     * larger */
    *forward = low_memory ? 0.0 : n.fwd;
    *recompute = low_memory ? n.rec : 0.0;
}

/* ModifiedResNet's image tower over one cutout of side r, with the gradient to its input: the
 * largest moment of its forward pass, counted as clip_vision.c runs it on the shim's operators.
 * A convolution keeps nothing (its weight needs no gradient), a BatchNorm its input, a ReLU its
 * result, an average pooling its input. The stem's three convolutions, BatchNorms and ReLUs live
 * until the tower ends; a bottleneck's outputs that nothing keeps (its BatchNorms', its poolings',
 * the sum) live until the block ends. The stem's pooled map is kept by nothing. With libtorch's
 * own CPU convolutions nothing changes: the stem unfolds its input while little else of the
 * tower exists (measured on tiny_rn: no larger peak). */
static double rn_tower(const vqc_clip_info *ci, int r)
{
    double w = ci->vision_width, s = (double)(r / 2) * (r / 2);
    double pooled = w * s / 4, held = 6.0 * w * s + pooled, peak = held, c_in = w;
    s /= 4;
    for (int l = 0; l < 4; l++) {
        double p = w * (1 << l);
        int blocks = ci->vision_rn_layers[l] > 0 ? ci->vision_rn_layers[l] : 1;
        for (int j = 0; j < blocks; j++) {
            bool stride = j == 0 && l > 0, down = stride || c_in != 4 * p;
            double so = stride ? s / 4 : s; /* the block's output positions */
            /* conv1 and conv2 with their ReLUs at the input's positions; conv3, the
             * downsampling branch and the output at the output's */
            double kept = 4 * p * s + (down ? 12 : 8) * p * so;
            double passing =
                2 * p * s + (stride ? p * so + c_in * so : 0) + (down ? 12 : 8) * p * so;
            peak = held + kept + passing > peak ? held + kept + passing : peak;
            held += kept - (l == 0 && j == 0 ? pooled : 0);
            s = so;
            c_in = 4 * p;
        }
    }
    /* attention pooling: about five maps of the last block's cells and their mean */
    held += 5.0 * c_in * (s + 1);
    return held > peak ? held : peak;
}

/* The CLIP image tower over cutn cutouts of side r, with the gradient to its input, and the
 * cutouts themselves. With fused attention (vqt_sdpa) a ViT layer keeps no softmax: one float
 * per head and token instead (the log-sum-exp its backward pass starts from), and one width per
 * token more (measured on libtorch 2.6's CPU kernel: the fused operator's output). */
static double clip_elems(const keep_model *km, const vqc_clip_info *ci, int cutn, int r, bool fused)
{
    double img = 3.0 * r * r, tower;
    if (ci->is_vit) {
        int p = ci->vision_patch_size > 0 ? ci->vision_patch_size : 32;
        double t = (double)(r / p) * (r / p) + 1, w = ci->vision_width;
        double heads = ci->vision_heads > 0 ? ci->vision_heads : 1;
        /* per layer: the LayerNorms' inputs, q, k, v, the MLP's activations, and the softmax
         * of every head; around them, the patches' embedding and ln_pre's input, and what the
         * last layer passes on its way (the MLP's, and QuickGELU's inner tensors) */
        double layer =
            km->clip_layer * w * t + (fused ? w * t + heads * t : km->clip_scores * heads * t * t);
        tower = ci->vision_layers * layer + km->clip_around * w * t;
    } else {
        tower = rn_tower(ci, r);
    }
    double pass = km->clip_images * img + tower, cutting = km->cut_images * img;
    return cutn * (pass > cutting ? pass : cutting);
}

int64_t vqc_memplan_step_bytes(const vqc_memplan_step *st, int w, int h)
{
    const keep_model *km = st->on_cpu ? &cpu_keeps : &cuda_keeps;
    const vqc_vqgan_info *vi = st->vi;
    const vqc_clip_info *ci = st->ci;
    int cutn = st->cutn, cut_size = st->cut_size;
    int f = vi->downsample > 0 ? vi->downsample : 1;
    int r = cut_size > 0 ? cut_size : ci->image_resolution;
    double px = (double)w * h;
    double dec_b = st->decoder_bytes > 0 ? st->decoder_bytes : 4;
    double clip_b = st->clip_bytes > 0 ? st->clip_bytes : 4;
    bool own = st->on_cpu && st->own_convs;
    double kept, backward, forward, recompute;
    decoder_elems(km, vi, (double)h / f, (double)w / f, st->low_memory,
                  st->on_cpu ? -1 : st->fused_attention_from, own, &kept, &backward, &forward,
                  &recompute);
    /* the decoded image, its augmentation inputs and outputs and their gradients, and what the
     * shaping losses keep */
    double images = 4.0 * 3.0 * px * 6 + 4.0 * (3.0 * cutn * r * r * st->shape_cut_tensors +
                                                3.0 * px * st->shape_img_tensors);
    double clips = clip_b * clip_elems(km, ci, cutn, r, st->clip_fused);
    for (int k = 0; k < st->n_more_clips; k++) {
        const vqc_clip_info *mk = st->more_clips[k];
        int rk = cut_size > 0 ? cut_size : mk->image_resolution;
        clips += clip_b * clip_elems(km, mk, cutn, rk, st->clip_fused);
    }
    double base = dec_b * kept + images, bytes = base + clips + dec_b * backward;
    if (km->phases)
        bytes = clips > dec_b * backward ? base + clips : base + dec_b * backward;
    /* with libtorch's own convolutions: the decoder's forward pass, before the pictures and
     * CLIP's activations exist, or its recomputation with low memory */
    bytes = dec_b * forward > bytes ? dec_b * forward : bytes;
    bytes = images + dec_b * recompute > bytes ? images + dec_b * recompute : bytes;
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

int64_t vqc_memplan_step_available(const vqc_memplan_step *st, vqt_device dev)
{
    int64_t avail = vqc_memplan_available(dev);
    if (!st->limited)
        return avail;
    int64_t left = st->limit_left > 0 ? st->limit_left : 0;
    return avail < 0 || left < avail ? left : avail;
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
    int64_t avail = vqc_memplan_step_available(st, dev);
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
    int64_t avail = vqc_memplan_step_available(st, dev);
    if (avail < 0 || need <= avail)
        return 0;
    char where[32];
    vqt_device_str(dev, where, sizeof where);
    int64_t free_b = vqc_memplan_available(dev);
    bool by_limit = st->limited && (free_b < 0 || avail < free_b);
    return vqc_error_set(VQC_ERR_NOMEM,
                         "size %dx%d needs about %.1f GiB for one step but %.1f GiB is "
                         "available on %s%s",
                         w, h, gib(need), gib(avail), where,
                         by_limit ? " within the memory limit" : "");
}

int vqc_memplan_oom_error(vqt_device dev, int w, int h)
{
    char first[200], where[32];
    /* keep the start of the original message: it names the step and the operation */
    snprintf(first, sizeof first, "%s", vqc_error_get());
    vqt_device_str(dev, where, sizeof where);
    return vqc_error_set(VQC_ERR_NOMEM, "out of memory on %s at %dx%d (%s)", where, w, h, first);
}

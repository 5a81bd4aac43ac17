/* vqt: the thin C view of libtorch that vqclip's models, loop and tools are written against.
 *
 * Conventions (after tch-rs' torch-sys, tightened):
 *   - Every function that returns a `vqt_tensor *` returns a NEW handle that the caller owns and
 *     releases with vqt_free() (or leaves to the enclosing scope, below). Arguments are borrowed.
 *   - On failure a function returns NULL (handles), -1 (ints) or NAN (doubles) and stores a
 *     one-line message in a thread-local buffer read with vqt_last_error(), and whether the
 *     failure was an allocation failure (vqt_last_error_oom()). No C++ exception ever crosses
 *     this interface. A NULL handle argument fails without replacing the message (and kind) of
 *     the failure that produced it, so a chain of calls reports its first failure.
 *   - Scopes: between vqt_scope_begin() and vqt_scope_end() every new handle is also recorded in
 *     the scope, and vqt_scope_end() frees all of them except those passed to vqt_keep(), which
 *     move to the enclosing scope (or become unscoped at the outermost level). This lets a forward
 *     pass create intermediates freely and keep only its result. vqt_free() stays valid inside a
 *     scope. Scopes are per thread and nest. vqt_persist() takes a handle out of all scopes.
 *   - Shapes are given as (ndim, int64_t array). Dims may be negative (counted from the end).
 *
 * Only the operations VQGAN + CLIP + the optimisation loop need are here; add more by hand. */
#ifndef VQC_TORCH_SHIM_H
#define VQC_TORCH_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vqt_tensor vqt_tensor;

typedef enum { VQT_DEVICE_CPU = 0, VQT_DEVICE_CUDA = 1 } vqt_device_type;

typedef struct vqt_device {
    vqt_device_type type;
    int index; /* CUDA ordinal; 0 for the CPU */
} vqt_device;

/* ---- runtime --------------------------------------------------------------------------- */

/* Sets libtorch's intra-op thread count (n <= 0: all online cores; Debian's libtorch would
 * otherwise use one). Idempotent; returns the count in use.
 * With glibc it also makes malloc keep freed memory in the process (no mmap'ed chunks, no
 * trimming), since every step allocates the same tensors again and memory handed back to the
 * kernel costs a page fault per page when it is touched again, and it asks for transparent
 * huge pages where the heap will grow (see cpu_memory.h). The peak resident size is unchanged
 * (up to one huge page). OMP_WAIT_POLICY=PASSIVE in the environment helps more on a machine
 * shared with other work (libgomp's idle workers otherwise spin after every parallel region
 * and take the core from the thread the team waits for; docs/gpu.md has the figures), but it
 * is read before any of vqclip's code runs, so it cannot be set from here. On the calling
 * thread, libtorch's own warnings (TORCH_WARN) then go to vqc_log as one "libtorch: ..." line
 * each, every distinct message once per process, instead of c10's stderr lines. */
int vqt_init(int nthreads);

/* The current thread's last error message; never NULL. */
const char *vqt_last_error(void);

/* Whether the current thread's last recorded failure was an allocation failure: libtorch's
 * CUDA allocator running out (c10::OutOfMemoryError) or the CPU allocator's (std::bad_alloc),
 * also when it happened in a checkpointed segment rerun by the backward pass. Known by the
 * exception's type, not its message. Set and cleared with the message: the next failure
 * recorded decides it again. */
bool vqt_last_error_oom(void);

/* libtorch's version string, e.g. "1.13.1". Static storage. */
const char *vqt_version(void);

/* Parses "cpu", "cuda", "cuda:N". Returns 0; -1 (with a message) for a string that names no
 * device; -2 (with a message) for a well-formed CUDA device that is not present (no CUDA in
 * this libtorch, no GPU, or N past the last device). */
int vqt_device_parse(const char *text, vqt_device *out);

/* Number of CUDA devices libtorch can use (0 in a CPU-only build). */
int vqt_cuda_device_count(void);

/* Writes "cpu" or "cuda:N" into buf. */
void vqt_device_str(vqt_device dev, char *buf, size_t len);

/* Seeds every libtorch generator (CPU and CUDA). */
void vqt_manual_seed(uint64_t seed);

/* The state of libtorch's default generator for `dev` as a new uint8 tensor on the CPU, and
 * its restoration (resuming a run reproduces the random numbers an unbroken run draws). */
vqt_tensor *vqt_rng_get_state(vqt_device dev);
int vqt_rng_set_state(vqt_device dev, const vqt_tensor *state);

/* Enables or disables gradient recording on this thread; returns the previous setting. */
bool vqt_set_grad_enabled(bool enabled);

/* Waits for all work queued on `dev` (no-op on the CPU). */
void vqt_synchronize(vqt_device dev);

/* Peak bytes that tensors held on `dev` since the last reset, and the reset. On CUDA the caching
 * allocator's statistics; on the CPU vqt_init's allocator counts its tensors (process-wide, all
 * threads; with glibc only). 0 where unknown: another C library, vqt_init not called, a CUDA
 * build without the allocator's header. */
int64_t vqt_peak_bytes(vqt_device dev);
void vqt_reset_peak(vqt_device dev);
/* Bytes that tensors hold on `dev` now, counted as vqt_peak_bytes counts them. */
int64_t vqt_allocated_bytes(vqt_device dev);
/* Holds the tensors on `dev` to `bytes` (0: no limit) from now on: an allocation beyond it fails
 * as out of memory (vqt_last_error_oom). Process-wide, per device, as PyTorch's
 * set_per_process_memory_fraction. On CUDA the caching allocator's memory (what it has reserved,
 * used or not; the CUDA context itself is outside it) is held to that share of the device's
 * memory, and frees its unused blocks before it refuses; on the CPU the counting allocator's
 * tensors (vqt_allocated_bytes: what libtorch allocates, not the views of mapped files) are held
 * to it, a refused request allocating nothing. Returns 0, or -1 with the error (a negative
 * limit, a build that cannot count the device's memory). */
int vqt_set_memory_limit(vqt_device dev, int64_t bytes);
/* Gives the memory that libtorch's CUDA caching allocator holds unused back to the driver
 * (waiting for the device); a no-op on the CPU. */
void vqt_empty_cache(vqt_device dev);
/* Bytes a CUDA device can still give this process: the driver's free memory plus what
 * libtorch's caching allocator holds unused. -1 on the CPU or when unknown (a build without
 * the CUDA headers). */
int64_t vqt_cuda_free_bytes(vqt_device dev);
/* A CUDA device's compute capability (9.0 for an H100) into *major and *minor; returns 0, or -1
 * leaving them alone on the CPU or when unknown (a build without the CUDA runtime's headers). */
int vqt_cuda_capability(vqt_device dev, int *major, int *minor);
/* A CUDA device's name as the CUDA runtime gives it ("NVIDIA H100 80GB HBM3") into buf (len
 * bytes); returns 0, or -1 with buf empty on the CPU or when unknown (as vqt_cuda_capability). */
int vqt_cuda_name(vqt_device dev, char *buf, size_t len);
/* Allows (true) or forbids TF32 tensor-core math in float32 matrix products and convolutions
 * on CUDA (libtorch's default allows it for convolutions only). No effect on the CPU. */
void vqt_set_tf32(bool enabled);
/* true: cuDNN's deterministic convolution algorithms and a fixed cuBLAS workspace
 * configuration, so that a seed takes the same kernels run after run; false: the algorithms
 * cuDNN's heuristics pick. The backward passes of grid sampling, adaptive pooling, bilinear and
 * bicubic interpolation and reflection / replication padding on CUDA add with atomics and have
 * no deterministic version in libtorch (asking libtorch for deterministic algorithms everywhere
 * makes the first backward pass fail), so true also selects VQT_HOSTGRAD_CUDA for them (below)
 * and false VQT_HOSTGRAD_OFF. true also asks libtorch for deterministic algorithms in
 * warn-only mode: operators that have a deterministic version take it, and one that has none
 * and is not taken over by the host is named in a "libtorch: ..." warning (vqt_init) instead
 * of failing the run; the NaN fill of new memory that libtorch 2.1+ adds in that mode is
 * turned off (a kernel per new tensor). cuDNN autotuning (benchmark mode) stays off
 * either way: its candidate algorithms' workspaces make a large transient peak, it slows the
 * first steps and its steady rate varies from run to run (docs/gpu.md). Call before each CUDA
 * context computes (a CPU one need not: the CPU is always deterministic): the cuBLAS workspace
 * setting, CUBLAS_WORKSPACE_CONFIG unless the environment has one, holds only from cuBLAS's
 * start, so true after a call with false logs one warning saying so. */
void vqt_set_deterministic(bool enabled);
/* Where the input gradients of those operators (vqt_grid_sample, vqt_adaptive_*_pool2d,
 * vqt_interpolate's bilinear, bicubic and area modes, vqt_pad's reflect and replicate modes)
 * are computed: OFF, on the tensor's own device (on CUDA, with atomics: the last bits vary from
 * run to run); CUDA, on the CPU for CUDA tensors: the forward pass stays on the device, the
 * backward pass copies the input and the gradient to the CPU, runs the operator there again and
 * takes libtorch's CPU input gradient (fixed order; slower, a device wait per operator); ALL,
 * on the CPU for every tensor (for tests: on the CPU the same numbers as OFF, through the same
 * path). Only where nothing else (such as grid_sample's grid) needs a gradient. */
typedef enum { VQT_HOSTGRAD_OFF = 0, VQT_HOSTGRAD_CUDA, VQT_HOSTGRAD_ALL } vqt_hostgrad;
void vqt_set_host_grad(vqt_hostgrad mode);
vqt_hostgrad vqt_get_host_grad(void);
/* Input gradients computed on the CPU that way so far, on every thread. */
long long vqt_host_grads_done(void);

/* ---- handles and scopes ---------------------------------------------------------------- */

/* Releases a handle (and the tensor when it was the last reference). NULL is ignored. */
void vqt_free(vqt_tensor *t);
void vqt_scope_begin(void);
/* Frees every handle created since the matching vqt_scope_begin() except kept ones. */
void vqt_scope_end(void);
/* Moves `t` out of the current scope into the enclosing one; returns t (NULL passes through). */
vqt_tensor *vqt_keep(vqt_tensor *t);
/* Takes `t` out of every scope: it lives until vqt_free(). Long-lived tensors (model weights,
 * optimiser state) are persisted so that the caller's scopes never free them. Returns t. */
vqt_tensor *vqt_persist(vqt_tensor *t);

/* ---- creation and access --------------------------------------------------------------- */

/* Copies host data (element type src, given shape and element strides, NULL = contiguous) into
 * a new tensor of type dst on dev. */
vqt_tensor *vqt_from_data(const void *data, vqc_dtype src, int ndim, const int64_t *shape,
                          const int64_t *strides, vqt_device dev, vqc_dtype dst);
/* Called once when the memory a vqt_from_blob() tensor views is no longer used. */
typedef void (*vqt_release_fn)(void *ctx);
/* A CPU tensor of type dt that views `data` (shape, element strides or NULL = contiguous)
 * without copying. data must be aligned to the element size and stay valid until
 * release(ctx) is called, which happens exactly once: when the last tensor sharing the memory
 * is freed, or before this returns NULL on failure (release may be NULL). The memory is
 * treated as read-only: no vqt op writes into its inputs, and the caller must not pass such a
 * tensor to vqt_copy_() as dst. */
vqt_tensor *vqt_from_blob(const void *data, vqc_dtype dt, int ndim, const int64_t *shape,
                          const int64_t *strides, vqt_release_fn release, void *ctx);
vqt_tensor *vqt_full(int ndim, const int64_t *shape, double value, vqc_dtype dt, vqt_device dev);
/* Uniform [0,1), standard normal, integers in [low, high), from libtorch's default generator. */
vqt_tensor *vqt_rand(int ndim, const int64_t *shape, vqt_device dev);
vqt_tensor *vqt_randn(int ndim, const int64_t *shape, vqt_device dev);
vqt_tensor *vqt_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, vqt_device dev);
vqt_tensor *vqt_arange(int64_t n, vqc_dtype dt, vqt_device dev);

/* Copies `t` (any layout, any device) as contiguous elements of type dt into dst, which holds
 * at most max_elems elements. Returns the element count, or -1. */
int64_t vqt_to_host(const vqt_tensor *t, void *dst, vqc_dtype dt, int64_t max_elems);
/* The value of a one-element tensor as a double (NAN on error). */
double vqt_item(const vqt_tensor *t);

int vqt_ndim(const vqt_tensor *t);
int64_t vqt_size(const vqt_tensor *t, int dim);
int64_t vqt_numel(const vqt_tensor *t);
/* Writes up to 8 sizes into shape; returns ndim. */
int vqt_shape(const vqt_tensor *t, int64_t *shape);
vqc_dtype vqt_dtype(const vqt_tensor *t);
vqt_device vqt_device_of(const vqt_tensor *t);

/* t on dev as dt (the same data when both already match). A host tensor of up to 1 MiB without a
 * gradient goes to a CUDA device without waiting for the device's queued work (through pinned
 * memory), as does vqt_from_data's; larger ones, and copies back to the host, wait. */
vqt_tensor *vqt_to(const vqt_tensor *t, vqt_device dev, vqc_dtype dt);
vqt_tensor *vqt_clone(const vqt_tensor *t);
vqt_tensor *vqt_detach(const vqt_tensor *t);
/* A new handle to the same tensor (shares storage and autograd identity). */
vqt_tensor *vqt_ref(const vqt_tensor *t);

/* ---- shape ----------------------------------------------------------------------------- */

vqt_tensor *vqt_reshape(const vqt_tensor *t, int ndim, const int64_t *shape);
vqt_tensor *vqt_permute(const vqt_tensor *t, int ndim, const int64_t *dims);
vqt_tensor *vqt_transpose(const vqt_tensor *t, int d0, int d1);
vqt_tensor *vqt_narrow(const vqt_tensor *t, int dim, int64_t start, int64_t len);
vqt_tensor *vqt_select(const vqt_tensor *t, int dim, int64_t index);
vqt_tensor *vqt_index_select(const vqt_tensor *t, int dim, const vqt_tensor *index);
vqt_tensor *vqt_cat(vqt_tensor *const *ts, int n, int dim);
vqt_tensor *vqt_stack(vqt_tensor *const *ts, int n, int dim);
vqt_tensor *vqt_unsqueeze(const vqt_tensor *t, int dim);
vqt_tensor *vqt_expand(const vqt_tensor *t, int ndim, const int64_t *shape);
vqt_tensor *vqt_flatten(const vqt_tensor *t, int start, int end);
vqt_tensor *vqt_contiguous(const vqt_tensor *t);
/* Upper triangle (elements below diagonal `k` set to zero). */
vqt_tensor *vqt_triu(const vqt_tensor *t, int64_t k);

/* ---- element-wise ---------------------------------------------------------------------- */

typedef enum {
    VQT_ADD,
    VQT_SUB,
    VQT_MUL,
    VQT_DIV,
    VQT_MIN,
    VQT_MAX,
    VQT_POW,
    VQT_LT,
    VQT_LE,
    VQT_GT,
    VQT_GE,
    VQT_EQ /* comparisons give bool tensors */
} vqt_binop;
vqt_tensor *vqt_binary(vqt_binop op, const vqt_tensor *a, const vqt_tensor *b);
/* Broadcasting with a scalar right operand: t op s. */
vqt_tensor *vqt_binary_s(vqt_binop op, const vqt_tensor *t, double s);
/* t * mul + add. */
vqt_tensor *vqt_affine(const vqt_tensor *t, double mul, double add);

typedef enum {
    VQT_NEG,
    VQT_ABS,
    VQT_SQRT,
    VQT_RSQRT,
    VQT_EXP,
    VQT_LOG,
    VQT_SIGMOID,
    VQT_SILU,
    VQT_RELU,
    VQT_GELU,
    VQT_QUICK_GELU,
    VQT_TANH,
    VQT_ASIN,
    VQT_SIGN,
    VQT_SQUARE,
    VQT_FLOOR,
    VQT_SIN,
    VQT_COS
} vqt_unop;
vqt_tensor *vqt_unary(vqt_unop op, const vqt_tensor *t);

/* Clamp to [lo, hi]; pass NAN for an open side. */
vqt_tensor *vqt_clamp(const vqt_tensor *t, double lo, double hi);
/* Element-wise clamp between two broadcastable tensors. */
vqt_tensor *vqt_clamp_t(const vqt_tensor *t, const vqt_tensor *lo, const vqt_tensor *hi);
vqt_tensor *vqt_where(const vqt_tensor *cond, const vqt_tensor *a, const vqt_tensor *b);

/* ---- reductions ------------------------------------------------------------------------ */

typedef enum { VQT_SUM, VQT_MEAN, VQT_AMAX, VQT_AMIN } vqt_redop;
/* Reduces over ndims dims (ndims == 0: over all elements, giving a 0-dim tensor). */
vqt_tensor *vqt_reduce(vqt_redop op, const vqt_tensor *t, int ndims, const int64_t *dims,
                       bool keepdim);
vqt_tensor *vqt_argmin(const vqt_tensor *t, int dim, bool keepdim);
vqt_tensor *vqt_argmax(const vqt_tensor *t, int dim, bool keepdim);
/* Euclidean norm over one dim (gradient 0 where the norm is 0, as torch.norm). */
vqt_tensor *vqt_norm(const vqt_tensor *t, int dim, bool keepdim);
/* x / max(||x||_2 over dim, eps), as torch.nn.functional.normalize. */
vqt_tensor *vqt_normalize(const vqt_tensor *t, int dim, double eps);

/* ---- neural-network operators ---------------------------------------------------------- */

/* Memory: when gradients are recorded, the input needs one and the parameters need none (the
 * generation loop: gradients flow to the latent, never to weights), vqt_conv2d, VQT_QUICK_GELU
 * and vqt_group_norm_silu keep less for the backward pass than libtorch's own operators would:
 * a convolution keeps only its weight, not its input (libtorch keeps the input for a weight
 * gradient nobody asked for); QuickGELU keeps only its input; GroupNorm + SiLU keeps only its
 * input and the group statistics and recomputes the normalised tensor. Values and gradients
 * are those of the plain libtorch operators, bit for bit. */

vqt_tensor *vqt_conv2d(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b, int sh,
                       int sw, int ph, int pw, int groups);
vqt_tensor *vqt_linear(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b);
vqt_tensor *vqt_matmul(const vqt_tensor *a, const vqt_tensor *b);
vqt_tensor *vqt_softmax(const vqt_tensor *t, int dim);
/* softmax(q k^T / sqrt(hd) + mask) v for q [N, H, Lq, hd] and k, v [N, H, Lk, hd], mask an
 * additive [Lq, Lk] or NULL, as one fused operator: libtorch 2.x's scaled_dot_product_attention,
 * which on CUDA picks a flash or memory-efficient kernel that never stores the [Lq, Lk] scores,
 * and 1.13's private one (its math implementation) before that. Equal to the composed operators
 * within rounding, not bit for bit. */
vqt_tensor *vqt_sdpa(const vqt_tensor *q, const vqt_tensor *k, const vqt_tensor *v,
                     const vqt_tensor *mask);
/* LayerNorm over the last dimension (w, b may be NULL). */
vqt_tensor *vqt_layer_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b,
                           double eps);
vqt_tensor *vqt_group_norm(const vqt_tensor *x, int groups, const vqt_tensor *w,
                           const vqt_tensor *b, double eps);
/* How vqt_group_norm_silu computes (see lean_ops.h): NATIVE is libtorch's GroupNorm and SiLU
 * bit for bit; SAVED keeps each channel's scale and shift so that the backward pass does not
 * compute the group statistics again; REDUCE also computes the forward statistics with a
 * plain reduction (var_mean) instead of libtorch's one-block-per-group kernel; COMPOSED builds
 * both passes from reductions and elementwise operators in x's own memory layout (channels
 * last included), with its statistics and factors in float32. AUTO, the default: COMPOSED
 * for a channels-last x; otherwise SAVED on CUDA, NATIVE on the CPU. They agree within
 * rounding. */
typedef enum {
    VQT_GN_AUTO = 0,
    VQT_GN_NATIVE,
    VQT_GN_SAVED,
    VQT_GN_REDUCE,
    VQT_GN_COMPOSED
} vqt_gn_impl;
/* Sets it for every thread. vqt_init() also reads VQCLIP_GROUPNORM=native|saved|reduce|composed
 * from the environment (a developer's switch for benchmarks; another value is warned about and
 * ignored, util/env.h). */
void vqt_set_group_norm_impl(vqt_gn_impl impl);
/* silu(group_norm(x, groups, w, b, eps)) as one operator (see Memory above). */
vqt_tensor *vqt_group_norm_silu(const vqt_tensor *x, int groups, const vqt_tensor *w,
                                const vqt_tensor *b, double eps);
/* BatchNorm in evaluation mode with running statistics. */
vqt_tensor *vqt_batch_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b,
                           const vqt_tensor *mean, const vqt_tensor *var, double eps);

typedef enum { VQT_PAD_CONSTANT, VQT_PAD_REFLECT, VQT_PAD_REPLICATE } vqt_padmode;
/* Pads the last dims as torch.nn.functional.pad: pads = (left, right, top, bottom, ...). */
vqt_tensor *vqt_pad(const vqt_tensor *x, int npads, const int64_t *pads, vqt_padmode mode,
                    double value);

typedef enum {
    VQT_INTERP_NEAREST,
    VQT_INTERP_BILINEAR,
    VQT_INTERP_BICUBIC,
    VQT_INTERP_AREA
} vqt_interp;
/* Resizes an NCHW tensor to oh x ow. align_corners is ignored for nearest and area. */
vqt_tensor *vqt_interpolate(const vqt_tensor *x, int64_t oh, int64_t ow, vqt_interp mode,
                            bool align_corners);
vqt_tensor *vqt_avg_pool2d(const vqt_tensor *x, int k, int stride);
vqt_tensor *vqt_adaptive_avg_pool2d(const vqt_tensor *x, int64_t oh, int64_t ow);
vqt_tensor *vqt_adaptive_max_pool2d(const vqt_tensor *x, int64_t oh, int64_t ow);

typedef enum { VQT_GRID_ZEROS, VQT_GRID_BORDER, VQT_GRID_REFLECTION } vqt_gridpad;
/* Samples an NCHW input at a grid [N, H, W, 2] of (x, y) in [-1, 1] (bilinear). */
vqt_tensor *vqt_grid_sample(const vqt_tensor *x, const vqt_tensor *grid, vqt_gridpad pad,
                            bool align_corners);
/* Sampling grid [N, h, w, 2] for affine matrices theta [N, 2, 3]. */
vqt_tensor *vqt_affine_grid(const vqt_tensor *theta, int64_t n, int64_t c, int64_t h, int64_t w,
                            bool align_corners);
vqt_tensor *vqt_mse_loss(const vqt_tensor *a, const vqt_tensor *b);

/* Operators of the Real-ESRGAN upscalers (models/esrgan.c). leaky_relu: x where x > 0, else
 * slope * x. prelu: the same with one learned slope per channel (w [C], or [1] for all).
 * pixel_shuffle: [N, C*r*r, H, W] -> [N, C, H*r, W*r]; pixel_unshuffle is its inverse (H and W
 * multiples of r), both as torch.nn.functional's. */
vqt_tensor *vqt_leaky_relu(const vqt_tensor *t, double slope);
/* leaky_relu in place, for inference (t must not take part in a gradient): saves the second
 * full-size map that the upscalers' largest layers would otherwise hold. 0, or -1 on failure. */
int vqt_leaky_relu_(vqt_tensor *t, double slope);
/* A channels-last (NHWC in memory) copy of a 4-D tensor, or a new handle to it when it is one;
 * convolutions of such tensors keep the layout. */
vqt_tensor *vqt_channels_last(const vqt_tensor *t);
/* Whether t is a 4-D tensor laid out channels last (NHWC) and not also plainly contiguous. */
bool vqt_is_channels_last(const vqt_tensor *t);
vqt_tensor *vqt_prelu(const vqt_tensor *t, const vqt_tensor *w);
vqt_tensor *vqt_pixel_shuffle(const vqt_tensor *t, int r);
vqt_tensor *vqt_pixel_unshuffle(const vqt_tensor *t, int r);

/* ---- autograd -------------------------------------------------------------------------- */

int vqt_set_requires_grad(vqt_tensor *t, bool on);
bool vqt_requires_grad(const vqt_tensor *t);
/* Back-propagates from a one-element tensor. Returns 0 or -1. */
int vqt_backward(const vqt_tensor *loss);
/* The accumulated gradient of a leaf, or NULL when none (not an error). */
vqt_tensor *vqt_grad(const vqt_tensor *t);
/* Drops the accumulated gradient of a leaf. */
void vqt_grad_clear(vqt_tensor *t);
/* Copies src into dst in place without recording gradients (dst keeps its identity). */
int vqt_copy_(vqt_tensor *dst, const vqt_tensor *src);

/* Clamps like vqt_clamp, but the gradient passes wherever it would move the value back into
 * [lo, hi] (the seed notebook's ClampWithGrad). */
vqt_tensor *vqt_clamp_with_grad(const vqt_tensor *x, double lo, double hi);
/* Forward value of `fwd`, gradient routed to `bwd` as if identity (straight-through). */
vqt_tensor *vqt_replace_grad(const vqt_tensor *fwd, const vqt_tensor *bwd);

/* A pure function of one tensor built from vqt ops (no randomness, no side effects): it may run
 * twice, and on another thread (CUDA's backward pass). It returns NULL on failure, with the
 * message in vqt_last_error(). Its handles are freed by the caller (it runs inside a scope). */
typedef vqt_tensor *(*vqt_segment_fn)(void *arg, const vqt_tensor *x);
/* Activation checkpointing: fn(arg, x) with its intermediate values not kept for the backward
 * pass; a gradient reaching the result runs fn on x again, recording, and flows back through
 * that rerun into x (the gradient only reaches x: fn's other inputs, such as weights, get none).
 * Same value and gradient as calling fn directly, for less memory and one more forward pass.
 * Without grad mode or when x needs no gradient, it is fn(arg, x). `arg` must stay valid until
 * the backward pass is done. Returns a new handle, or NULL on failure (also fn's). */
vqt_tensor *vqt_checkpoint(vqt_segment_fn fn, void *arg, const vqt_tensor *x);

/* ---- recorded functions (CUDA graphs) ------------------------------------------------- */

/* A function of one tensor that runs from two recorded CUDA graphs, its forward pass and its
 * backward pass, instead of launching its operators one by one: one launch from the host for
 * hundreds of kernels (CLIP's image encoder: about 1,260 operators a step). fn has the contract
 * of vqt_segment_fn and must be deterministic and free of host synchronisation; its weights get
 * no gradient, only its input does. Recording happens at the first call that needs a gradient:
 * an eager pass on the caller's stream and one on a side stream (warm-ups), the two captures
 * into one private memory pool (which stays reserved while g lives), and a self-check that one
 * replay gives the eager pass's result and input gradient (within 1e-3 of their largest magnitude).
 * A call runs fn eagerly, with the same value and gradient, when it cannot replay: no gradient
 * wanted; an input of another shape, type or device than the first; the previous replay's backward
 * pass still to come (a replay overwrites the activations it saved); or the recording failed or is
 * not possible (then vqt_graphed_why says why). */
typedef struct vqt_graphed vqt_graphed;

/* How vqt_graphed_call runs: AUTO records on a CUDA device in a build with libtorch's CUDA
 * graphs and runs eagerly elsewhere; OFF always runs eagerly; EMULATE, for tests on any device,
 * goes through the same static buffers and autograd node, with each "replay" an eager pass.
 * vqt_init() reads VQCLIP_CUDA_GRAPH=0|1|emulate (a developer's switch: 1 is AUTO). */
typedef enum { VQT_GRAPHS_AUTO = 0, VQT_GRAPHS_OFF, VQT_GRAPHS_EMULATE } vqt_graphs_mode;
void vqt_set_graphs_mode(vqt_graphs_mode mode);
vqt_graphs_mode vqt_get_graphs_mode(void);
/* Whether this build can record CUDA graphs (a CUDA libtorch with ATen/cuda/CUDAGraph.h). */
bool vqt_cuda_graphs_built(void);

/* Checks once per process that libtorch's CPU convolutions give right values
 * and input gradients in float32 and bfloat16, against float64 on small whole numbers at a few
 * channel counts. Where they do not (Debian 13's libtorch 2.6 on AVX-512 CPUs), turns libtorch's
 * oneDNN (mkldnn) convolutions off for the process, checks again and warns once. Returns 0 (right),
 * 1 (wrong with oneDNN, right without: now without), or -1 (wrong either way, or the check could
 * not run). *why (may be NULL) gets what was wrong, or NULL; it lives as long as the process.
 * Called where a model's weights are placed on the CPU (src/models/weights.c), and by the system
 * checks, before any convolution there, so that a run on a GPU does not pay for it (docs/gpu.md).
 * VQCLIP_ONEDNN=0 in the environment takes libtorch's own convolutions without checking (returns 1,
 * *why names it): the tests hold that path to account on any machine. */
int vqt_cpu_conv_check(const char **why);
/* vqt_cpu_conv_check's outcome without running it: -2 while it has not run in this process. */
int vqt_cpu_conv_state(void);

/* A recorder of fn(arg, x); arg must stay valid while the object lives. NULL on failure. */
vqt_graphed *vqt_graphed_new(vqt_segment_fn fn, void *arg);
/* fn(arg, x), replayed when it can be (above). Returns a new handle, or NULL on failure (fn's
 * own, or a replay's). */
vqt_tensor *vqt_graphed_call(vqt_graphed *g, const vqt_tensor *x);
/* Calls so far that replayed and that ran eagerly (either may be NULL). */
void vqt_graphed_counts(const vqt_graphed *g, long long *replays, long long *eager);
/* Why calls run eagerly for good (the recording failed or cannot happen), or NULL: recorded, not
 * tried yet, or the mode is OFF. The text lives as long as g. */
const char *vqt_graphed_why(const vqt_graphed *g);
/* Frees g and its graphs' memory pool. No autograd graph that went through it may be left. */
void vqt_graphed_free(vqt_graphed *g);

/* ---- profiling ------------------------------------------------------------------------- */

/* Where a step's time (and memory: vqt_profile_memory) goes, stage by stage. A step is
 * bracketed by vqt_profile_begin() and vqt_profile_end(); each vqt_profile_mark(p, s) in
 * between ends stage s: the time from the previous mark is added to s. On CUDA the marks are
 * CUDA events on the device's current stream, so a stage's device time is what the GPU spent
 * between them (idle gaps waiting for the host included); on the CPU they are host clock
 * readings. Every mark also reads the host clock: a stage whose host time is close to its
 * device time is limited by launching its operators, not by the GPU. Marks past 64 in one step
 * are dropped. Not thread-safe except as vqt_profile_mark_on_grad describes. */
typedef struct vqt_profile vqt_profile;

/* A profile of nstages (1..256) stages for work on dev; NULL on failure. */
vqt_profile *vqt_profile_new(vqt_device dev, int nstages);
void vqt_profile_free(vqt_profile *p);
/* Starts a step (its first mark). Returns 0 or -1. */
int vqt_profile_begin(vqt_profile *p);
/* Ends stage `stage` now, in the device's stream order. Returns 0 or -1. */
int vqt_profile_mark(vqt_profile *p, int stage);
/* Marks stage `stage` when the backward pass has computed the gradient of t (which must record
 * one), from the autograd engine's thread while the caller waits in vqt_backward(). */
int vqt_profile_mark_on_grad(vqt_profile *p, vqt_tensor *t, int stage);
/* Ends the step: waits for its last mark on the device and, when `count`, adds its stage times
 * to the totals (false: a warm-up step, timed but not counted). Returns 0 or -1. */
int vqt_profile_end(vqt_profile *p, bool count);
/* The totals of a stage in seconds (device and host); returns the steps counted, or -1. */
int vqt_profile_get(const vqt_profile *p, int stage, double *device_s, double *host_s);
/* The ATen operators dispatched during a stage, summed over the counted steps (nested calls and
 * the backward pass's included; a profile counts them on every thread while it lives), or -1. */
long long vqt_profile_ops(const vqt_profile *p, int stage);
/* Memory in bytes above what the device held at the step's start, the largest over the counted
 * steps: held at the stage's end, and the highest within it (vqt_peak_bytes between the marks;
 * what tensors hold, as the allocator counts it when the host queues the operators). Returns
 * the steps counted, or -1. A profile resets the device's peak at every mark. */
int vqt_profile_memory(const vqt_profile *p, int stage, long long *held, long long *high);
/* The device's peak since the profile was made, across those resets (vqt_peak_bytes' figure
 * for a run that a profile watched). */
long long vqt_profile_peak_bytes(const vqt_profile *p);
/* Whether the device times come from CUDA events (false: the host clock). */
bool vqt_profile_uses_events(const vqt_profile *p);
/* Asks p to record, with libtorch's operator profiler (Kineto), every operator the host runs
 * and on CUDA every kernel, copy and set the device runs, from the end of the first counted
 * step to vqt_profile_kernels: the stage times say which stage is slow, these tables why. The
 * recording costs host time per operator, so the stage times of such a run are not a plain
 * run's. One profile per process may record. Returns 0, or -1 when another is recording. A
 * recording that cannot start leaves the steps alone: vqt_profile_kernels says why. */
int vqt_profile_want_kernels(vqt_profile *p);
/* Ends the recording and returns the tables as text lines (malloc'd, for free()), per counted
 * step: the device's kernels, copies and sets by time (with how long the device was busy), then
 * the host's operators by their own time (without the operators they called), each with the
 * `top` largest rows and the rest in one. Returns the steps they cover (0, with *text NULL:
 * nothing was recorded), or -1 (also when the recording could not start). */
int vqt_profile_kernels(vqt_profile *p, int top, char **text);
/* Tensor handles made so far by vqt functions, on every thread: a count of the operators the
 * C side has asked libtorch for (each one or more kernel launches on a GPU). */
long long vqt_handles_made(void);

#ifdef __cplusplus
}
#endif

#endif

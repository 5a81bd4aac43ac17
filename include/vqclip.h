/* vqclip: text to image with VQGAN + CLIP, as a C library.
 *
 *   #include <vqclip.h>
 *
 *   vqc_context_params cp = vqc_context_default_params();
 *   cp.vqgan = "vqgan_imagenet_f16_16384";     // a name in the models folders, or a path
 *   cp.clip = "ViT-B/32";
 *   vqc_context *ctx;
 *   if (vqc_init(&cp, &ctx) != 0) { fprintf(stderr, "%s\n", vqc_last_error()); return 1; }
 *
 *   vqc_generate_params gp = vqc_generate_default_params();
 *   gp.prompts = "a cyberpunk city:1|blurry:-0.5";
 *   gp.output = "city.png";
 *   gp.seed = 42;
 *   vqc_generate_result res;
 *   int rc = vqc_generate(ctx, &gp, &res);   // models load at the first call and stay loaded
 *   vqc_free(ctx);
 *
 * Conventions (after whisper.cpp): opaque contexts; parameters as structs returned by value
 * from *_default_params(); functions return 0 on success and a negative VQC_ERR_* code on
 * failure, with a one-line message from vqc_last_error() (thread-local); log lines go to the
 * sink set with vqc_log_set(). Strings passed in are borrowed for the duration of the call;
 * strings returned are static or owned by the object they came from, unless said otherwise.
 * Nothing here prints to stdout. Link with `pkg-config --libs vqclip`.
 *
 * Threads: any function may be called from any thread. The ones that compute (vqc_load,
 * vqc_generate, vqc_free, vqc_reconstruct, vqc_score, vqc_system_check, vqc_upscaler_load,
 * vqc_upscale_pixels, vqc_upscale_file, vqc_upscaler_free) run one at a time in a process: a
 * call waits until another thread's has returned. libtorch keeps its CPU thread count, its
 * cuDNN and TF32 switches, its random generators and the recording of CUDA graphs for the whole
 * process, so generations at once would draw each other's random numbers and could break each
 * other's graph recording. Each context's own settings (n_threads, deterministic, the
 * precision) are put in place whenever it loads or generates, so contexts that differ can take
 * turns. The lock is recursive: a callback may call these functions, but must not wait for
 * another thread that does. Work in parallel runs in separate processes, one per GPU (as the
 * command line's --shard does). */
#ifndef VQCLIP_H
#define VQCLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VQC_API __attribute__((visibility("default")))
#else
#define VQC_API
#endif

/* Error codes (negative). A command line maps them to exit statuses 1, 2, 2, 2, 3, 3 and
 * 130/143 (vqclip's does). */
enum {
    VQC_ERR_USAGE = -1,       /* bad argument or option value */
    VQC_ERR_IO = -2,          /* file missing, unreadable or unwritable */
    VQC_ERR_FORMAT = -3,      /* a file is not what it should be (corrupt, truncated, wrong kind) */
    VQC_ERR_MODEL = -4,       /* weights do not form a model we know */
    VQC_ERR_RUNTIME = -5,     /* a libtorch or device failure, or a non-finite loss */
    VQC_ERR_NOMEM = -6,       /* allocation failed or a size is absurd */
    VQC_ERR_INTERRUPTED = -7, /* stopped by the abort callback */
};

/* The current thread's last error message; never NULL. */
VQC_API const char *vqc_last_error(void);

/* Records the current thread's error message (printf-style, kept on one line) and returns
 * `code`: for callers that report their own failures the way the library does. */
VQC_API int vqc_set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The library's version ("0.1.0") and the version of the libtorch it runs on ("2.11.0"). */
VQC_API const char *vqc_version(void);
VQC_API const char *vqc_torch_version(void);

/* Seconds on a monotonic clock, for durations only: the clock the library times its runs with
 * (vqc_result's seconds), so a caller's own timings agree with it. */
VQC_API double vqc_now(void);

/* ---- logging ---------------------------------------------------------------------------- */

typedef enum { VQC_LOG_DEBUG = 0, VQC_LOG_INFO, VQC_LOG_WARN, VQC_LOG_ERROR } vqc_log_level;

/* Receives each log line (one line, no newline) at or above the threshold. */
typedef void (*vqc_log_callback)(vqc_log_level level, const char *text, void *user);

/* Installs a log sink and the lowest level passed on (process-wide). NULL restores the default,
 * which prints "vqclip: <text>" to stderr ("vqclip: warning: <text>" for warnings). */
VQC_API void vqc_log_set(vqc_log_callback cb, void *user, vqc_log_level threshold);

/* ---- choices ---------------------------------------------------------------------------- */
/* Each choice has a parser taking the names nerdyrodent's generate.py accepts, ignoring case
 * (0, or VQC_ERR_USAGE with a message listing the valid names), and a canonical name. */

typedef enum {
    VQC_OPT_ADAM = 0,
    VQC_OPT_ADAMW,
    VQC_OPT_ADAGRAD,
    VQC_OPT_ADAMAX,
    VQC_OPT_RADAM,
    VQC_OPT_RMSPROP,
    VQC_OPT_DIFFGRAD,
    VQC_OPT_ADAMP,
    VQC_OPT_COUNT
} vqc_optim_kind;
VQC_API int vqc_optim_parse(const char *name, vqc_optim_kind *out);
VQC_API const char *vqc_optim_name(vqc_optim_kind kind);

/* pooling: every cutout pools the whole picture (the peer's "latest", "updatedpooling");
 * original: random squares (the peer's "original", "updated", "nrupdated"). */
typedef enum { VQC_CUT_POOLING = 0, VQC_CUT_ORIGINAL, VQC_CUT_COUNT } vqc_cut_method;
VQC_API int vqc_cut_method_parse(const char *name, vqc_cut_method *out);
VQC_API const char *vqc_cut_method_name(vqc_cut_method m);

/* The MSE term towards the initial z: the seed notebook's decaying term, a constant pull, or
 * the "MSE regularised" notebook's stepped schedule. */
typedef enum { VQC_MSE_SEED = 0, VQC_MSE_ANCHOR, VQC_MSE_STEPPED, VQC_MSE_COUNT } vqc_mse_mode;
VQC_API int vqc_mse_mode_parse(const char *name, vqc_mse_mode *out);
VQC_API const char *vqc_mse_mode_name(vqc_mse_mode m);

/* The starting picture when there is no init image: random codebook entries (none), or the
 * encoding of random pixels or of a random gradient. */
typedef enum {
    VQC_NOISE_NONE = 0,
    VQC_NOISE_PIXELS,
    VQC_NOISE_GRADIENT,
    VQC_NOISE_COUNT
} vqc_init_noise;
VQC_API int vqc_init_noise_parse(const char *name, vqc_init_noise *out);
VQC_API const char *vqc_init_noise_name(vqc_init_noise n);

/* pixray's smoothness variants: the per-pixel gradient magnitude as it is, clamped at 0.5
 * ("clipped") or log(1 + s) ("log"). */
typedef enum {
    VQC_SMOOTHNESS_DEFAULT = 0,
    VQC_SMOOTHNESS_CLIPPED,
    VQC_SMOOTHNESS_LOG,
    VQC_SMOOTHNESS_COUNT
} vqc_smoothness_type;
VQC_API int vqc_smoothness_type_parse(const char *name, vqc_smoothness_type *out);
VQC_API const char *vqc_smoothness_type_name(vqc_smoothness_type t);

/* The learning rate over a run: constant, multiplied by a factor every N steps, or a half
 * cosine from the given rate down to a floor at the last iteration. */
typedef enum { VQC_LR_CONSTANT = 0, VQC_LR_STEP, VQC_LR_COSINE, VQC_LR_COUNT } vqc_lr_schedule;
VQC_API int vqc_lr_schedule_parse(const char *name, vqc_lr_schedule *out);
VQC_API const char *vqc_lr_schedule_name(vqc_lr_schedule s);

/* Augmentations of the cutouts, by the peer's codes (Af, Pe, Ji, Er, Sh, Gn, Ro, Hf, Cr, Re, Et,
 * Ts), applied in the order of the list. */
typedef enum {
    VQC_AUGMENT_AF = 0, /* random affine */
    VQC_AUGMENT_PE,     /* random perspective */
    VQC_AUGMENT_JI,     /* colour jitter */
    VQC_AUGMENT_ER,     /* random erasing */
    VQC_AUGMENT_SH,     /* sharpness */
    VQC_AUGMENT_GN,     /* Gaussian noise */
    VQC_AUGMENT_RO,     /* rotation */
    VQC_AUGMENT_HF,     /* horizontal flip */
    VQC_AUGMENT_CR,     /* random crop */
    VQC_AUGMENT_RE,     /* random resized crop */
    VQC_AUGMENT_ET,     /* random elastic transform */
    VQC_AUGMENT_TS,     /* random thin plate spline */
    VQC_AUGMENT_COUNT
} vqc_augment;
#define VQC_MAX_AUGMENTS 16
/* Parses codes separated by commas and/or white space ("Af,Pe,Ji,Er", "af pe"); "none" alone
 * gives an empty list. Writes at most VQC_MAX_AUGMENTS codes in the order given and their count. */
VQC_API int vqc_augments_parse(const char *text, vqc_augment *out, int *n);
VQC_API const char *vqc_augment_name(vqc_augment a);

/* ---- context: the models ------------------------------------------------------------------ */

typedef struct vqc_context vqc_context;

/* How a CUDA device computes (the CPU always computes in float32, as exact). */
typedef enum {
    VQC_PRECISION_AUTO = 0, /* the device's default: exact on the CPU; fast on CUDA, but mixed
                             * on a GPU older than Ampere (compute capability below 8.0), which
                             * has no bfloat16 convolutions */
    VQC_PRECISION_EXACT,    /* float32 everywhere, TF32 off: the reference path */
    VQC_PRECISION_MIXED,    /* CLIP in float16, the VQGAN in float32 (TF32 off) */
    VQC_PRECISION_FAST,     /* CLIP in float16, the VQGAN decoder in bfloat16; z, the codebook
                             * search, the losses and the optimiser stay float32 */
    VQC_PRECISION_COUNT
} vqc_precision;
VQC_API int vqc_precision_parse(const char *name, vqc_precision *out);
VQC_API const char *vqc_precision_name(vqc_precision p);

/* The most CLIP models vqc_context_params.clip may list. */
#define VQC_MAX_CLIPS 8

typedef struct vqc_context_params {
    const char *vqgan;        /* name or path; NULL: "vqgan_imagenet_f16_16384" */
    const char *vqgan_config; /* .yaml to cross-check; NULL: NAME.yaml beside the checkpoint */
    const char *clip;         /* name or path; NULL: "ViT-B/32". Several models guide the
                               * picture together when listed as pixray lists them,
                               * "ViT-B/32,ViT-B/16:0.5,RN50": NAME[:WEIGHT] separated by ','
                               * (at most VQC_MAX_CLIPS; a weight is a number above 0, default
                               * 1; a name at most once). Each model scores its own cutouts (cutn
                               * of them, at its own input resolution) against its own
                               * embeddings of the prompts; the prompts' losses are the
                               * weighted sums over the models. The text is tokenised once, with
                               * the first model's vocabulary (bpe). A malformed list fails
                               * vqc_init with VQC_ERR_USAGE, before any model is read. */
    const char *bpe;          /* NULL: "bpe_simple_vocab_16e6.txt.gz" */
    const char *device;       /* "cpu", "cuda", "cuda:N"; NULL: CUDA when available */
    int n_threads;            /* CPU threads; 0: the usable CPUs (vqc_cpu_info) */
    vqc_precision precision;  /* VQC_PRECISION_AUTO */
    bool clip_fp32;           /* on CUDA, run CLIP in float32 whatever the precision */
    bool deterministic;       /* on CUDA, the same picture from a seed bit for bit: cuDNN's
                               * and libtorch's deterministic algorithms, the atomic-adding
                               * gradients taken on the CPU, and cuBLAS's fixed workspace, which
                               * needs the first CUDA context of the process to be deterministic
                               * or CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment (else a
                               * warning says so) */
    bool low_memory;      /* recompute the VQGAN decoder's activations in the backward pass instead
                           * of keeping them: the same images for much less memory per step at large
                           * sizes, and about one more decoder forward pass per step */
    bool auto_low_memory; /* true by default: with low_memory off, a run whose step would not fit
                           * the memory available (the device's free memory, within
                           * memory_limit) but would with low_memory runs with it, and says so
                           * (vqc_generate_result.low_memory); a step that fails to allocate all
                           * the same is taken again with low_memory, once, from the same random
                           * state. false: such a run fails with VQC_ERR_NOMEM */
    long long memory_limit; /* bytes the tensors on this context's device may hold, the models'
                             * included; 0 (the default): what the device has. Each run plans
                             * within it and holds the device's allocator to it from its start:
                             * an allocation beyond it fails as out of memory (then see
                             * auto_low_memory). Process-wide for that device, as PyTorch's
                             * set_per_process_memory_fraction: the last run's limit holds (0
                             * lifts an earlier one), for the tools' calls too. On
                             * CUDA what libtorch's caching allocator reserves (the CUDA context,
                             * about 0.5 GiB, is outside it); on the CPU what libtorch allocates
                             * (the weights are mapped from their files and not counted) */
} vqc_context_params;

/* Every field 0 / NULL / false, but auto_low_memory true. */
VQC_API vqc_context_params vqc_context_default_params(void);

/* Checks the parameters and picks the device (a CUDA device that is not there is
 * VQC_ERR_RUNTIME, a name that is no device VQC_ERR_USAGE). The models are found and loaded by
 * the first vqc_generate() (after it has checked its own inputs, so that a bad input fails
 * before the slow part) or by vqc_load(). Returns 0 and *out (free with vqc_free). */
VQC_API int vqc_init(const vqc_context_params *p, vqc_context **out);

/* Finds and loads the models now, if not done yet. Returns 0 or VQC_ERR_IO (a model file is
 * missing: the message names what was asked for and every path tried) / VQC_ERR_FORMAT /
 * VQC_ERR_MODEL / VQC_ERR_RUNTIME. A failure is not remembered: the next call tries again. */
VQC_API int vqc_load(vqc_context *ctx);

VQC_API void vqc_free(vqc_context *ctx);

/* Whether vqc_init(p) would use the bundled demo models (models/demo: a small VQGAN and CLIP
 * trained on 64x64 pictures of coloured shapes): p names no model (vqgan, clip and bpe all
 * NULL), neither default model is found in the models folders, and the demo set is installed
 * or in the source tree. The context then logs a one-line notice and loads the demo set. Callers
 * use this to pick settings that suit it (the command line: 64x64, fewer steps). */
VQC_API bool vqc_uses_demo_models(const vqc_context_params *p);

/* ---- one generation ------------------------------------------------------------------------ */

/* Progress after each step: the step number (1-based), the total, and 1 + n_prompts loss
 * terms (first the MSE term plus the shaping losses, then each prompt's: with several CLIP
 * models, its weighted sum over them). */
typedef void (*vqc_progress_callback)(int step, int total, const float *losses, int n_losses,
                                      void *user);
/* With several CLIP models (vqc_context_params.clip), after each step and before the progress
 * callback: each model's part of the loss (its weight times its losses summed over the
 * prompts), n_models values in the order listed. */
typedef void (*vqc_clip_losses_callback)(int step, const float *losses, int n_models, void *user);
/* Polled after each step: returning true stops the run after writing the current image. */
typedef bool (*vqc_abort_callback)(void *user);
/* Called after each image written: its path, the step and the total loss. Always on the thread
 * that called vqc_generate, in the order the images were written; on CUDA the images are
 * encoded and written by background threads while the next steps run, so the call can come a
 * few steps after its step (every one has come when vqc_generate returns). */
typedef void (*vqc_image_callback)(const char *path, int step, double loss, void *user);

/* What a run resolved before its first step (for describing it). */
typedef struct vqc_run_info {
    int width, height;      /* the size used (rounded down to the VQGAN's factor) */
    int downsample;         /* the VQGAN's factor */
    const char *vqgan_path; /* the model files used */
    const char *clip_path;  /* several CLIP models: their list ("PATH,PATH:W"), which
                             * vqc_context_params.clip reads back */
    bool on_cuda;           /* the device is a GPU */
    bool demo_models;       /* the demo set is in use */
    const char *bpe_path;   /* the CLIP vocabulary used */
} vqc_run_info;
/* Returns the PNG "parameters" text of the run, malloc'ed (the library frees it), or NULL for
 * none. Called once per run, before the first step, when params_text is NULL. */
typedef char *(*vqc_describe_callback)(const vqc_run_info *info, void *user);

/* The largest image side and cutout count a generation accepts. */
#define VQC_MAX_SIDE 8192
#define VQC_MAX_CUTN 4096

typedef struct vqc_generate_params {
    const char *prompts;              /* "text[:w[:stop]]|...", phrases split by '^' */
    const char *const *image_prompts; /* each "path[:w[:stop]]|..." */
    int n_image_prompts;
    const char *const *noise_prompts; /* each "SEED[:W]" */
    int n_noise_prompts;
    int change_prompt_every; /* story mode: next '^' phrase every N steps; 0 off */

    int width, height; /* 0: 512x512 on CUDA, 256x256 on the CPU */
    int iterations;    /* 500 */
    int save_every;    /* 50; 0 never; the final image is always written */
    uint64_t seed;

    const char *init_image;          /* NULL: init_noise decides */
    vqc_init_noise init_noise;       /* VQC_NOISE_NONE: random codebook entries */
    double init_weight;              /* 0: no MSE term */
    vqc_mse_mode init_weight_mode;   /* VQC_MSE_SEED */
    int mse_decay_every, mse_epochs; /* stepped mode: 50, 5 */

    double lr;                              /* 0.1 */
    vqc_optim_kind optimiser;               /* VQC_OPT_ADAM */
    vqc_cut_method cut_method;              /* VQC_CUT_POOLING */
    int cutn;                               /* 32 */
    double cut_pow;                         /* 1 */
    double cut_noise;                       /* 0.1 */
    vqc_augment augments[VQC_MAX_AUGMENTS]; /* Af, Pe, Ji, Er */
    int n_augments;                         /* 4; 0: none */

    const char *output;      /* .png or .jpg/.jpeg path (the name picks the format), written
                              * atomically */
    const char *save_frames; /* folder for frames; NULL: none */
    int frame_every;         /* 1 */
    int zoom_every;          /* zoom video: every N steps re-encode the zoomed image; 0 off */
    int zoom_start;          /* first step that zooms (0) */
    double zoom_scale;       /* 0.99: above 1 zooms in, below 1 out (as generate.py) */
    int zoom_shift_x;        /* pixels per zoom, wrapping around */
    int zoom_shift_y;
    const char *save_state;  /* safetensors state written with each snapshot */
    const char *resume;      /* continue from a state file */
    const char *params_text; /* the PNG "parameters" text; NULL: from `describe`, else none */
    bool profile;            /* log where a step's time goes, stage by stage, at the end */

    vqc_progress_callback progress;
    vqc_abort_callback abort;
    vqc_image_callback on_image;
    vqc_describe_callback describe;
    void *user;

    /* Image prompts and the init image may be https:// URLs (fetched before the models load,
     * within $VQCLIP_FETCH_TIMEOUT seconds, default 60, and $VQCLIP_FETCH_MAX_BYTES, default
     * 64 MiB); plain http:// ones only when this is true. */
    bool allow_http;
    /* Called after each frame written to save_frames (path, step, total loss: NAN for the
     * picture before the first step); may be NULL. */
    vqc_image_callback on_frame;
    /* Frames named N.png with N = step / frame_every, as generate.py's steps/N.png (a zoom
     * video's frames counted, not its steps), instead of the step as NNNNN.png; a fresh run also
     * writes 0.png, the picture before the first step, and a zoom video zooms it (from
     * zoom_start 0), as generate.py does. */
    bool peer_frame_names;
    /* A keyframed camera for zoom videos: "FRAME:(VALUE), ..." schedules, FRAME counting the
     * zoom video's frames (step / zoom_every, as its N.png), linear between keys, held before
     * the first and after the last. zoom_schedule replaces zoom_scale, shift_x/y_schedule
     * zoom_shift_x/y (pixels, rounded, wrapping around); angle_schedule rotates the picture about
     * its centre by that many degrees counter-clockwise at each zoom. NULL: the constants. */
    const char *zoom_schedule, *angle_schedule, *shift_x_schedule, *shift_y_schedule;

    /* Shaping losses after pixray (docs/losses.md); a weight of 0 turns one off. Smoothness,
     * saturation and palette are computed on the cutouts CLIP sees, symmetry on the picture. */
    double smoothness;                   /* weight of the total-variation term; 0 */
    vqc_smoothness_type smoothness_type; /* VQC_SMOOTHNESS_DEFAULT */
    double saturation;                   /* weight of the colourfulness reward; 0 */
    double symmetry;                     /* weight of the left-right mirror term; 0 */
    double symmetry_ud;                  /* weight of the up-down mirror term; 0 */
    const char *palette;                 /* "#rrggbb,#rrggbb,..."; NULL: no palette term */
    double palette_weight;               /* 1 (used only with a palette) */

    /* Schedules. */
    vqc_lr_schedule lr_schedule; /* VQC_LR_CONSTANT */
    int lr_step_every;           /* step schedule: every N steps (100) */
    double lr_step_factor;       /* step schedule: multiply by this (0.5) */
    double lr_floor;             /* cosine schedule: the rate at the last iteration (0) */
    int stop_window;             /* stop when the mean loss of the last N steps is not below the
                                  * mean of the N before by stop_fraction of its size; 0 off */
    double stop_fraction;        /* 0.01 */
    double ema;                  /* decay of the moving average of z written as the picture
                                  * (snapshots, frames, output); 0: z itself */

    /* A blended start, for video style transfer's temporal smoothing: with init_image and
     * init_blend > 0, z starts at init_blend * z_blend + (1 - init_blend) * z_init, where z_init
     * and z_blend are the encodings of init_image and of init_blend_image (the previous frame's
     * result, say), each made as init_image's is (resized to the output size, encoded,
     * quantised). The MSE term's anchor is that blend. init_blend in [0, 1]; 0 (the default):
     * init_image alone, init_blend_image is not read. */
    const char *init_blend_image;
    double init_blend;

    /* Each CLIP model's part of the loss after each step, when there are several; may be NULL
     * (it is never called with one model). */
    vqc_clip_losses_callback clip_losses;
} vqc_generate_params;

VQC_API vqc_generate_params vqc_generate_default_params(void);

/* Checks the parameters without touching a file or a model: numbers in range, names and
 * prompts well formed, an output named .png, .jpg or .jpeg. Returns 0 or VQC_ERR_USAGE.
 * vqc_generate() checks them too. */
VQC_API int vqc_generate_check(const vqc_generate_params *params);

/* Where a size that does not fit would: filled when a run fails with VQC_ERR_NOMEM. */
typedef struct vqc_memory_advice {
    bool known;                /* the device's free memory is known: the three below are set */
    int fit_width, fit_height; /* about the largest size of the same shape that fits; 0: none */
    bool fewer_cutn;           /* fewer cutouts would also help (more than 8 were asked for) */
    bool low_memory;           /* the size asked for would fit with low_memory */
    const char *kept;          /* the last image written, kept (NULL: none); valid until the
                                * next call on the context */
} vqc_memory_advice;

typedef struct vqc_generate_result {
    int steps; /* steps done (including resumed ones) */
    int width, height;
    double loss;          /* total loss of the last step */
    double seconds;       /* time from the call to the end */
    double setup_seconds; /* time from the call to the first step (models loaded included) */
    /* peak bytes that tensors held on the device during the call: on CUDA the caching
     * allocator's peak, on the CPU libtorch's CPU tensors, counted process-wide (0 where
     * unknown: a C library other than glibc, a libtorch build that does not expose its CUDA
     * allocator's statistics); what the device held when the call began (the models), and the
     * planner's estimate of one step beyond that */
    long long peak_device_bytes;
    long long base_device_bytes;
    long long planned_step_bytes;
    vqc_memory_advice advice; /* with VQC_ERR_NOMEM */
    bool plateaued;           /* stopped before `iterations` because the loss stopped improving
                               * (stop_window); steps says when */
    bool low_memory;          /* the run ended computing with low_memory: asked for, or taken
                               * because the size did not fit without (auto_low_memory) */
} vqc_generate_result;

/* Runs one generation and writes params->output (and snapshots, frames, state). In order: checks
 * the parameters, that the output (and state file) can be written, reads and decodes the input
 * images, loads the models (the first time), then runs. Returns 0, VQC_ERR_INTERRUPTED when the
 * abort callback stopped it (the current image was written), or another negative code. `res`
 * may be NULL. */
VQC_API int vqc_generate(vqc_context *ctx, const vqc_generate_params *params,
                         vqc_generate_result *res);

/* Checks that `path` can be written as an output file without touching it (its folder exists
 * and is writable, it is not a folder). Returns 0 or VQC_ERR_IO with a message. */
VQC_API int vqc_check_output(const char *path);

/* The settings a state file (generate params' save_state) was written with, to resume it
 * without giving them again. */
typedef struct vqc_saved_run vqc_saved_run;
/* Reads the settings of the state file `path`. Returns 0 and *out (free with
 * vqc_saved_run_free), or VQC_ERR_IO / VQC_ERR_FORMAT (not a vqclip state file). */
VQC_API int vqc_saved_run_load(const char *path, vqc_saved_run **out);
/* Sets in gp and cp (may be NULL) everything the saved run was made with: prompts, size, seed,
 * start, optimisation, cutouts, zoom, the run's iterations and the model files. The strings
 * belong to s: keep it until the parameters are no longer used. */
VQC_API void vqc_saved_run_apply(const vqc_saved_run *s, vqc_generate_params *gp,
                                 vqc_context_params *cp);
/* The step the state was saved at. */
VQC_API int vqc_saved_run_step(const vqc_saved_run *s);
VQC_API void vqc_saved_run_free(vqc_saved_run *s);

/* The step recorded in an image vqclip wrote (its "vqclip:step" text: the final image of an
 * N-step run says N, a snapshot or an interrupted run's image fewer), PNG or JPEG. Returns 0 and
 * *step, or VQC_ERR_IO (unreadable) / VQC_ERR_FORMAT (neither a PNG nor a JPEG, or no step
 * recorded). */
VQC_API int vqc_image_step(const char *path, int *step);

/* Whether an image vqclip wrote (PNG or JPEG) records that its run stopped early because the loss
 * stopped improving (generate params' stop_window; its "vqclip:stopped" text): such an image is
 * final although its step is below the iterations asked for. false for any other file. */
VQC_API bool vqc_image_plateaued(const char *path);

/* ---- models: finding and describing them --------------------------------------------------- */

typedef enum { VQC_MODEL_VQGAN = 0, VQC_MODEL_CLIP, VQC_MODEL_BPE } vqc_model_kind;

#define VQC_DEFAULT_VQGAN "vqgan_imagenet_f16_16384"
#define VQC_DEFAULT_CLIP "ViT-B/32"
#define VQC_DEFAULT_BPE "bpe_simple_vocab_16e6.txt.gz"

/* The models folders searched, in order: $VQCLIP_MODELS, ~/.cache/vqclip, then the install
 * prefix's share/vqclip/models. Writes up to max paths (valid until the environment changes)
 * and returns the count. */
VQC_API int vqc_model_dirs(const char **dirs, int max);

/* Resolves a model name or path to an existing file (see models/README.md for the names).
 * Returns 0, or VQC_ERR_IO with a message naming what was asked for and every path tried. */
VQC_API int vqc_model_find(vqc_model_kind kind, const char *name, char *path, size_t len);

/* The folder of the bundled demo set, when installed or in the source tree: 0, or -1 (no error
 * recorded) when there is none. */
VQC_API int vqc_demo_dir(char *dir, size_t len);

/* A model file, described without loading it onto a device. */
typedef struct vqc_model_desc {
    vqc_model_kind kind; /* VQC_MODEL_VQGAN or VQC_MODEL_CLIP */
    char path[4096];     /* the file */
    char format[32];     /* its container: "zip", "safetensors", "torchscript", ... */
    long long file_bytes;
    long long n_params;
    /* VQGAN */
    bool gumbel;           /* GumbelVQ (else VQModel) */
    bool from_transformer; /* the first stage of a Net2NetTransformer checkpoint */
    int ch, num_levels, ch_mult[8], num_res_blocks;
    bool enc_attn[8], dec_attn[8];
    int in_channels, out_ch, z_channels, embed_dim, n_embed, downsample;
    /* CLIP */
    bool vit; /* VisionTransformer (else ModifiedResNet) */
    int clip_embed_dim, image_resolution, vision_width, vision_layers, vision_rn_layers[4];
    int vision_patch_size, vision_heads, context_length, vocab_size;
    int transformer_width, transformer_heads, transformer_layers;
} vqc_model_desc;

/* Describes the VQGAN or CLIP `name` (looked up as vqc_model_find does); `config` (VQGAN only,
 * may be NULL) is a .yaml cross-checked against the weights. Returns 0 or VQC_ERR_IO /
 * VQC_ERR_FORMAT / VQC_ERR_MODEL. */
VQC_API int vqc_model_describe(vqc_model_kind kind, const char *name, const char *config,
                               vqc_model_desc *out);

/* ---- tools: reconstruct, tokenize, score ---------------------------------------------- */

typedef struct vqc_reconstruct_params {
    const char *vqgan;        /* name or path; NULL: the default (the demo VQGAN when none is
                               * found) */
    const char *vqgan_config; /* may be NULL */
    const char *input;        /* image file */
    const char *output;       /* .png or .jpg/.jpeg, written atomically */
    const char *device;       /* NULL: CUDA when available */
    bool resize;              /* round the sides down to the VQGAN's factor instead of failing */
} vqc_reconstruct_params;
VQC_API vqc_reconstruct_params vqc_reconstruct_default_params(void);
/* Encodes the input with the VQGAN, replaces every latent by its nearest codebook entry,
 * decodes and writes the output. Returns 0 or a negative code. */
VQC_API int vqc_reconstruct(const vqc_reconstruct_params *p);

typedef struct vqc_tokenizer vqc_tokenizer;
/* The CLIP tokenizer's context: 77 ids. */
#define VQC_TOKENIZER_CONTEXT 77
/* Loads a BPE vocabulary: OpenAI's bpe_simple_vocab_16e6.txt.gz or a Hugging Face vocab.json
 * with merges.txt beside it; NULL looks up the default (the demo set's vocabulary, with a
 * notice, when no downloaded one is found). Returns 0 and *out (free with vqc_tokenizer_free). */
VQC_API int vqc_tokenizer_open(const char *bpe, vqc_tokenizer **out);
VQC_API void vqc_tokenizer_free(vqc_tokenizer *t);
/* Tokenizes text as clip.tokenize(text, truncate=True): n_ctx ids from the start token to the
 * end token, 0-padded; *dropped (may be NULL) gets how many tokens did not fit. */
VQC_API int vqc_tokenize(const vqc_tokenizer *t, const char *text, int n_ctx, int64_t *ids,
                         int *dropped);

/* Receives image `image`'s n_texts scores (borrowed) as soon as they are computed. */
typedef void (*vqc_score_callback)(int image, const float *scores, int n_texts, void *user);

typedef struct vqc_score_params {
    const char *clip;   /* name or path; NULL: the default (the demo CLIP when none is found) */
    const char *bpe;    /* NULL: beside the CLIP file, else the default vocabulary */
    const char *device; /* NULL: CUDA when available */
    const char *const *images;
    int n_images;
    const char *const *texts;
    int n_texts;
    vqc_score_callback on_image; /* may be NULL */
    void *user;
} vqc_score_params;
VQC_API vqc_score_params vqc_score_default_params(void);
/* The CLIP cosine similarity of every image with every text: scores[i * n_texts + j] for image
 * i and text j (n_images * n_texts floats, caller-allocated; may be NULL when on_image is set).
 * The images are scored in order, each passed to on_image before the next is read, so on a
 * failure the callback has had every image before the failing one. Returns 0 or a negative
 * code (VQC_ERR_USAGE for no image or no text). */
VQC_API int vqc_score(const vqc_score_params *p, float *scores);

/* ---- this machine ---------------------------------------------------------------------------- */

typedef struct vqc_system_info {
    int n_threads;          /* CPU threads in use */
    int n_cuda_devices;     /* CUDA devices libtorch can use (0 in a CPU-only build) */
    bool matmul_ok;         /* a float32 matrix product on the CPU is correct */
    char matmul_error[256]; /* why not */
    double matmul_gflops;   /* its speed at 1024x1024 (0 when not measured) */
} vqc_system_info;
/* The CPUs a run may use and how busy other processes keep them. */
typedef struct vqc_cpu_info {
    int online;      /* CPUs the system has online */
    int affinity;    /* CPUs in this process's affinity mask */
    double quota;    /* its cgroup's CPU quota in CPUs; 0 when there is none */
    int usable;      /* min(affinity, quota rounded up): the default thread count */
    int others_busy; /* threads of other processes running now (the lowest of a few samples
                      * about a millisecond apart), or at least `usable` for each other vqclip
                      * process alive, whatever it does that millisecond */
    double load1;    /* the one-minute load average; -1 when unknown */
    bool contended;  /* other work takes a quarter or more of the usable CPUs (others_busy
                      * counts the whole system: its share on this process's CPUs is taken as
                      * others_busy * usable / online) */
} vqc_cpu_info;
/* Reads it from /proc and the cgroup files (about 5 ms). A run's thread count is fixed when it
 * starts, as libtorch's CPU reductions split their work by it: the same seed gives the same
 * picture only at the same count. A caller that sees others_busy > 0 can choose a passive
 * OpenMP wait policy (OMP_WAIT_POLICY, read when the process starts) instead of fewer threads:
 * the command line restarts itself so. */
VQC_API void vqc_cpu_info_read(vqc_cpu_info *out);

/* Sets the CPU thread count (0: the usable CPUs of vqc_cpu_info), checks libtorch's CPU matrix
 * product and, when `bench` is true, times it. Returns 0 (the checks' outcome is in *out) or
 * VQC_ERR_RUNTIME. */
VQC_API int vqc_system_check(int n_threads, bool bench, vqc_system_info *out);

/* One CUDA device as libtorch numbers it: "cuda:N" (vqc_context_params.device) is CUDA's own
 * order, fastest first unless CUDA_DEVICE_ORDER says otherwise, which need not be nvidia-smi's. */
typedef struct vqc_cuda_device_info {
    char name[128];          /* "NVIDIA H100 80GB HBM3"; "" when unknown */
    int cc_major, cc_minor;  /* compute capability; -1 when unknown (a build without the CUDA
                              * runtime's headers) */
    int64_t free_bytes;      /* what this process can still allocate on it; -1 when unknown */
    vqc_precision precision; /* what VQC_PRECISION_AUTO computes in on it (MIXED below compute
                              * capability 8.0, whose GPUs have no bfloat16 convolutions) */
    bool compute_ok;         /* an elementwise kernel of libtorch's, a matrix product (cuBLAS)
                              * and a convolution (cuDNN) in each element type that precision
                              * uses (float32, float16, and bfloat16 for FAST) gave the right
                              * results on it (small whole numbers, to 1%) */
    char compute_error[256]; /* why not, libtorch's message: "no kernel image is available" when
                              * the libtorch build was made without this GPU's architecture */
} vqc_cuda_device_info;
/* Checks CUDA device `index` (0 to the vqc_system_info.n_cuda_devices - 1) and fills *out: a
 * few small computations of whole numbers on it, each read back (a second or so, the first use of a
 * GPU included). Returns 0 (the outcome in *out, compute_ok included), or VQC_ERR_USAGE (with a
 * message) for an index that names no device libtorch can use, a CPU-only build included. */
VQC_API int vqc_cuda_device_check(int index, vqc_cuda_device_info *out);

/* Whether this build replays recorded CUDA graphs for the codebook search, the decoder and
 * CLIP's image encoder (docs/gpu.md); false for a libtorch without CUDA or whose graph API did
 * not compile here (such a build runs every step's operators one by one: slower on a GPU). */
VQC_API bool vqc_cuda_graphs_built(void);

/* ---- upscaling: Real-ESRGAN ------------------------------------------------------------------ */
/* The released Real-ESRGAN networks (RRDBNet: RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B,
 * RealESRGAN_x2plus; SRVGGNetCompact: realesr-general-x4v3, realesr-animevideov3) read from
 * their .pth files, applied as Real-ESRGAN's RealESRGANer.enhance does (docs/upscale.md):
 *
 *   vqc_upscale_params up = vqc_upscale_default_params();
 *   up.model = "RealESRGAN_x4plus";
 *   up.tile = 256;                            // memory bounded by the tile, not the picture
 *   vqc_upscaler *u;
 *   if (vqc_upscaler_load(&up, &u) == 0) {
 *       vqc_upscale_file(u, "in.png", "out.png");
 *       vqc_upscaler_free(u);
 *   }
 */

typedef struct vqc_upscaler vqc_upscaler;

typedef struct vqc_upscale_params {
    const char *model;  /* a name in the models folders (NAME.pth) or a path; required */
    const char *device; /* NULL: CUDA when available */
    bool fp32;          /* on CUDA, compute in float32 (default float16); the CPU is float32 */
    int tile;           /* tile side in input pixels; 0: the whole picture in one pass */
    int tile_pad;       /* context around each tile, in input pixels (10) */
    int pre_pad;        /* reflect padding right and bottom, cropped afterwards (0) */
    double outscale;    /* final size / input size; 0: the network's scale. Another value
                         * resizes the network's output with Lanczos (a = 4) */
} vqc_upscale_params;
VQC_API vqc_upscale_params vqc_upscale_default_params(void);

/* Finds the model (a path, or NAME / NAME.pth in the folders of vqc_model_dirs), infers its
 * architecture and scale from the weights and loads it onto the device. Returns 0 and *out
 * (free with vqc_upscaler_free), or VQC_ERR_USAGE (bad parameter) / VQC_ERR_IO (not found) /
 * VQC_ERR_FORMAT / VQC_ERR_MODEL (not a Real-ESRGAN network) / VQC_ERR_RUNTIME. */
VQC_API int vqc_upscaler_load(const vqc_upscale_params *p, vqc_upscaler **out);

/* The network's scale (1, 2 or 4 for the released models). */
VQC_API int vqc_upscaler_scale(const vqc_upscaler *u);

/* Pixels as stored: `channels` 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) samples per
 * pixel, row-major and interleaved, each in the low `depth` (8 or 16) bits of a uint16_t. */
typedef struct vqc_pixels {
    int w, h, channels, depth;
    uint16_t *data; /* w * h * channels samples */
} vqc_pixels;

/* Upscales `in` (borrowed) into *out, which gets the same channels (grey stays grey, alpha is
 * upscaled by the same network) and malloc'ed data the caller frees with free(). A 16-bit
 * picture whose largest sample exceeds 256 is computed and returned in 16 bits; any other
 * comes back in 8 bits (as RealESRGANer decides). Returns 0 or a negative code (VQC_ERR_USAGE
 * for a malformed picture, VQC_ERR_NOMEM, VQC_ERR_RUNTIME). */
VQC_API int vqc_upscale_pixels(vqc_upscaler *u, const vqc_pixels *in, vqc_pixels *out);

/* Reads the image `input` (PNG 8/16-bit, JPEG, ...), upscales it and writes `output` as a PNG,
 * atomically. Refuses (VQC_ERR_USAGE) an output that is the input file, and checks that the
 * output is writable before computing. Returns 0 or a negative code. */
VQC_API int vqc_upscale_file(vqc_upscaler *u, const char *input, const char *output);

/* NULL is ignored. */
VQC_API void vqc_upscaler_free(vqc_upscaler *u);

#ifdef __cplusplus
}
#endif

#endif

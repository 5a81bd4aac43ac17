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
 *   int rc = vqc_generate(ctx, &gp, &res);   // models stay loaded for the next call
 *   vqc_free(ctx);
 *
 * Conventions (after whisper.cpp): opaque contexts; parameters as structs returned by value
 * from *_default_params(); functions return 0 on success and a negative VQC_ERR_* code on
 * failure, with a one-line message from vqc_last_error() (thread-local). Strings passed in
 * are borrowed for the duration of the call. */
#ifndef VQCLIP_H
#define VQCLIP_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes (negative); the CLI maps them to exit statuses 1, 2, 2, 2, 3, 3 and 130/143. */
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
const char *vqc_last_error(void);

/* "0.1.0". */
const char *vqc_version(void);

/* ---- context: the models, loaded once ------------------------------------------------- */

typedef struct vqc_context vqc_context;

/* How a CUDA device computes (the CPU always computes in float32, as `exact`). */
typedef enum {
    VQC_PRECISION_AUTO = 0, /* the device's default: fast on CUDA, exact on the CPU */
    VQC_PRECISION_EXACT,    /* float32 everywhere, TF32 off: the reference path */
    VQC_PRECISION_MIXED,    /* CLIP in float16, the VQGAN in float32 (TF32 off) */
    VQC_PRECISION_FAST,     /* CLIP in float16, the VQGAN decoder in bfloat16; z, the codebook
                             * search, the losses and the optimiser stay float32 */
} vqc_precision;

typedef struct vqc_context_params {
    const char *vqgan;        /* name or path; NULL: "vqgan_imagenet_f16_16384" */
    const char *vqgan_config; /* .yaml to cross-check; NULL: NAME.yaml beside the checkpoint */
    const char *clip;         /* name or path; NULL: "ViT-B/32" */
    const char *bpe;          /* NULL: "bpe_simple_vocab_16e6.txt.gz" */
    const char *device;       /* "cpu", "cuda", "cuda:N"; NULL: CUDA when available */
    int n_threads;            /* CPU threads; 0: all cores */
    vqc_precision precision;  /* VQC_PRECISION_AUTO */
    bool clip_fp32;           /* on CUDA, run CLIP in float32 whatever the precision */
    bool deterministic;       /* on CUDA, deterministic cuDNN algorithms (vqt_set_deterministic) */
    bool low_memory; /* recompute the VQGAN decoder's activations in the backward pass instead
                      * of keeping them: the same images for much less memory per step at large
                      * sizes, and about one more decoder forward pass per step */
} vqc_context_params;

vqc_context_params vqc_context_default_params(void);

/* Finds and loads the models (see models/README.md for names and folders). Returns 0 and
 * *out (free with vqc_free), or VQC_ERR_IO / VQC_ERR_FORMAT / VQC_ERR_MODEL / VQC_ERR_USAGE. */
int vqc_init(const vqc_context_params *p, vqc_context **out);

void vqc_free(vqc_context *ctx);

/* Whether vqc_init(p) uses the bundled demo models (models/demo: a small VQGAN and CLIP that
 * the project trained on 64x64 pictures of coloured shapes): p names no model (vqgan, clip and
 * bpe all NULL), neither default model is found in the models folders, and the demo set is
 * installed or in the source tree. vqc_init then logs a one-line notice and loads the demo set.
 * Callers use this to pick settings that suit it (the command line: 64x64, fewer steps). */
bool vqc_uses_demo_models(const vqc_context_params *p);

/* The VQGAN's downsampling factor (image sides are multiples of it), and whether the context
 * runs on a CUDA device. */
int vqc_downsample_factor(const vqc_context *ctx);
bool vqc_on_cuda(const vqc_context *ctx);

/* The resolved model paths (for metadata and messages). */
const char *vqc_vqgan_path(const vqc_context *ctx);
const char *vqc_clip_path(const vqc_context *ctx);

/* ---- one generation --------------------------------------------------------------------- */

/* Progress after each step: the step number (1-based), the total, and 1 + n_prompts loss
 * terms (the MSE term first). */
typedef void (*vqc_progress_callback)(int step, int total, const float *losses, int n_losses,
                                      void *user);
/* Polled after each step: returning true stops the run after writing the current image. */
typedef bool (*vqc_abort_callback)(void *user);
/* Called after each image written: its path, the step and the total loss. */
typedef void (*vqc_image_callback)(const char *path, int step, double loss, void *user);

typedef struct vqc_generate_params {
    const char *prompts;              /* "text[:w[:stop]]|...", phrases split by '^' */
    const char *const *image_prompts; /* each "path[:w[:stop]]|..." */
    int n_image_prompts;
    const char *const *noise_prompts; /* each "SEED[:W]" */
    int n_noise_prompts;
    int change_prompt_every; /* story mode: next '^' phrase every N steps; 0 off */

    int width, height; /* 0: 512x512 on CUDA, 256x256 on the CPU */
    int iterations;    /* 500 */
    int save_every;    /* 50; the final image is always written */
    uint64_t seed;

    const char *init_image;          /* NULL: random codebook entries */
    const char *init_noise;          /* "pixels" or "gradient" */
    double init_weight;              /* 0 */
    const char *init_weight_mode;    /* "seed" (default), "anchor", "stepped" */
    int mse_decay_every, mse_epochs; /* stepped mode: 50, 5 */

    double lr;              /* 0.1 */
    const char *optimiser;  /* "Adam" */
    const char *cut_method; /* "pooling" */
    int cutn;               /* 32 */
    double cut_pow;         /* 1 */
    double cut_noise;       /* 0.1 */
    const char *augments;   /* "Af,Pe,Ji,Er"; "none" */

    const char *output;      /* PNG path, written atomically */
    const char *save_frames; /* folder for frames; NULL: none */
    int frame_every;         /* 1 */
    int zoom_every;          /* zoom video: every N steps re-encode the zoomed image; 0 off */
    int zoom_start;          /* first step that zooms (0) */
    double zoom_scale;       /* 0.99: below 1 zooms in */
    int zoom_shift_x;        /* pixels per zoom, wrapping around */
    int zoom_shift_y;
    const char *save_state;  /* safetensors state written with each snapshot */
    const char *resume;      /* continue from a state file */
    const char *params_text; /* the PNG "parameters" text; NULL: generated */
    bool profile;            /* log where a step's time goes, stage by stage, at the end */

    vqc_progress_callback progress;
    vqc_abort_callback abort;
    vqc_image_callback on_image;
    void *user;
} vqc_generate_params;

vqc_generate_params vqc_generate_default_params(void);

typedef struct vqc_generate_result {
    int steps; /* steps done (including resumed ones) */
    int width, height;
    double loss;          /* total loss of the last step */
    double seconds;       /* time from the call to the end */
    double setup_seconds; /* time from the call to the first step */
    /* peak bytes allocated on the CUDA device during the call (0 on the CPU, or with a
     * libtorch build that does not expose its allocator's statistics) */
    long long peak_device_bytes;
    /* bytes allocated on the CUDA device when the call began (the loaded models; 0 on the
     * CPU), and the memory planner's estimate of what one step needs beyond them */
    long long base_device_bytes;
    long long planned_step_bytes;
} vqc_generate_result;

/* Runs one generation and writes params->output (and snapshots, frames, state). Returns 0,
 * VQC_ERR_INTERRUPTED when the abort callback stopped it (the current image was written), or
 * another negative code. `res` may be NULL. */
int vqc_generate(vqc_context *ctx, const vqc_generate_params *params, vqc_generate_result *res);

#ifdef __cplusplus
}
#endif

#endif

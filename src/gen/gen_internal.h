/* Internals shared by generate.c (the public API), gen_run.c (one run) and gen_state.c
 * (resumable state files). Not part of the public API. */
#ifndef VQC_GEN_INTERNAL_H
#define VQC_GEN_INTERNAL_H

#include "gen/clipspec.h"
#include "gen/loop.h"
#include "gen/memplan.h"
#include "gen/prompts.h"
#include "gen/writer.h"
#include "util/clock.h"
#include "vqclip.h"

struct vqc_context {
    vqc_context_params p; /* its strings point into names[] */
    char *names[5];       /* copies of vqgan, vqgan_config, clip, bpe, device */
    vqt_device dev;
    int n_threads; /* the CPU threads set by vqc_init */
    char vqgan_path[4096], yaml_path[4096], bpe_path[4096];
    int n_clips;                             /* the CLIP models listed in p.clip (1 without) */
    vqc_clip_entry clip_list[VQC_MAX_CLIPS]; /* their names and weights, parsed by vqc_init */
    char clip_paths[VQC_MAX_CLIPS][4096];    /* their files */
    char clip_spec[VQC_MAX_CLIPS * 4200];    /* the files with the weights (vqc_clip_spec_format):
                                              * the settings and the run info show this */
    bool demo;                               /* the demo set is loaded */
    vqc_vqgan *vq;                           /* NULL until vqc_load() */
    vqc_clip *clips[VQC_MAX_CLIPS];          /* n_clips models, loaded with the VQGAN */
    vqc_tokenizer *tok;
    bool low_memory;         /* the decoder is checkpointed (vqc_context_params.low_memory) */
    vqc_precision precision; /* resolved: never VQC_PRECISION_AUTO */
    int clip_bytes;          /* 2: CLIP computes in float16; 4: float32 */
    char kept[4096];         /* storage behind vqc_memory_advice.kept */
};

typedef struct gen_run {
    vqc_context *ctx;
    const vqc_generate_params *g;
    vqc_loop_params lp;
    vqc_memplan_step plan; /* what one step computes, for the memory estimate */
    vqc_loop *loop;
    vqc_prompt_list *story; /* text phrases ('^'), each a prompt list */
    int n_story, phrase;
    vqc_prompt_list images;
    vqc_image *image_data; /* images.n decoded image prompts */
    int n_fixed;           /* image + noise prompts, which come first in the loop */
    vqc_image init;
    vqc_image blend; /* g->init_blend_image, when init_blend > 0 */
    float *losses;   /* 1 + prompts of the current phrase */
    int n_losses;
    double total_loss;
    double t_start, t_first;
    char *params_text;  /* owned when generated */
    char *settings;     /* the canonical settings a state file is checked against */
    vqt_profile *prof;  /* g->profile: the steps' stage times */
    int kernel_rows;    /* with prof: rows of its operator tables (VQCLIP_PROFILE_KERNELS) */
    vqc_writer *writer; /* the pictures' writer, while the steps run (writer.h) */
    int64_t base_bytes; /* allocated on the device when the run began, models loaded */
    double *stop_hist;  /* stop_window: the last (up to) 2 * stop_window total losses, oldest
                         * first */
    int stop_n;         /* how many stop_hist holds */
    bool plateaued;     /* the run stopped because the loss stopped improving */
    bool refused;       /* the planner refused the size before the first step */
    bool oom;           /* the run failed to allocate */
    bool auto_low;      /* the run turned low memory on itself (auto_low_memory) */
} gen_run;

/* Loop parameters for a generation (size picked and rounded, names parsed). */
int vqc_gen_loop_params(const vqc_context *c, const vqc_generate_params *g, vqc_loop_params *lp);

/* The lowest major compute capability whose GPUs cuDNN gives bfloat16 convolutions (Ampere's,
 * 8.0): below it libtorch runs them through its generic kernels (im2col and a matrix product
 * per picture), so the fast precision's bfloat16 decoder is no default there. */
#define VQC_BF16_CONV_CC_MAJOR 8

/* The precision a context computes in: exact on the CPU whatever was asked; on CUDA what was
 * asked, and for AUTO fast, or mixed on a GPU of compute capability major below
 * VQC_BF16_CONV_CC_MAJOR (cc_major: vqt_cuda_capability's; negative when unknown, then fast). */
vqc_precision vqc_gen_resolve_precision(vqc_precision requested, bool cuda, int cc_major);

/* Applies the settings of precision `prec` (resolved: not AUTO) to freshly loaded models on
 * dev, as vqc_load() does, so that a test of a precision runs what the CLI runs: FAST's
 * bfloat16 decoder, CLIP's and the decoder's fused attention with FAST on CUDA unless
 * `deterministic`, and the developers' switches VQCLIP_CHANNELS_LAST=1 and VQCLIP_SDPA=0|1|all
 * (docs/gpu.md). CLIP's own type is chosen when it is loaded. Returns 0 or a negative code. */
int vqc_gen_apply_precision(vqc_precision prec, bool deterministic, vqt_device dev, vqc_vqgan *vq,
                            vqc_clip *const *clips, int n_clips);

/* The prompt texts are well formed (story, image and noise prompts; no file is read). */
int vqc_gen_check_prompts(const vqc_generate_params *g);

/* Checks the parameters and the outputs, reads the inputs, loads the models when not loaded
 * yet, builds the loop, embeds prompts, sets the initial z (or resumes). */
int vqc_gen_setup(gen_run *r);
/* Runs the steps with snapshots, frames, story switches and the abort callback. */
int vqc_gen_optimise(gen_run *r);
void vqc_gen_run_free(gen_run *r);

/* Builds r->settings, and r->params_text through the describe callback when the run has one
 * and no params_text. */
int vqc_gen_describe(gen_run *r);

/* Records the total loss of a step; true when the mean of the last stop_window losses is not
 * below the mean of the stop_window before it by stop_fraction of that mean's size (logged). */
bool vqc_gen_plateau(gen_run *r, int step, double loss);

/* Writes the run's resumable state to g->save_state (atomically). */
int vqc_gen_save_state(const gen_run *r);
/* Restores z, optimiser, MSE state, step and random generator from g->resume; the settings
 * must equal the run's. */
int vqc_gen_load_state(gen_run *r);

#endif

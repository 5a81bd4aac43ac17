/* Internals shared by generate.c (the public API), gen_run.c (one run) and gen_state.c
 * (resumable state files). Not part of the public API. */
#ifndef VQC_GEN_INTERNAL_H
#define VQC_GEN_INTERNAL_H

#include "gen/loop.h"
#include "gen/memplan.h"
#include "gen/prompts.h"
#include "vqclip.h"

/* Largest image side accepted before anything is allocated. */
#define VQC_MAX_SIDE 8192

struct vqc_context {
    vqt_device dev;
    char vqgan_path[4096], yaml_path[4096], clip_path[4096], bpe_path[4096];
    vqc_vqgan *vq;
    vqc_clip *clip;
    vqc_tokenizer *tok;
    bool low_memory;         /* the decoder is checkpointed (vqc_context_params.low_memory) */
    vqc_precision precision; /* resolved: never VQC_PRECISION_AUTO */
    int clip_bytes;          /* 2: CLIP computes in float16; 4: float32 */
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
    int n_fixed; /* image + noise prompts, which come first in the loop */
    vqc_image init;
    float *losses; /* 1 + prompts of the current phrase */
    int n_losses;
    double total_loss;
    double t_start, t_first;
    char *params_text; /* owned when generated */
    char *settings;    /* the canonical settings a state file is checked against */
    vqt_profile *prof; /* g->profile: the steps' stage times */
} gen_run;

/* Monotonic seconds. */
double vqc_now(void);

/* Loop parameters for a generation (size picked and rounded, names parsed). */
int vqc_gen_loop_params(const vqc_context *c, const vqc_generate_params *g, vqc_loop_params *lp);

/* Reads inputs, builds the loop, embeds prompts, sets the initial z (or resumes). */
int vqc_gen_setup(gen_run *r);
/* Runs the steps with snapshots, frames, story switches and the abort callback. */
int vqc_gen_optimise(gen_run *r);
void vqc_gen_run_free(gen_run *r);

/* Builds r->params_text (a command line that regenerates the picture) and r->settings. */
int vqc_gen_describe(gen_run *r);

/* Writes the run's resumable state to g->save_state (atomically). */
int vqc_gen_save_state(const gen_run *r);
/* Restores z, optimiser, MSE state, step and random generator from g->resume; the settings
 * must equal the run's. */
int vqc_gen_load_state(gen_run *r);

#endif

/* The loop's state, shared by loop.c (z, the step, the optimiser) and loop_prompts.c (the CLIP
 * models, the prompts and their losses). Not for use outside src/gen/loop*.c. */
#ifndef VQC_GEN_LOOP_INTERNAL_H
#define VQC_GEN_LOOP_INTERNAL_H

#include "gen/loop.h"

typedef struct {
    vqt_tensor *embed[VQC_MAX_CLIPS]; /* per CLIP model: [1, M, D], unit-normalised */
    double weight, stop;
} prompt_t;

/* One of the CLIP models that guide the picture. */
typedef struct {
    const vqc_clip *clip;
    double weight;      /* the factor on its prompt losses */
    int cut_size;       /* its cutouts' side: p.cut.cut_size when set, else its input resolution */
    vqt_graphed *graph; /* its image encoder as recorded CUDA graphs (made at the first step) */
    bool graph_noted;   /* the reason it runs without them has been logged */
} loop_clip;

struct vqc_loop {
    vqc_loop_params p; /* p.cut.cut_size: the first model's cutout side */
    const vqc_vqgan *vq;
    loop_clip clips[VQC_MAX_CLIPS]; /* clips[0] is the model vqc_loop_create was given */
    int nclips;
    int fixed_cut; /* the cut_size the caller gave (0: each model's resolution) */
    vqt_device dev;
    int toks_w, toks_h, embed_dim;
    vqt_tensor *z, *z_min, *z_max, *anchor, *last_grad;
    vqt_tensor *ema;  /* ema_decay > 0: the biased moving sum of z */
    double ema_decay; /* p.ema, or STEPPED_EMA in stepped mode; 0: no average */
    double ema_accum; /* ema_decay^(updates + 1), for the bias correction */
    vqc_optim *opt;
    prompt_t *prompts;
    int nprompts;
    int step;
    bool touched;      /* the current or last step has begun to change z and its states */
    double mse_weight; /* stepped mode: the current weight */
    int mse_rounds;
    float clip_share[VQC_MAX_CLIPS]; /* several models: each one's part of the last loss */
    bool have_share;                 /* clip_share holds a step's values */
    vqt_graphed *dec_graph; /* the decoder as recorded CUDA graphs (made at the first step) */
    bool dec_graph_noted;   /* the reason it runs without them has been logged */
    vqt_graphed *q_graph;   /* the codebook search likewise */
    bool q_graph_noted;
    vqt_profile *prof; /* borrowed; NULL: no profiling */
    int prof_steps;    /* steps profiled so far (the first ones are warm-up) */
};

/* The stages' indices in vqc_loop_profile_stages. */
enum {
    PROF_QUANTISE,
    PROF_DECODE,
    PROF_CUTOUTS,
    PROF_CLIP,
    PROF_LOSSES,
    PROF_CLIP_BWD,
    PROF_CUTOUTS_BWD,
    PROF_DECODE_BWD,
    PROF_READ,
    PROF_OPTIM
};

static inline void vqc_loop_mark(const vqc_loop *L, int stage)
{
    if (L->prof)
        vqt_profile_mark(L->prof, stage);
}

/* An image as a tensor [1, 3, H, W] resized to the output size: area when shrinking, bicubic
 * else (a new handle). */
vqt_tensor *vqc_loop_fit_image(const vqc_loop *L, const vqc_image *img);

/* Each model's unit-normalised embeddings [cutn, 1, D] of its own cutouts of img, into fn[k]
 * (scope-owned), in model order (model k's random draws follow model k-1's); *cuts0 gets the
 * first model's cutouts (for the shaping losses). Marks the profile's cutout and CLIP stages.
 * Returns 0, or -1 with the error recorded. */
int vqc_loop_encode_cutouts(vqc_loop *L, vqt_tensor *img, vqt_tensor **fn, vqt_tensor **cuts0);

/* z's nearest codebook entries with z's gradient (vqc_vqgan_nearest), from their recorded graphs
 * where they can replay: the step's first stage, which the host would otherwise issue operator by
 * operator while the device waits for it. Up to a latent of 1024 cells with 16384 entries
 * (512x512 at f16); larger ones run plainly. */
vqt_tensor *vqc_loop_quantise(vqc_loop *L, const vqt_tensor *z);

/* The decoder's image of z_q, from its recorded graphs where they can replay (vqt_graphed_call;
 * not in low-memory mode, whose checkpointed segments rerun in the backward pass). */
vqt_tensor *vqc_loop_decode(vqc_loop *L, const vqt_tensor *zq);

/* Frees the models', the codebook search's and the decoder's recorded graphs (when no step's
 * autograd graph is left). */
void vqc_loop_free_graphs(vqc_loop *L);

/* Prompt i's loss (scope-owned): the sum over the models of weight_k * loss_k, from the
 * embeddings of vqc_loop_encode_cutouts (one model of weight 1: its loss as it is). shares
 * (NULL: none) accumulates each model's weight_k * loss_k (a NULL entry starts it). */
vqt_tensor *vqc_loop_prompt_term(const vqc_loop *L, int i, vqt_tensor *const *fn,
                                 vqt_tensor **shares);

/* Reads the models' parts of the step's loss (vqc_loop_prompt_term's shares) into
 * L->clip_share when there are several models. Returns 0 or a code. */
int vqc_loop_read_shares(vqc_loop *L, vqt_tensor *const *shares);

#endif

/* Optimisers for the latent z of the generation loop, written over vqt ops.
 *
 *   vqc_optim_kind kind;
 *   if (vqc_optim_parse("adam", &kind) != 0) -> vqc_error_get()
 *   vqc_optim *opt;
 *   vqc_optim_create(kind, 0.1, z, &opt);          // z: the leaf tensor, borrowed
 *   for (...) {
 *       ... backward ...;  g = vqt_grad(z);  vqt_grad_clear(z);
 *       vqc_optim_step(opt, g);                     // updates z in place
 *       vqt_free(g);
 *   }
 *   vqc_optim_free(opt);
 *
 * Each kind uses the default hyper-parameters of the implementation the Python tools call
 * (nerdyrodent's VQGAN-CLIP `-opt` flag):
 *   Adam, AdamW, Adagrad, Adamax, RAdam, RMSprop: torch.optim (1.13, single-tensor code path).
 *   DiffGrad, AdamP: the torch-optimizer package (AdamP as in clovaai's reference).
 * The arithmetic follows the references' operation order, so results agree to float rounding.
 *
 * Resuming: the state (vqc_optim_state_*) plus the step counter (vqc_optim_steps) is all an
 * optimiser remembers. Restoring them into a fresh optimiser over a parameter with the same
 * values makes the following steps bit-identical to an uninterrupted run. */
#ifndef VQC_GEN_OPTIM_H
#define VQC_GEN_OPTIM_H

#include <stdint.h>

#include "torch/shim.h"
#include "vqclip.h"

/* vqc_optim_kind, vqc_optim_parse() and vqc_optim_name() are public (include/vqclip.h). */

typedef struct vqc_optim vqc_optim;

/* Creates an optimiser of `kind` with learning rate `lr` (finite, >= 0) for `param`, a floating
 * tensor of at most 8 dims that is borrowed and must outlive the optimiser. The state tensors
 * (zeros like param, same device and dtype) are allocated here and persisted (vqt_persist), so
 * the caller's scopes do not free them. Returns 0 and *out (free with vqc_optim_free), or a
 * negative VQC_ERR_* with a message. */
int vqc_optim_create(vqc_optim_kind kind, double lr, vqt_tensor *param, vqc_optim **out);

/* Performs one update of param in place (vqt_copy_; no autograd recording) from `grad`
 * (borrowed; same shape as param). Temporaries are freed before it returns, so it may be called
 * inside any scope. The whole update is computed before anything is written, so a failure
 * (bad gradient, device error) leaves param, the state and the step counter unchanged, short of
 * a failure of the final in-place copies themselves. Returns 0, or a negative VQC_ERR_* with a
 * message. */
int vqc_optim_step(vqc_optim *opt, const vqt_tensor *grad);

/* vqc_optim_step, applied only where `ok` (borrowed: a boolean scalar tensor on param's device,
 * or NULL for always) holds: param and the state take their new values when it is true and keep
 * their old ones, bit for bit, when it is false. The condition is read on the device, so the
 * caller need not wait for it: the loop queues the update before it reads the losses back, and
 * the device goes on from the backward pass to the update without a gap. The step counter
 * advances either way; a caller that finds `ok` false sets it back (vqc_optim_set_steps). */
int vqc_optim_step_if(vqc_optim *opt, const vqt_tensor *grad, const vqt_tensor *ok);

/* Frees the optimiser and its state; param is untouched. NULL is ignored. */
void vqc_optim_free(vqc_optim *opt);

vqc_optim_kind vqc_optim_get_kind(const vqc_optim *opt);
double vqc_optim_get_lr(const vqc_optim *opt);

/* Sets the learning rate of the following steps (finite, >= 0), as a scheduler changes a
 * torch optimiser's param_groups[0]["lr"]. Returns 0 or VQC_ERR_USAGE. */
int vqc_optim_set_lr(vqc_optim *opt, double lr);

/* The number of steps taken (torch's state["step"]). */
int64_t vqc_optim_steps(const vqc_optim *opt);

/* Sets the step counter (>= 0), as when resuming. Returns 0 or VQC_ERR_USAGE. */
int vqc_optim_set_steps(vqc_optim *opt, int64_t steps);

/* Number of state tensors of this kind (1 to 3). */
int vqc_optim_state_count(const vqc_optim *opt);

/* Name of state tensor i, as torch's state_dict names it: "exp_avg", "exp_avg_sq" (Adam,
 * AdamW, RAdam, AdamP, DiffGrad), "exp_inf" (Adamax), "sum" (Adagrad), "square_avg" (RMSprop),
 * "previous_grad" (DiffGrad). NULL when i is out of range. Static storage. */
const char *vqc_optim_state_name(const vqc_optim *opt, int i);

/* State tensor i, borrowed (owned by the optimiser, changes with each step); NULL when i is out
 * of range. The step counter is not among them: see vqc_optim_steps. */
const vqt_tensor *vqc_optim_state_tensor(const vqc_optim *opt, int i);

/* Copies `value` (borrowed; same shape as param, any device, converted to param's dtype) into
 * the state tensor called `name`. Returns 0, or VQC_ERR_USAGE for an unknown name or a shape
 * mismatch, or VQC_ERR_RUNTIME. */
int vqc_optim_state_set(vqc_optim *opt, const char *name, const vqt_tensor *value);

#endif

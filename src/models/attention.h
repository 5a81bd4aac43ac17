/* Scaled dot-product attention for the models: CLIP's towers and the VQGAN decoder's attention
 * blocks. Composed in the reference's order of operations, or fused into one vqt_sdpa, and the
 * check that decides, on the device at hand, whether the fused operator may be used. */
#ifndef VQC_MODELS_ATTENTION_H
#define VQC_MODELS_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torch/shim.h"

/* Multi-head scaled dot-product attention of q [N, Lq, D] over k, v [N, Lk, D] with `heads`
 * heads and an optional additive mask [Lq, Lk]. Returns [N, Lq, D]. `fused`: one vqt_sdpa
 * instead of the reference's scale, matmul, softmax and matmul. */
vqt_tensor *vqc_attention(const vqt_tensor *q, const vqt_tensor *k, const vqt_tensor *v, int heads,
                          const vqt_tensor *mask, bool fused);

/* Whether vqc_attention's fused path works here: runs it and the reference's path over fixed
 * inputs q [1, lq, width], k and v [1, lk, width] in dt on dev (with `mask`, [lq, lk] or NULL),
 * forward and backward, and compares the outputs and the gradients of q, k and v (within 1e-4 in
 * float32, 2e-2 in the reduced types, of 1 + the largest magnitude). On an unknown device or
 * libtorch a fused kernel that refuses the shapes or the type, or computes them wrongly, then
 * turns the fused path off instead of failing a run. Draws no random numbers. False with the
 * reason in why, to follow "the fused kernel ": "failed: <the operator's message>", "differs
 * from the reference in its <result> by <d> (bound <b>)" or "could not be checked: ...". */
bool vqc_attention_check(vqt_device dev, vqc_dtype dt, int heads, int64_t width, int64_t lq,
                         int64_t lk, const vqt_tensor *mask, char *why, size_t whylen);

#endif

/* The bridge from a failed vqt_* call (src/torch/shim.h) to the library's error: every place
 * that turns the shim's failure into a vqc error goes through it, so the message has one shape
 * and an allocation failure keeps its kind on the way up. */
#ifndef VQC_UTIL_TORCH_ERROR_H
#define VQC_UTIL_TORCH_ERROR_H

#include "torch/shim.h"

/* Records "<context>: <vqt_last_error()>" as the current error (one line; the context is
 * printf-style, e.g. "VQGAN %s", what) and returns VQC_ERR_NOMEM when the shim's last failure
 * on this thread was an allocation failure (vqt_last_error_oom), VQC_ERR_RUNTIME otherwise. Call
 * it right after the failing vqt_* call (or a chain of them), before another can fail. */
int vqc_torch_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last step of a function that builds a tensor inside its own vqt scope: keeps t
 * (vqt_keep), ends the scope (vqt_scope_end) and, when t is NULL, records vqc_torch_fail with
 * the printf-style context. Returns the kept handle (the caller owns it), or NULL. */
vqt_tensor *vqc_torch_scope_end(vqt_tensor *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

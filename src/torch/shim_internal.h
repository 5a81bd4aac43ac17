// Internals shared by the shim's C++ files (shim.cpp, shim_autograd.cpp); never included from C.
#ifndef VQT_SHIM_INTERNAL_H
#define VQT_SHIM_INTERNAL_H

#include <torch/torch.h>

#include <atomic>

#include "torch/shim.h"

struct vqt_tensor {
    at::Tensor t;
    int scope; // depth of the scope that owns it (0 = unscoped)
};

namespace vqt_detail
{

// This thread's last error message (what vqt_last_error returns).
extern thread_local char err_buf[1024];

// Records msg (its first line: libtorch appends stack traces after a newline) as the error.
void set_error(const char *msg);

// A new handle for t, owned by the innermost open scope of this thread (if any).
vqt_tensor *wrap(at::Tensor t);

// Handles made so far by wrap(), on every thread (vqt_handles_made).
extern std::atomic<long long> handles_made;

// Thrown for a NULL argument: the failure that produced the NULL already left its message, so
// a chain of ops propagates the first error instead of overwriting it.
struct null_handle {
};

// The tensor of a handle; throws null_handle for NULL and runtime_error for a freed handle.
const at::Tensor &T(const vqt_tensor *h);

} // namespace vqt_detail

// Runs the body, turning any exception into this thread's error message and `fail`.
#define GUARD(fail, ...)                                   \
    try {                                                  \
        __VA_ARGS__                                        \
    } catch (const vqt_detail::null_handle &) {            \
        if (!vqt_detail::err_buf[0])                       \
            vqt_detail::set_error("null tensor handle");   \
        return fail;                                       \
    } catch (const c10::Error &e) {                        \
        vqt_detail::set_error(e.what_without_backtrace()); \
        return fail;                                       \
    } catch (const std::exception &e) {                    \
        vqt_detail::set_error(e.what());                   \
        return fail;                                       \
    } catch (...) {                                        \
        vqt_detail::set_error("unknown libtorch failure"); \
        return fail;                                       \
    }

#define TENSOR_OP(expr) GUARD(nullptr, return vqt_detail::wrap(expr);)

#endif

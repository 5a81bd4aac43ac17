// Internals shared by the shim's C++ files (shim*.cpp); never included from C.
#ifndef VQT_SHIM_INTERNAL_H
#define VQT_SHIM_INTERNAL_H

#include <torch/torch.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "torch/shim.h"

struct vqt_tensor {
    at::Tensor t;
    int scope; // depth of the scope that owns it (0 = unscoped)
};

namespace vqt_detail
{

// This thread's last error message (what vqt_last_error returns).
extern thread_local char err_buf[1024];

// Whether this thread's last recorded failure was an allocation failure (vqt_last_error_oom).
extern thread_local bool err_oom;

// Records msg (its first line: libtorch appends stack traces after a newline) as the error, and
// whether it is an allocation failure.
void set_error(const char *msg, bool oom = false);

// Records the exception being handled as the error: called from a catch (...) block (GUARD).
// Allocation failures (c10::OutOfMemoryError from the CUDA allocator, std::bad_alloc from the
// CPU allocator of cpu_memory.h, oom_error) are recorded as such; a null_handle keeps the
// error that produced the NULL.
void record_exception() noexcept;

// An allocation failure carried on as an exception after it was recorded: a checkpointed
// segment's failure leaves the autograd thread as one (run_segment), so that the caller of
// vqt_backward learns the kind as well as the message.
struct oom_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A new handle for t, owned by the innermost open scope of this thread (if any).
vqt_tensor *wrap(at::Tensor t);

// fn(arg, x) run inside a scope of this thread, its result taken out of it; fn's failure is
// thrown as an exception carrying its message and kind (shim_autograd.cpp).
at::Tensor run_segment(vqt_segment_fn fn, void *arg, const at::Tensor &x);

// The operators whose CUDA backward passes add with atomics, and host_grad_op(op, x, aux, p):
// op on x (aux: grid_sample's grid; p: its integer arguments) through a backward pass on the
// CPU where vqt_set_host_grad asks for one (shim_hostgrad.cpp), else libtorch's op as it is.
//   GridSample    p = {padding mode, align_corners}
//   AdaptiveAvg, AdaptiveMax   p = {oh, ow}
//   Bilinear, Bicubic          p = {oh, ow, align_corners}
//   PadReflect, PadReplicate   p = the pads, as torch.nn.functional.pad takes them
enum class HostGradOp {
    GridSample,
    AdaptiveAvg,
    AdaptiveMax,
    Bilinear,
    Bicubic,
    PadReflect,
    PadReplicate
};
at::Tensor host_grad_op(HostGradOp op, const at::Tensor &x, const at::Tensor &aux,
                        std::vector<int64_t> p);

// What a CUDA graph cannot record, noted while a recorded function's pass runs on this thread
// (shim_graph.cpp): a copy from host memory (a replay would copy from that host buffer as it
// is then, long reused) or a wait for a value on the device (capture fails). The shim's
// entry points for host data call this (`what`: "copies from host memory (vqt_to)"); the
// recording fails with it and the function runs
// plainly, in the CPU's emulation too, where tests see it. Nothing outside such a pass.
void note_host_call(const char *what);

// libtorch's operator profiler (shim_kernels.cpp), one recording per process: kernels_start
// records every operator the host runs from now on and, on CUDA, every kernel, copy and set the
// device runs; kernels_stop ends it and returns the tables (the `top` largest rows each, per
// step over `steps` steps); kernels_abort ends it, if on, discarding what it recorded.
void kernels_start(vqt_device dev);
std::string kernels_stop(int steps, int top);
void kernels_abort() noexcept;

// Handles made so far by wrap(), on every thread (vqt_handles_made).
extern std::atomic<long long> handles_made;

// Thrown for a NULL argument: the failure that produced the NULL already left its message, so
// a chain of ops propagates the first error instead of overwriting it.
struct null_handle {
};

// The tensor of a handle; throws null_handle for NULL and runtime_error for a freed handle.
const at::Tensor &T(const vqt_tensor *h);

// Conversions between the C view's types and libtorch's (throw std::runtime_error when invalid).
inline at::ScalarType to_scalar(vqc_dtype dt)
{
    switch (dt) {
    case VQC_DTYPE_F32: return at::kFloat;
    case VQC_DTYPE_F16: return at::kHalf;
    case VQC_DTYPE_BF16: return at::kBFloat16;
    case VQC_DTYPE_F64: return at::kDouble;
    case VQC_DTYPE_I64: return at::kLong;
    case VQC_DTYPE_I32: return at::kInt;
    case VQC_DTYPE_I16: return at::kShort;
    case VQC_DTYPE_I8: return at::kChar;
    case VQC_DTYPE_U8: return at::kByte;
    case VQC_DTYPE_BOOL: return at::kBool;
    default: throw std::runtime_error("invalid element type");
    }
}

inline vqc_dtype from_scalar(at::ScalarType st)
{
    switch (st) {
    case at::kFloat: return VQC_DTYPE_F32;
    case at::kHalf: return VQC_DTYPE_F16;
    case at::kBFloat16: return VQC_DTYPE_BF16;
    case at::kDouble: return VQC_DTYPE_F64;
    case at::kLong: return VQC_DTYPE_I64;
    case at::kInt: return VQC_DTYPE_I32;
    case at::kShort: return VQC_DTYPE_I16;
    case at::kChar: return VQC_DTYPE_I8;
    case at::kByte: return VQC_DTYPE_U8;
    case at::kBool: return VQC_DTYPE_BOOL;
    default: return VQC_DTYPE_COUNT;
    }
}

inline at::Device to_device(vqt_device d)
{
    if (d.type == VQT_DEVICE_CUDA)
        return at::Device(at::kCUDA, (c10::DeviceIndex)d.index);
    return at::Device(at::kCPU);
}

inline at::IntArrayRef dims(int n, const int64_t *v)
{
    if (n < 0 || n > 16 || (n > 0 && !v))
        throw std::runtime_error("invalid dimension list");
    return at::IntArrayRef(v, (size_t)n);
}

inline c10::optional<at::Tensor> opt(const vqt_tensor *h)
{
    if (!h)
        return c10::nullopt;
    return T(h);
}

inline at::Tensor or_undefined(const vqt_tensor *h)
{
    return h ? T(h) : at::Tensor();
}

} // namespace vqt_detail

// Runs the body, turning any exception into this thread's error (record_exception) and `fail`.
#define GUARD(fail, ...)                \
    try {                               \
        __VA_ARGS__                     \
    } catch (...) {                     \
        vqt_detail::record_exception(); \
        return fail;                    \
    }

#define TENSOR_OP(expr) GUARD(nullptr, return vqt_detail::wrap(expr);)

#endif

// The C++ shim of vqclip: extern "C" vqt_* functions over libtorch (see shim.h): runtime, devices,
// handles and scopes, creation and access here; the operators in shim_ops.cpp, the autograd
// part is in shim_autograd.cpp, the internals both share in shim_internal.h.
// Every body runs inside GUARD, which turns any exception into a thread-local message and a
// sentinel return value, so nothing C++ ever reaches the C side.

#include <torch/torch.h>
#include <ATen/Parallel.h>
#if defined(VQT_WITH_CUDA_HEADERS) && __has_include(<c10/cuda/CUDACachingAllocator.h>) && \
    __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#define VQT_HAVE_CUDA_ALLOC 1
#endif

#include <cerrno>
#include <atomic>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "torch/shim_internal.h"
#include "torch/cpu_memory.h"
#include "torch/lean_ops.h"
#include "util/env.h"
extern "C" {
#include "util/error.h"
}

namespace vqt_detail
{

#ifdef VQT_WITH_CUDA_HEADERS
// CUDA runtimes before 12.2 (PyTorch's cu118 and cu121 builds) load every kernel of every module
// when they start unless CUDA_MODULE_LOADING is LAZY: libtorch_cuda's, cuDNN's and cuBLAS's, for
// seconds of start-up and device memory taken by kernels a run never launches. PyTorch's Python
// sets it before its first CUDA call; libtorch's C++ does not. Set at load, before anything can
// start CUDA, unless the environment chose.
[[maybe_unused]] static const int lazy_cuda_modules = setenv("CUDA_MODULE_LOADING", "LAZY", 0);
#endif

thread_local char err_buf[1024];
thread_local bool err_oom;

void set_error(const char *msg, bool oom)
{
    size_t n = 0;
    while (msg[n] && msg[n] != '\n' && n + 1 < sizeof err_buf)
        n++;
    memcpy(err_buf, msg, n);
    err_buf[n] = 0;
    err_oom = oom;
}

// printf-style set_error for the shim's own messages (never an allocation failure).
static void set_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_errorf(const char *fmt, ...)
{
    char msg[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(msg);
}

// The catch clauses of every GUARD, written once: rethrows the exception in flight and sorts it
// by type. The allocation failures come first, since c10::OutOfMemoryError is a c10::Error and
// std::bad_alloc a std::exception.
void record_exception() noexcept
{
    try {
        throw;
    } catch (const null_handle &) {
        if (!err_buf[0])
            set_error("null tensor handle");
    } catch (const c10::OutOfMemoryError &e) {
        set_error(e.what_without_backtrace(), true);
    } catch (const std::bad_alloc &e) {
        set_error(e.what(), true);
    } catch (const oom_error &e) {
        set_error(e.what(), true);
    } catch (const c10::Error &e) {
        set_error(e.what_without_backtrace());
    } catch (const std::exception &e) {
        set_error(e.what());
    } catch (...) {
        set_error("unknown libtorch failure");
    }
}

namespace
{
thread_local std::vector<std::vector<vqt_tensor *>> scopes;
}

std::atomic<long long> handles_made{0};

vqt_tensor *wrap(at::Tensor t)
{
    handles_made.fetch_add(1, std::memory_order_relaxed);
    auto *h = new vqt_tensor{std::move(t), (int)scopes.size()};
    if (!scopes.empty())
        scopes.back().push_back(h);
    return h;
}

const at::Tensor &T(const vqt_tensor *h)
{
    if (!h)
        throw null_handle();
    if (!h->t.defined())
        throw std::runtime_error("use of a freed tensor handle");
    return h->t;
}

} // namespace vqt_detail

using namespace vqt_detail;

namespace
{

// Host tensors of at most this many bytes reach a CUDA device through pinned memory, without
// waiting: a copy from pageable memory synchronises the stream, so each small constant or
// parameter (an augmentation's matrices, a resampling kernel) would hold the host until the
// device had finished everything queued, and a step is limited by the host. Larger ones (the
// weights at load) keep the plain copy, since the pinned blocks stay cached.
constexpr size_t async_upload_max = (size_t)1 << 20;

// x on d as st; a small host tensor without a gradient goes to CUDA, contiguous, without
// waiting (the caching host allocator keeps its pinned block until the copy has run).
at::Tensor upload(const at::Tensor &x, at::Device d, at::ScalarType st)
{
    if (!d.is_cpu() && x.device().is_cpu())
        note_host_call("copies from host memory (vqt_to)");
    if (d.is_cuda() && x.device().is_cpu() && !x.requires_grad() &&
        (size_t)x.numel() * c10::elementSize(st) <= async_upload_max)
        return x.to(st).contiguous().pin_memory().to(d, st, /*non_blocking=*/true);
    return x.to(d, st);
}

// libtorch's own warnings (TORCH_WARN: a fused kernel declined, an operator without a
// deterministic version under vqt_set_deterministic) as vqclip's log lines, "libtorch: ..."
// on one line, each distinct message once per process (an operator warns at every call).
// c10's default prints them in its own format, lines that break the log's "vqclip: " rule.
class LogWarnings : public c10::WarningHandler
{
  public:
#if TORCH_VERSION_MAJOR >= 2
    void process(const c10::Warning &w) override
    {
        note(w.msg());
    }
#else
    void process(const c10::SourceLocation &, const std::string &msg, const bool) override
    {
        note(msg);
    }
#endif

  private:
    std::mutex lock_;
    std::set<std::string> said_;
    void note(const std::string &msg)
    {
        {
            std::lock_guard<std::mutex> g(lock_);
            if (said_.size() >= 64 || !said_.insert(msg).second)
                return;
        }
        vqc_log(VQC_LOG_WARN, "libtorch: %s", msg.c_str());
    }
};

LogWarnings log_warnings;

// libtorch 2.1 and later also fill new tensors' memory (the at::empty operator) with NaN while
// deterministic algorithms are on, to expose reads of memory never written: one more kernel
// for each such tensor, in a step that is bound by launching kernels. Turned off; 1.13 has no
// such fill and no switch.
template <class C>
auto keep_new_memory_unfilled(C &c, int)
    -> decltype(c.setDeterministicFillUninitializedMemory(false))
{
    c.setDeterministicFillUninitializedMemory(false);
}
template <class C> void keep_new_memory_unfilled(C &, long) {}

// The handler is per thread in c10: installed on each thread that enters vqt_init (the ones
// that load models and run steps; the autograd engine hands its workers' warnings back to the
// thread that ran the backward pass).
void install_warning_handler()
{
#if TORCH_VERSION_MAJOR >= 2
    c10::WarningUtils::set_warning_handler(&log_warnings);
#else
    c10::Warning::set_warning_handler(&log_warnings);
#endif
}

} // namespace

extern "C" {

/* ---- runtime ---- */

int vqt_init(int nthreads)
{
    GUARD(-1, {
        if (nthreads <= 0)
            nthreads = (int)std::thread::hardware_concurrency();
        if (nthreads <= 0)
            nthreads = 1;
        if (at::get_num_threads() != nthreads)
            at::set_num_threads(nthreads);
        static std::once_flag malloc_tuned;
        std::call_once(malloc_tuned, vqt_memory::tune_malloc);
        install_warning_handler();
        // Developer switches for comparisons (docs/gpu.md); a value not listed is warned about.
        static std::once_flag switches_read;
        std::call_once(switches_read, [] {
            static const char *const gn[] = {"native", "saved", "reduce", "composed", nullptr};
            static const vqt_gn_impl gn_impl[] = {VQT_GN_NATIVE, VQT_GN_SAVED, VQT_GN_REDUCE,
                                                  VQT_GN_COMPOSED};
            int i = vqc_env_choice("VQCLIP_GROUPNORM", gn);
            if (i >= 0)
                vqt_set_group_norm_impl(gn_impl[i]);
            static const char *const graphs[] = {"0", "1", "emulate", nullptr};
            static const vqt_graphs_mode graphs_mode[] = {VQT_GRAPHS_OFF, VQT_GRAPHS_AUTO,
                                                          VQT_GRAPHS_EMULATE};
            if ((i = vqc_env_choice("VQCLIP_CUDA_GRAPH", graphs)) >= 0)
                vqt_set_graphs_mode(graphs_mode[i]);
        });
        return at::get_num_threads();
    })
}

const char *vqt_last_error(void)
{
    return err_buf;
}

bool vqt_last_error_oom(void)
{
    return err_oom;
}

const char *vqt_version(void)
{
#ifdef TORCH_VERSION
    return TORCH_VERSION;
#else
    return "unknown";
#endif
}

int vqt_cuda_device_count(void)
{
    GUARD(0, return torch::cuda::is_available() ? (int)torch::cuda::device_count() : 0;)
}

int vqt_device_parse(const char *text, vqt_device *out)
{
    if (!text || strcmp(text, "cpu") == 0) {
        *out = vqt_device{VQT_DEVICE_CPU, 0};
        return 0;
    }
    long index = 0;
    if (strncmp(text, "cuda", 4) != 0 || (text[4] != 0 && text[4] != ':')) {
        set_errorf("unknown device '%s' (use cpu, cuda or cuda:N)", text);
        return -1;
    }
    if (text[4] == ':') {
        char *end = NULL;
        errno = 0;
        index = strtol(text + 5, &end, 10);
        if (end == text + 5 || *end || errno || index < 0 || index > 1023 || text[5] == '-' ||
            text[5] == '+' || text[5] == ' ') {
            set_errorf("unknown device '%s' (use cpu, cuda or cuda:N with N a device number)",
                       text);
            return -1;
        }
    }
    int n = vqt_cuda_device_count();
    if (n == 0) {
        set_errorf("device '%s': no CUDA device is available%s", text,
                   torch::cuda::is_available()
                       ? ""
                       : " (this libtorch has no CUDA support or no GPU was found)");
        return -2;
    }
    if (index >= n) {
        set_errorf("device '%s': only %d CUDA device(s) present (cuda:0%s)", text, n,
                   n > 1 ? " to cuda:N-1" : "");
        return -2;
    }
    *out = vqt_device{VQT_DEVICE_CUDA, (int)index};
    return 0;
}

void vqt_device_str(vqt_device dev, char *buf, size_t len)
{
    if (dev.type == VQT_DEVICE_CUDA)
        snprintf(buf, len, "cuda:%d", dev.index);
    else
        snprintf(buf, len, "cpu");
}

void vqt_manual_seed(uint64_t seed)
{
    try {
        torch::manual_seed(seed);
    } catch (...) {
    }
}

vqt_tensor *vqt_rng_get_state(vqt_device dev)
{
    TENSOR_OP(at::globalContext().defaultGenerator(to_device(dev)).get_state())
}

int vqt_rng_set_state(vqt_device dev, const vqt_tensor *state)
{
    GUARD(-1, {
        at::Generator gen = at::globalContext().defaultGenerator(to_device(dev));
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(T(state).to(at::kCPU, at::kByte).contiguous());
        return 0;
    })
}

bool vqt_set_grad_enabled(bool enabled)
{
    bool prev = at::GradMode::is_enabled();
    at::GradMode::set_enabled(enabled);
    return prev;
}

void vqt_synchronize(vqt_device dev)
{
    try {
        if (dev.type == VQT_DEVICE_CUDA)
            torch::cuda::synchronize(dev.index);
    } catch (...) {
    }
}

int64_t vqt_peak_bytes(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA)
        GUARD(-1, return (int64_t)c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index)
                      .allocated_bytes[0]
                      .peak;)
#endif
#ifdef __GLIBC__
    if (dev.type == VQT_DEVICE_CPU)
        return vqt_memory::heap_count().peak.load(std::memory_order_relaxed);
#endif
    return 0;
}

int64_t vqt_allocated_bytes(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA)
        GUARD(-1, return (int64_t)c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index)
                      .allocated_bytes[0]
                      .current;)
#endif
#ifdef __GLIBC__
    if (dev.type == VQT_DEVICE_CPU)
        return vqt_memory::heap_count().current.load(std::memory_order_relaxed);
#endif
    return 0;
}

void vqt_reset_peak(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA) {
        try {
            c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index);
        } catch (...) {
        }
    }
#endif
#ifdef __GLIBC__
    if (dev.type == VQT_DEVICE_CPU) {
        vqt_memory::HeapCount &c = vqt_memory::heap_count();
        c.peak.store(c.current.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
#endif
}

#if defined(VQT_HAVE_CUDA_ALLOC) && defined(VQT_WITH_CUDART)
// The driver's free and total memory of a CUDA device; false when unknown.
static bool cuda_mem_info(vqt_device dev, size_t *free_b, size_t *total_b)
{
    int prev = -1;
    if (cudaGetDevice(&prev) != cudaSuccess || cudaSetDevice(dev.index) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    cudaError_t e = cudaMemGetInfo(free_b, total_b);
    cudaSetDevice(prev);
    if (e != cudaSuccess)
        (void)cudaGetLastError();
    return e == cudaSuccess;
}
#endif

int vqt_set_memory_limit(vqt_device dev, int64_t bytes)
{
    if (bytes < 0) {
        set_error("vqt_set_memory_limit: a negative limit");
        return -1;
    }
#ifdef __GLIBC__
    if (dev.type == VQT_DEVICE_CPU) {
        vqt_memory::heap_count().limit.store(bytes, std::memory_order_relaxed);
        return 0;
    }
#endif
#if defined(VQT_HAVE_CUDA_ALLOC) && defined(VQT_WITH_CUDART)
    if (dev.type == VQT_DEVICE_CUDA) {
        // A process that never asked for a limit leaves the allocator as libtorch set it up.
        static std::atomic<bool> ever_limited{false};
        if (bytes == 0 && !ever_limited.load())
            return 0;
        ever_limited.store(true);
        size_t free_b = 0, total_b = 0;
        if (!cuda_mem_info(dev, &free_b, &total_b) || total_b == 0) {
            set_errorf("cannot read the memory of cuda:%d", dev.index);
            return -1;
        }
        double share = bytes == 0 || (uint64_t)bytes >= total_b ? 1.0 : (double)bytes / total_b;
        GUARD(-1, {
            c10::cuda::CUDACachingAllocator::setMemoryFraction(share, (c10::DeviceIndex)dev.index);
            return 0;
        })
    }
#endif
    set_error(dev.type == VQT_DEVICE_CPU
                  ? "this build cannot count the CPU's memory (it needs glibc)"
                  : "this build cannot limit a CUDA device's memory (built without the CUDA "
                    "runtime's headers)");
    return -1;
}

void vqt_empty_cache(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA) {
        try {
            c10::cuda::CUDACachingAllocator::emptyCache();
        } catch (...) {
        }
    }
#endif
    (void)dev;
}

int64_t vqt_cuda_free_bytes(vqt_device dev)
{
#if defined(VQT_HAVE_CUDA_ALLOC) && defined(VQT_WITH_CUDART)
    if (dev.type == VQT_DEVICE_CUDA) {
        try {
            size_t free_b = 0, total_b = 0;
            if (!cuda_mem_info(dev, &free_b, &total_b))
                return -1;
            const auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index);
            int64_t cached = st.reserved_bytes[0].current - st.allocated_bytes[0].current;
            return (int64_t)free_b + (cached > 0 ? cached : 0);
        } catch (...) {
            return -1;
        }
    }
#endif
    (void)dev;
    return -1;
}

int vqt_cuda_capability(vqt_device dev, int *major, int *minor)
{
#if defined(VQT_HAVE_CUDA_ALLOC) && defined(VQT_WITH_CUDART)
    int ma = 0, mi = 0;
    if (dev.type == VQT_DEVICE_CUDA &&
        cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, dev.index) == cudaSuccess &&
        cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, dev.index) == cudaSuccess) {
        *major = ma;
        *minor = mi;
        return 0;
    }
#endif
    (void)dev, (void)major, (void)minor;
    return -1;
}

int vqt_cuda_name(vqt_device dev, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = 0;
#if defined(VQT_HAVE_CUDA_ALLOC) && defined(VQT_WITH_CUDART)
    cudaDeviceProp prop;
    if (dev.type == VQT_DEVICE_CUDA && len > 0 &&
        cudaGetDeviceProperties(&prop, dev.index) == cudaSuccess) {
        std::snprintf(buf, len, "%s", prop.name);
        return 0;
    }
    (void)cudaGetLastError(); // an index past the last device: not a later launch's error
#endif
    (void)dev;
    return -1;
}

// Whether a CUDA context has set these switches, and so computed since or is about to, with
// cuBLAS started by then: vqt_set_deterministic is called by each one before it computes.
static std::atomic<bool> cuda_settings_applied{false};

void vqt_set_deterministic(bool enabled)
{
    try {
        // cuBLAS reads CUBLAS_WORKSPACE_CONFIG when libtorch first starts it. Set here for the
        // first context, it holds for the whole process; a deterministic context after one that
        // computed without it comes too late for cuBLAS, and is told so once, rather than
        // giving pictures that differ from run to run without a word.
        if (enabled && !getenv("CUBLAS_WORKSPACE_CONFIG")) {
            if (cuda_settings_applied.load()) {
                static std::once_flag told;
                std::call_once(told, [] {
                    vqc_log(VQC_LOG_WARN,
                            "deterministic after a CUDA computation without it in this process: "
                            "cuBLAS started without CUBLAS_WORKSPACE_CONFIG, so its matrix "
                            "products may differ from run to run (set "
                            "CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment)");
                });
            }
            setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
        }
        cuda_settings_applied.store(true);
        at::Context &c = at::globalContext();
        c.setDeterministicCuDNN(enabled);
        c.setBenchmarkCuDNN(false);
        // Warnings only: the operators it would refuse have their gradients from the host
        // instead (below), and one that does not is named in a warning rather than failing.
        c.setDeterministicAlgorithms(enabled, /*warn_only=*/true);
        keep_new_memory_unfilled(c, 0);
        vqt_set_host_grad(enabled ? VQT_HOSTGRAD_CUDA : VQT_HOSTGRAD_OFF);
    } catch (...) {
    }
}

void vqt_set_tf32(bool enabled)
{
    try {
        at::globalContext().setAllowTF32CuBLAS(enabled);
        at::globalContext().setAllowTF32CuDNN(enabled);
    } catch (...) {
    }
}

/* ---- handles and scopes ---- */

// Removes h from the vector of the scope that owns it (searching from the back: the handles
// moved are almost always among the newest).
static void unlink_from_scope(vqt_tensor *h)
{
    if (h->scope <= 0 || h->scope > (int)scopes.size())
        return;
    std::vector<vqt_tensor *> &v = scopes[(size_t)h->scope - 1];
    for (size_t i = v.size(); i-- > 0;) {
        if (v[i] == h) {
            v.erase(v.begin() + (std::ptrdiff_t)i);
            return;
        }
    }
}

void vqt_free(vqt_tensor *t)
{
    if (!t)
        return;
    if (t->scope > 0 && t->scope <= (int)scopes.size()) {
        t->t = at::Tensor(); // the owning scope deletes the handle itself
        return;
    }
    delete t;
}

void vqt_scope_begin(void)
{
    scopes.emplace_back();
}

void vqt_scope_end(void)
{
    if (scopes.empty())
        return;
    std::vector<vqt_tensor *> owned = std::move(scopes.back());
    scopes.pop_back();
    for (vqt_tensor *h : owned)
        delete h;
}

vqt_tensor *vqt_keep(vqt_tensor *t)
{
    if (!t || t->scope == 0 || t->scope != (int)scopes.size())
        return t;
    unlink_from_scope(t);
    t->scope--;
    if (t->scope > 0)
        scopes[(size_t)t->scope - 1].push_back(t);
    return t;
}

vqt_tensor *vqt_persist(vqt_tensor *t)
{
    if (!t)
        return t;
    unlink_from_scope(t);
    t->scope = 0;
    return t;
}

/* ---- creation and access ---- */

vqt_tensor *vqt_from_data(const void *data, vqc_dtype src, int ndim, const int64_t *shape,
                          const int64_t *strides, vqt_device dev, vqc_dtype dst)
{
    TENSOR_OP(([&] {
        note_host_call("makes a tensor of host memory (vqt_from_data)");
        auto opts = at::TensorOptions().dtype(to_scalar(src));
        at::Tensor view =
            strides ? at::from_blob((void *)data, dims(ndim, shape), dims(ndim, strides), opts)
                    : at::from_blob((void *)data, dims(ndim, shape), opts);
        if (dev.type == VQT_DEVICE_CUDA) // pin_memory copies: nothing keeps `data`
            return upload(view, to_device(dev), to_scalar(dst)).contiguous();
        at::Tensor out = at::empty(
            dims(ndim, shape), at::TensorOptions().dtype(to_scalar(dst)).device(to_device(dev)));
        out.copy_(view);
        return out;
    }()))
}

vqt_tensor *vqt_from_blob(const void *data, vqc_dtype dt, int ndim, const int64_t *shape,
                          const int64_t *strides, vqt_release_fn release, void *ctx)
{
    size_t esize = (int)dt >= 0 && dt < VQC_DTYPE_COUNT ? c10::elementSize(to_scalar(dt)) : 0;
    if (esize == 0 || ndim < 0 || ndim > 16 || (ndim > 0 && !shape) || !data ||
        (uintptr_t)data % esize != 0) {
        set_error("from_blob: bad type or shape, or data missing or misaligned");
        if (release) // nothing owns the memory yet
            release(ctx);
        return nullptr;
    }
    note_host_call("views host memory (vqt_from_blob)");
    TENSOR_OP(vqt_memory::view_blob(data, to_scalar(dt), dims(ndim, shape),
                                    strides ? dims(ndim, strides) : at::IntArrayRef(), release,
                                    ctx))
}

vqt_tensor *vqt_full(int ndim, const int64_t *shape, double value, vqc_dtype dt, vqt_device dev)
{
    TENSOR_OP(at::full(dims(ndim, shape), value,
                       at::TensorOptions().dtype(to_scalar(dt)).device(to_device(dev))))
}

vqt_tensor *vqt_rand(int ndim, const int64_t *shape, vqt_device dev)
{
    TENSOR_OP(at::rand(dims(ndim, shape), at::TensorOptions().device(to_device(dev))))
}

vqt_tensor *vqt_randn(int ndim, const int64_t *shape, vqt_device dev)
{
    TENSOR_OP(at::randn(dims(ndim, shape), at::TensorOptions().device(to_device(dev))))
}

vqt_tensor *vqt_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, vqt_device dev)
{
    TENSOR_OP(at::randint(low, high, dims(ndim, shape),
                          at::TensorOptions().dtype(at::kLong).device(to_device(dev))))
}

vqt_tensor *vqt_arange(int64_t n, vqc_dtype dt, vqt_device dev)
{
    TENSOR_OP(at::arange(n, at::TensorOptions().dtype(to_scalar(dt)).device(to_device(dev))))
}

int64_t vqt_to_host(const vqt_tensor *t, void *dst, vqc_dtype dt, int64_t max_elems)
{
    GUARD(-1, {
        note_host_call("copies to host memory (vqt_to_host)");
        at::Tensor h = T(t).detach().to(at::kCPU, to_scalar(dt)).contiguous();
        if (h.numel() > max_elems)
            throw std::runtime_error("destination buffer too small for tensor");
        memcpy(dst, h.data_ptr(), (size_t)h.numel() * h.element_size());
        return (int64_t)h.numel();
    })
}

double vqt_item(const vqt_tensor *t)
{
    GUARD(NAN, return T(t).item<double>();) // aten::item: PassWatch sees it
}

int vqt_ndim(const vqt_tensor *t)
{
    GUARD(-1, return (int)T(t).dim();)
}

int64_t vqt_size(const vqt_tensor *t, int dim)
{
    GUARD(-1, return T(t).size(dim);)
}

int64_t vqt_numel(const vqt_tensor *t)
{
    GUARD(-1, return T(t).numel();)
}

int vqt_shape(const vqt_tensor *t, int64_t *shape)
{
    GUARD(-1, {
        const at::Tensor &x = T(t);
        int n = (int)x.dim();
        for (int i = 0; i < n && i < 8; i++)
            shape[i] = x.size(i);
        return n;
    })
}

vqc_dtype vqt_dtype(const vqt_tensor *t)
{
    GUARD(VQC_DTYPE_COUNT, return from_scalar(T(t).scalar_type());)
}

vqt_device vqt_device_of(const vqt_tensor *t)
{
    vqt_device d{VQT_DEVICE_CPU, 0};
    GUARD(d, {
        const at::Tensor &x = T(t);
        if (x.is_cuda())
            d = vqt_device{VQT_DEVICE_CUDA, (int)x.device().index()};
        return d;
    })
}

vqt_tensor *vqt_to(const vqt_tensor *t, vqt_device dev, vqc_dtype dt)
{
    TENSOR_OP(upload(T(t), to_device(dev), to_scalar(dt)))
}

vqt_tensor *vqt_clone(const vqt_tensor *t)
{
    TENSOR_OP(T(t).clone())
}
vqt_tensor *vqt_detach(const vqt_tensor *t)
{
    TENSOR_OP(T(t).detach())
}
vqt_tensor *vqt_ref(const vqt_tensor *t)
{
    TENSOR_OP(T(t))
}

} // extern "C"

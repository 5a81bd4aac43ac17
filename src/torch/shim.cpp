// The C++ shim of vqclip: extern "C" vqt_* functions over libtorch (see shim.h); the autograd
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
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "torch/shim_internal.h"
#include "torch/cpu_memory.h"
#include "torch/lean_ops.h"

namespace vqt_detail
{

thread_local char err_buf[1024];

void set_error(const char *msg)
{
    size_t n = 0;
    while (msg[n] && msg[n] != '\n' && n + 1 < sizeof err_buf)
        n++;
    memcpy(err_buf, msg, n);
    err_buf[n] = 0;
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

at::ScalarType to_scalar(vqc_dtype dt)
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

vqc_dtype from_scalar(at::ScalarType st)
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

at::Device to_device(vqt_device d)
{
    if (d.type == VQT_DEVICE_CUDA)
        return at::Device(at::kCUDA, (c10::DeviceIndex)d.index);
    return at::Device(at::kCPU);
}

at::IntArrayRef dims(int n, const int64_t *v)
{
    if (n < 0 || n > 16 || (n > 0 && !v))
        throw std::runtime_error("invalid dimension list");
    return at::IntArrayRef(v, (size_t)n);
}

c10::optional<at::Tensor> opt(const vqt_tensor *h)
{
    if (!h)
        return c10::nullopt;
    return T(h);
}

at::Tensor or_undefined(const vqt_tensor *h)
{
    return h ? T(h) : at::Tensor();
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
        return at::get_num_threads();
    })
}

const char *vqt_last_error(void)
{
    return err_buf;
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
        snprintf(err_buf, sizeof err_buf, "unknown device '%s' (use cpu, cuda or cuda:N)", text);
        return -1;
    }
    if (text[4] == ':') {
        char *end = NULL;
        errno = 0;
        index = strtol(text + 5, &end, 10);
        if (end == text + 5 || *end || errno || index < 0 || index > 1023 || text[5] == '-' ||
            text[5] == '+' || text[5] == ' ') {
            snprintf(err_buf, sizeof err_buf,
                     "unknown device '%s' (use cpu, cuda or cuda:N with N a device number)", text);
            return -1;
        }
    }
    int n = vqt_cuda_device_count();
    if (n == 0) {
        snprintf(err_buf, sizeof err_buf, "device '%s': no CUDA device is available%s", text,
                 torch::cuda::is_available()
                     ? ""
                     : " (this libtorch has no CUDA support or no GPU was found)");
        return -2;
    }
    if (index >= n) {
        snprintf(err_buf, sizeof err_buf, "device '%s': only %d CUDA device(s) present (cuda:0%s)",
                 text, n, n > 1 ? " to cuda:N-1" : "");
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

int64_t vqt_cuda_peak_bytes(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA)
        GUARD(-1, return (int64_t)c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index)
                      .allocated_bytes[0]
                      .peak;)
#endif
    (void)dev;
    return 0;
}

int64_t vqt_cuda_allocated_bytes(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA)
        GUARD(-1, return (int64_t)c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index)
                      .allocated_bytes[0]
                      .current;)
#endif
    (void)dev;
    return 0;
}

void vqt_cuda_reset_peak(vqt_device dev)
{
#ifdef VQT_HAVE_CUDA_ALLOC
    if (dev.type == VQT_DEVICE_CUDA) {
        try {
            c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index);
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
            int prev = -1;
            if (cudaGetDevice(&prev) != cudaSuccess || cudaSetDevice(dev.index) != cudaSuccess)
                return -1;
            cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
            cudaSetDevice(prev);
            if (e != cudaSuccess)
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

void vqt_set_deterministic(bool enabled)
{
    try {
        if (enabled && !getenv("CUBLAS_WORKSPACE_CONFIG"))
            setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0); // read when cuBLAS starts
        at::globalContext().setDeterministicCuDNN(enabled);
        at::globalContext().setBenchmarkCuDNN(false);
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
                          const int64_t *strides, vqt_device dev, vqc_dtype dst){TENSOR_OP(([&] {
    auto opts = at::TensorOptions().dtype(to_scalar(src));
    at::Tensor view =
        strides ? at::from_blob((void *)data, dims(ndim, shape), dims(ndim, strides), opts)
                : at::from_blob((void *)data, dims(ndim, shape), opts);
    at::Tensor out = at::empty(dims(ndim, shape),
                               at::TensorOptions().dtype(to_scalar(dst)).device(to_device(dev)));
    out.copy_(view);
    return out;
}()))}

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
    TENSOR_OP(vqt_memory::view_blob(data, to_scalar(dt), dims(ndim, shape),
                                    strides ? dims(ndim, strides) : at::IntArrayRef(), release,
                                    ctx))
}

vqt_tensor *vqt_full(int ndim, const int64_t *shape, double value, vqc_dtype dt, vqt_device dev){
    TENSOR_OP(at::full(dims(ndim, shape), value,
                       at::TensorOptions().dtype(to_scalar(dt)).device(to_device(dev))))}

vqt_tensor *vqt_rand(int ndim, const int64_t *shape, vqt_device dev){
    TENSOR_OP(at::rand(dims(ndim, shape), at::TensorOptions().device(to_device(dev))))}

vqt_tensor *vqt_randn(int ndim, const int64_t *shape, vqt_device dev){
    TENSOR_OP(at::randn(dims(ndim, shape), at::TensorOptions().device(to_device(dev))))}

vqt_tensor *vqt_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, vqt_device dev){
    TENSOR_OP(at::randint(low, high, dims(ndim, shape),
                          at::TensorOptions().dtype(at::kLong).device(to_device(dev))))}

vqt_tensor *vqt_arange(int64_t n, vqc_dtype dt, vqt_device dev){
    TENSOR_OP(at::arange(n, at::TensorOptions().dtype(to_scalar(dt)).device(to_device(dev))))}

int64_t vqt_to_host(const vqt_tensor *t, void *dst, vqc_dtype dt, int64_t max_elems)
{
    GUARD(-1, {
        at::Tensor h = T(t).detach().to(at::kCPU, to_scalar(dt)).contiguous();
        if (h.numel() > max_elems)
            throw std::runtime_error("destination buffer too small for tensor");
        memcpy(dst, h.data_ptr(), (size_t)h.numel() * h.element_size());
        return (int64_t)h.numel();
    })
}

double vqt_item(const vqt_tensor *t)
{
    GUARD(NAN, return T(t).item<double>();)
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

int vqt_shape(const vqt_tensor *t, int64_t *shape){GUARD(-1,
                                                         {
                                                             const at::Tensor &x = T(t);
                                                             int n = (int)x.dim();
                                                             for (int i = 0; i < n && i < 8; i++)
                                                                 shape[i] = x.size(i);
                                                             return n;
                                                         })}

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

vqt_tensor *vqt_to(const vqt_tensor *t, vqt_device dev,
                   vqc_dtype dt){TENSOR_OP(T(t).to(to_device(dev), to_scalar(dt)))}

vqt_tensor *vqt_clone(const vqt_tensor *t){
    TENSOR_OP(T(t).clone())} vqt_tensor *vqt_detach(const vqt_tensor *t){
    TENSOR_OP(T(t).detach())} vqt_tensor *vqt_ref(const vqt_tensor *t){TENSOR_OP(T(t))}

/* ---- shape ---- */

vqt_tensor *vqt_reshape(const vqt_tensor *t, int ndim,
                        const int64_t *shape){TENSOR_OP(T(t).reshape(dims(ndim, shape)))}

vqt_tensor *vqt_permute(const vqt_tensor *t, int ndim,
                        const int64_t *d){TENSOR_OP(T(t).permute(dims(ndim, d)))}

vqt_tensor *vqt_transpose(const vqt_tensor *t, int d0, int d1){TENSOR_OP(T(t).transpose(d0, d1))}

vqt_tensor *vqt_narrow(const vqt_tensor *t, int dim, int64_t start,
                       int64_t len){TENSOR_OP(T(t).narrow(dim, start, len))}

vqt_tensor *vqt_select(const vqt_tensor *t, int dim,
                       int64_t index){TENSOR_OP(T(t).select(dim, index))}

vqt_tensor *vqt_index_select(const vqt_tensor *t, int dim, const vqt_tensor *index)
{
    TENSOR_OP(T(t).index_select(dim, T(index)))
}

static std::vector<at::Tensor> tensor_list(vqt_tensor *const *ts, int n)
{
    if (n <= 0 || !ts)
        throw std::runtime_error("empty tensor list");
    std::vector<at::Tensor> v;
    v.reserve((size_t)n);
    for (int i = 0; i < n; i++)
        v.push_back(T(ts[i]));
    return v;
}

vqt_tensor *vqt_cat(vqt_tensor *const *ts, int n, int dim){
    TENSOR_OP(at::cat(tensor_list(ts, n), dim))} vqt_tensor *vqt_stack(vqt_tensor *const *ts, int n,
                                                                       int dim){
    TENSOR_OP(at::stack(tensor_list(ts, n), dim))} vqt_tensor *vqt_unsqueeze(const vqt_tensor *t,
                                                                             int dim){
    TENSOR_OP(T(t).unsqueeze(dim))} vqt_tensor *vqt_squeeze(const vqt_tensor *t,
                                                            int dim){TENSOR_OP(T(t).squeeze(dim))}

vqt_tensor *vqt_expand(const vqt_tensor *t, int ndim,
                       const int64_t *shape){TENSOR_OP(T(t).expand(dims(ndim, shape)))}

vqt_tensor *vqt_flatten(const vqt_tensor *t, int start, int end){
    TENSOR_OP(T(t).flatten(start, end))} vqt_tensor *vqt_contiguous(const vqt_tensor *t){
    TENSOR_OP(T(t).contiguous())} vqt_tensor *vqt_triu(const vqt_tensor *t, int64_t k)
{
    TENSOR_OP(T(t).triu(k))
}

/* ---- element-wise ---- */

static at::Tensor binop(vqt_binop op, const at::Tensor &a, const at::Tensor &b)
{
    switch (op) {
    case VQT_ADD: return a + b;
    case VQT_SUB: return a - b;
    case VQT_MUL: return a * b;
    case VQT_DIV: return a / b;
    case VQT_MIN: return at::minimum(a, b);
    case VQT_MAX: return at::maximum(a, b);
    case VQT_POW: return a.pow(b);
    case VQT_LT: return a.lt(b);
    case VQT_LE: return a.le(b);
    case VQT_GT: return a.gt(b);
    case VQT_GE: return a.ge(b);
    case VQT_EQ: return a.eq(b);
    }
    throw std::runtime_error("invalid binary operator");
}

vqt_tensor *vqt_binary(vqt_binop op, const vqt_tensor *a,
                       const vqt_tensor *b){TENSOR_OP(binop(op, T(a), T(b)))}

vqt_tensor *vqt_binary_s(vqt_binop op, const vqt_tensor *t, double s){TENSOR_OP(([&] {
    const at::Tensor &x = T(t);
    switch (op) {
    case VQT_ADD: return x + s;
    case VQT_SUB: return x - s;
    case VQT_MUL: return x * s;
    case VQT_DIV: return x / s;
    case VQT_POW: return x.pow(s);
    case VQT_MIN: return x.clamp_max(s);
    case VQT_MAX: return x.clamp_min(s);
    default: return binop(op, x, at::scalar_tensor(s, x.options()));
    }
}()))}

vqt_tensor *vqt_affine(const vqt_tensor *t, double mul, double add)
{
    TENSOR_OP(T(t) * mul + add)
}

static at::Tensor unop(vqt_unop op, const at::Tensor &x)
{
    switch (op) {
    case VQT_NEG: return -x;
    case VQT_ABS: return x.abs();
    case VQT_SQRT: return x.sqrt();
    case VQT_RSQRT: return x.rsqrt();
    case VQT_EXP: return x.exp();
    case VQT_LOG: return x.log();
    case VQT_SIGMOID: return x.sigmoid();
    case VQT_SILU: return at::silu(x);
    case VQT_RELU: return x.relu();
    case VQT_GELU: return at::gelu(x);
    case VQT_QUICK_GELU: return vqt_lean::quick_gelu(x);
    case VQT_TANH: return x.tanh();
    case VQT_ASIN: return x.asin();
    case VQT_SIGN: return x.sign();
    case VQT_SQUARE: return x.pow(2);
    case VQT_FLOOR: return x.floor();
    case VQT_SIN: return x.sin();
    case VQT_COS: return x.cos();
    }
    throw std::runtime_error("invalid unary operator");
}

vqt_tensor *vqt_unary(vqt_unop op, const vqt_tensor *t){TENSOR_OP(unop(op, T(t)))}

vqt_tensor *vqt_clamp(const vqt_tensor *t, double lo, double hi){
    TENSOR_OP(T(t).clamp(std::isnan(lo) ? c10::optional<at::Scalar>() : at::Scalar(lo),
                         std::isnan(hi) ? c10::optional<at::Scalar>() : at::Scalar(hi)))}

vqt_tensor *vqt_clamp_t(const vqt_tensor *t, const vqt_tensor *lo, const vqt_tensor *hi){
    TENSOR_OP(at::minimum(at::maximum(T(t), T(lo)), T(hi)))}

vqt_tensor *vqt_where(const vqt_tensor *c, const vqt_tensor *a,
                      const vqt_tensor *b){TENSOR_OP(at::where(T(c), T(a), T(b)))}

vqt_tensor *vqt_lerp(const vqt_tensor *a, const vqt_tensor *b,
                     double w){TENSOR_OP(at::lerp(T(a), T(b), w))}

/* ---- reductions ---- */

vqt_tensor *vqt_reduce(vqt_redop op, const vqt_tensor *t, int ndims, const int64_t *d,
                       bool keepdim){TENSOR_OP(([&] {
    const at::Tensor &x = T(t);
    if (ndims == 0) {
        switch (op) {
        case VQT_SUM: return x.sum();
        case VQT_MEAN: return x.mean();
        case VQT_AMAX: return x.max();
        case VQT_AMIN: return x.min();
        }
    }
    switch (op) {
    case VQT_SUM: return x.sum(dims(ndims, d), keepdim);
    case VQT_MEAN: return x.mean(dims(ndims, d), keepdim);
    case VQT_AMAX: return x.amax(dims(ndims, d), keepdim);
    case VQT_AMIN: return x.amin(dims(ndims, d), keepdim);
    }
    throw std::runtime_error("invalid reduction");
}()))}

vqt_tensor *vqt_argmin(const vqt_tensor *t, int dim, bool keepdim){
    TENSOR_OP(T(t).argmin(dim, keepdim))} vqt_tensor *vqt_argmax(const vqt_tensor *t, int dim,
                                                                 bool keepdim){
    TENSOR_OP(T(t).argmax(dim, keepdim))}

vqt_tensor *vqt_norm(const vqt_tensor *t, int dim,
                     bool keepdim){TENSOR_OP(at::norm(T(t), 2, {dim}, keepdim))}

vqt_tensor *vqt_normalize(const vqt_tensor *t, int dim,
                          double eps){TENSOR_OP(torch::nn::functional::normalize(
    T(t), torch::nn::functional::NormalizeFuncOptions().dim(dim).eps(eps)))}

/* ---- neural-network operators ---- */

vqt_tensor *vqt_conv2d(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b, int sh,
                       int sw, int ph, int pw, int groups){
    TENSOR_OP(vqt_lean::conv2d(T(x), T(w), or_undefined(b), {sh, sw, ph, pw, groups}))}

vqt_tensor *vqt_linear(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b){
    TENSOR_OP(vqt_lean::linear(T(x), T(w), or_undefined(b)))}

vqt_tensor *vqt_matmul(const vqt_tensor *a, const vqt_tensor *b){
    TENSOR_OP(at::matmul(T(a), T(b)))} vqt_tensor *vqt_softmax(const vqt_tensor *t, int dim){
    TENSOR_OP(at::softmax(T(t), dim))}

vqt_tensor *vqt_layer_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b,
                           double eps){
    TENSOR_OP(at::layer_norm(T(x), {T(x).size(-1)}, opt(w), opt(b), eps))}

vqt_tensor *vqt_group_norm(const vqt_tensor *x, int groups, const vqt_tensor *w,
                           const vqt_tensor *b,
                           double eps){TENSOR_OP(at::group_norm(T(x), groups, opt(w), opt(b), eps))}

vqt_tensor *vqt_group_norm_silu(const vqt_tensor *x, int groups, const vqt_tensor *w,
                                const vqt_tensor *b, double eps){
    TENSOR_OP(vqt_lean::group_norm_silu(T(x), or_undefined(w), or_undefined(b), groups, eps))}

vqt_tensor *vqt_batch_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b,
                           const vqt_tensor *mean, const vqt_tensor *var, double eps){
    TENSOR_OP(at::batch_norm(T(x), opt(w), opt(b), opt(mean), opt(var), false, 0.0, eps, true))}

vqt_tensor *vqt_pad(const vqt_tensor *x, int npads, const int64_t *pads, vqt_padmode mode,
                    double value){TENSOR_OP(([&] {
    namespace F = torch::nn::functional;
    auto o = F::PadFuncOptions(std::vector<int64_t>(pads, pads + npads));
    if (mode == VQT_PAD_REFLECT)
        o.mode(torch::kReflect);
    else if (mode == VQT_PAD_REPLICATE)
        o.mode(torch::kReplicate);
    else
        o.mode(torch::kConstant).value(value);
    return F::pad(T(x), o);
}()))}

vqt_tensor *vqt_interpolate(const vqt_tensor *x, int64_t oh, int64_t ow, vqt_interp mode,
                            bool ac){TENSOR_OP(([&] {
    const at::Tensor &t = T(x);
    std::vector<int64_t> size{oh, ow};
    switch (mode) {
    case VQT_INTERP_NEAREST: return at::upsample_nearest2d(t, size);
    case VQT_INTERP_BILINEAR: return at::upsample_bilinear2d(t, size, ac);
    case VQT_INTERP_BICUBIC: return at::upsample_bicubic2d(t, size, ac);
    case VQT_INTERP_AREA: return at::adaptive_avg_pool2d(t, size);
    }
    throw std::runtime_error("invalid interpolation mode");
}()))}

vqt_tensor *vqt_avg_pool2d(const vqt_tensor *x, int k,
                           int stride){TENSOR_OP(at::avg_pool2d(T(x), {k, k}, {stride, stride}))}

vqt_tensor *vqt_adaptive_avg_pool2d(const vqt_tensor *x, int64_t oh,
                                    int64_t ow){TENSOR_OP(at::adaptive_avg_pool2d(T(x), {oh, ow}))}

vqt_tensor *vqt_adaptive_max_pool2d(const vqt_tensor *x, int64_t oh, int64_t ow){
    TENSOR_OP(std::get<0>(at::adaptive_max_pool2d(T(x), {oh, ow})))}

vqt_tensor *vqt_grid_sample(const vqt_tensor *x, const vqt_tensor *grid, vqt_gridpad pad, bool ac){
    // grid_sampler modes: interpolation 0 = bilinear; padding 0 zeros, 1 border, 2 reflection.
    TENSOR_OP(at::grid_sampler(T(x), T(grid), 0, (int64_t)pad, ac))}

vqt_tensor *vqt_affine_grid(const vqt_tensor *theta, int64_t n, int64_t c, int64_t h, int64_t w,
                            bool ac){
    TENSOR_OP(at::affine_grid_generator(T(theta), {n, c, h, w}, ac))}

vqt_tensor *vqt_mse_loss(const vqt_tensor *a, const vqt_tensor *b)
{
    TENSOR_OP(at::mse_loss(T(a), T(b)))
}

} // extern "C"

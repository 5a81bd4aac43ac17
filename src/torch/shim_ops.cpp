// The shim's tensor operators (shape, element-wise, reductions, neural-network operators; see
// shim.h): each body runs inside GUARD (TENSOR_OP), so nothing C++ reaches the C side.

#include <cmath>

#include "torch/lean_ops.h"
#include "torch/shim_internal.h"

using namespace vqt_detail;

extern "C" {

/* ---- shape ---- */

vqt_tensor *vqt_reshape(const vqt_tensor *t, int ndim, const int64_t *shape)
{
    TENSOR_OP(T(t).reshape(dims(ndim, shape)))
}

vqt_tensor *vqt_permute(const vqt_tensor *t, int ndim, const int64_t *d)
{
    TENSOR_OP(T(t).permute(dims(ndim, d)))
}

vqt_tensor *vqt_transpose(const vqt_tensor *t, int d0, int d1)
{
    TENSOR_OP(T(t).transpose(d0, d1))
}

vqt_tensor *vqt_narrow(const vqt_tensor *t, int dim, int64_t start, int64_t len)
{
    TENSOR_OP(T(t).narrow(dim, start, len))
}

vqt_tensor *vqt_select(const vqt_tensor *t, int dim, int64_t index)
{
    TENSOR_OP(T(t).select(dim, index))
}

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

vqt_tensor *vqt_cat(vqt_tensor *const *ts, int n, int dim)
{
    TENSOR_OP(at::cat(tensor_list(ts, n), dim))
}
vqt_tensor *vqt_stack(vqt_tensor *const *ts, int n, int dim)
{
    TENSOR_OP(at::stack(tensor_list(ts, n), dim))
}
vqt_tensor *vqt_unsqueeze(const vqt_tensor *t, int dim)
{
    TENSOR_OP(T(t).unsqueeze(dim))
}
vqt_tensor *vqt_expand(const vqt_tensor *t, int ndim, const int64_t *shape)
{
    TENSOR_OP(T(t).expand(dims(ndim, shape)))
}

vqt_tensor *vqt_flatten(const vqt_tensor *t, int start, int end)
{
    TENSOR_OP(T(t).flatten(start, end))
}
vqt_tensor *vqt_contiguous(const vqt_tensor *t)
{
    TENSOR_OP(T(t).contiguous())
}
vqt_tensor *vqt_triu(const vqt_tensor *t, int64_t k)
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

vqt_tensor *vqt_binary(vqt_binop op, const vqt_tensor *a, const vqt_tensor *b)
{
    TENSOR_OP(binop(op, T(a), T(b)))
}

vqt_tensor *vqt_binary_s(vqt_binop op, const vqt_tensor *t, double s)
{
    TENSOR_OP(([&] {
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
    }()))
}

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

vqt_tensor *vqt_unary(vqt_unop op, const vqt_tensor *t)
{
    TENSOR_OP(unop(op, T(t)))
}

vqt_tensor *vqt_clamp(const vqt_tensor *t, double lo, double hi)
{
    TENSOR_OP(T(t).clamp(std::isnan(lo) ? c10::optional<at::Scalar>() : at::Scalar(lo),
                         std::isnan(hi) ? c10::optional<at::Scalar>() : at::Scalar(hi)))
}

vqt_tensor *vqt_clamp_t(const vqt_tensor *t, const vqt_tensor *lo, const vqt_tensor *hi)
{
    TENSOR_OP(at::minimum(at::maximum(T(t), T(lo)), T(hi)))
}

vqt_tensor *vqt_where(const vqt_tensor *c, const vqt_tensor *a, const vqt_tensor *b)
{
    TENSOR_OP(at::where(T(c), T(a), T(b)))
}

/* ---- reductions ---- */

vqt_tensor *vqt_reduce(vqt_redop op, const vqt_tensor *t, int ndims, const int64_t *d, bool keepdim)
{
    TENSOR_OP(([&] {
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
    }()))
}

vqt_tensor *vqt_argmin(const vqt_tensor *t, int dim, bool keepdim)
{
    TENSOR_OP(T(t).argmin(dim, keepdim))
}
vqt_tensor *vqt_argmax(const vqt_tensor *t, int dim, bool keepdim)
{
    TENSOR_OP(T(t).argmax(dim, keepdim))
}

vqt_tensor *vqt_norm(const vqt_tensor *t, int dim, bool keepdim)
{
    TENSOR_OP(at::norm(T(t), 2, {dim}, keepdim))
}

vqt_tensor *vqt_normalize(const vqt_tensor *t, int dim, double eps)
{
    TENSOR_OP(torch::nn::functional::normalize(
        T(t), torch::nn::functional::NormalizeFuncOptions().dim(dim).eps(eps)))
}

/* ---- neural-network operators ---- */

vqt_tensor *vqt_conv2d(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b, int sh,
                       int sw, int ph, int pw, int groups)
{
    TENSOR_OP(vqt_lean::conv2d(T(x), T(w), or_undefined(b), {sh, sw, ph, pw, groups}))
}

vqt_tensor *vqt_linear(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b)
{
    TENSOR_OP(vqt_lean::linear(T(x), T(w), or_undefined(b)))
}

vqt_tensor *vqt_matmul(const vqt_tensor *a, const vqt_tensor *b)
{
    TENSOR_OP(at::matmul(T(a), T(b)))
}
vqt_tensor *vqt_softmax(const vqt_tensor *t, int dim)
{
    TENSOR_OP(at::softmax(T(t), dim))
}

vqt_tensor *vqt_sdpa(const vqt_tensor *q, const vqt_tensor *k, const vqt_tensor *v,
                     const vqt_tensor *mask)
{
#if TORCH_VERSION_MAJOR >= 2
    TENSOR_OP(at::scaled_dot_product_attention(T(q), T(k), T(v), opt(mask)))
#else
    TENSOR_OP(std::get<0>(at::_scaled_dot_product_attention(T(q), T(k), T(v), opt(mask))))
#endif
}

vqt_tensor *vqt_layer_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b,
                           double eps)
{
    TENSOR_OP(at::layer_norm(T(x), {T(x).size(-1)}, opt(w), opt(b), eps))
}

vqt_tensor *vqt_group_norm(const vqt_tensor *x, int groups, const vqt_tensor *w,
                           const vqt_tensor *b, double eps)
{
    TENSOR_OP(at::group_norm(T(x), groups, opt(w), opt(b), eps))
}

void vqt_set_group_norm_impl(vqt_gn_impl impl)
{
    vqt_lean::group_norm_impl().store(impl, std::memory_order_relaxed);
}

vqt_tensor *vqt_group_norm_silu(const vqt_tensor *x, int groups, const vqt_tensor *w,
                                const vqt_tensor *b, double eps)
{
    TENSOR_OP(vqt_lean::group_norm_silu(T(x), or_undefined(w), or_undefined(b), groups, eps))
}

vqt_tensor *vqt_batch_norm(const vqt_tensor *x, const vqt_tensor *w, const vqt_tensor *b,
                           const vqt_tensor *mean, const vqt_tensor *var, double eps)
{
    TENSOR_OP(at::batch_norm(T(x), opt(w), opt(b), opt(mean), opt(var), false, 0.0, eps, true))
}

vqt_tensor *vqt_pad(const vqt_tensor *x, int npads, const int64_t *pads, vqt_padmode mode,
                    double value)
{
    TENSOR_OP(([&] {
        namespace F = torch::nn::functional;
        std::vector<int64_t> p(dims(npads, pads).vec());
        if (mode == VQT_PAD_REFLECT)
            return host_grad_op(HostGradOp::PadReflect, T(x), at::Tensor(), p);
        if (mode == VQT_PAD_REPLICATE)
            return host_grad_op(HostGradOp::PadReplicate, T(x), at::Tensor(), p);
        return F::pad(T(x), F::PadFuncOptions(p).mode(torch::kConstant).value(value));
    }()))
}

vqt_tensor *vqt_interpolate(const vqt_tensor *x, int64_t oh, int64_t ow, vqt_interp mode, bool ac)
{
    TENSOR_OP(([&] {
        const at::Tensor &t = T(x);
        std::vector<int64_t> size{oh, ow};
        switch (mode) {
        case VQT_INTERP_NEAREST: return at::upsample_nearest2d(t, size);
        case VQT_INTERP_BILINEAR:
            return host_grad_op(HostGradOp::Bilinear, t, at::Tensor(), {oh, ow, ac});
        case VQT_INTERP_BICUBIC:
            return host_grad_op(HostGradOp::Bicubic, t, at::Tensor(), {oh, ow, ac});
        case VQT_INTERP_AREA: return host_grad_op(HostGradOp::AdaptiveAvg, t, at::Tensor(), size);
        }
        throw std::runtime_error("invalid interpolation mode");
    }()))
}

vqt_tensor *vqt_avg_pool2d(const vqt_tensor *x, int k, int stride)
{
    TENSOR_OP(at::avg_pool2d(T(x), {k, k}, {stride, stride}))
}

vqt_tensor *vqt_adaptive_avg_pool2d(const vqt_tensor *x, int64_t oh, int64_t ow)
{
    TENSOR_OP(host_grad_op(HostGradOp::AdaptiveAvg, T(x), at::Tensor(), {oh, ow}))
}

vqt_tensor *vqt_adaptive_max_pool2d(const vqt_tensor *x, int64_t oh, int64_t ow)
{
    TENSOR_OP(host_grad_op(HostGradOp::AdaptiveMax, T(x), at::Tensor(), {oh, ow}))
}

vqt_tensor *vqt_grid_sample(const vqt_tensor *x, const vqt_tensor *grid, vqt_gridpad pad, bool ac)
{
    // grid_sampler modes: interpolation 0 = bilinear; padding 0 zeros, 1 border, 2 reflection.
    TENSOR_OP(host_grad_op(HostGradOp::GridSample, T(x), T(grid), {(int64_t)pad, ac}))
}

vqt_tensor *vqt_affine_grid(const vqt_tensor *theta, int64_t n, int64_t c, int64_t h, int64_t w,
                            bool ac)
{
    TENSOR_OP(at::affine_grid_generator(T(theta), {n, c, h, w}, ac))
}

vqt_tensor *vqt_mse_loss(const vqt_tensor *a, const vqt_tensor *b)
{
    TENSOR_OP(at::mse_loss(T(a), T(b)))
}

/* ---- upscaler operators ---- */

vqt_tensor *vqt_leaky_relu(const vqt_tensor *t, double slope)
{
    TENSOR_OP(at::leaky_relu(T(t), slope))
}

int vqt_leaky_relu_(vqt_tensor *t, double slope)
{
    GUARD(-1, {
        at::NoGradGuard ng;
        T(t); /* checks the handle */
        at::leaky_relu_(t->t, slope);
        return 0;
    })
}

vqt_tensor *vqt_channels_last(const vqt_tensor *t)
{
    TENSOR_OP(T(t).contiguous(at::MemoryFormat::ChannelsLast))
}

bool vqt_is_channels_last(const vqt_tensor *t)
{
    GUARD(false, return vqt_lean::is_channels_last(T(t));)
}

vqt_tensor *vqt_prelu(const vqt_tensor *t, const vqt_tensor *w)
{
    TENSOR_OP(at::prelu(T(t), T(w)))
}

vqt_tensor *vqt_pixel_shuffle(const vqt_tensor *t, int r)
{
    TENSOR_OP(at::pixel_shuffle(T(t), r))
}

vqt_tensor *vqt_pixel_unshuffle(const vqt_tensor *t, int r)
{
    TENSOR_OP(at::pixel_unshuffle(T(t), r))
}

} // extern "C"

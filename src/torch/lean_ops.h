// Operators for the shim that keep less for the backward pass than libtorch's own (see "Memory"
// in shim.h), and the linear layer on oneDNN. C++, included by shim.cpp only.
#ifndef VQC_TORCH_LEAN_OPS_H
#define VQC_TORCH_LEAN_OPS_H

#include <torch/torch.h>

#include "torch/shim.h"

#include <array>
#include <atomic>
#include <tuple>
#include <vector>

namespace vqt_lean
{

// A convolution whose backward pass computes only the input gradient and so keeps the weight
// and the input's geometry, not the input. Used when weight and bias need no gradient. The
// backward call is the one libtorch's ConvolutionBackward0 makes, with an uninitialised
// stand-in of the input's sizes and strides: for the input gradient alone, every backend reads
// only the input's geometry, so the result is the same.
struct ConvArgs {
    at::Tensor w, b; // b may be undefined
    int64_t sh, sw, ph, pw, groups;
};

struct ConvInputGrad : public torch::autograd::Function<ConvInputGrad> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x,
                              const ConvArgs &a)
    {
        ctx->saved_data["w"] = a.w;
        ctx->saved_data["has_bias"] = a.b.defined();
        ctx->saved_data["bias"] = a.b.defined() ? a.b.sizes().vec() : std::vector<int64_t>();
        ctx->saved_data["sizes"] = x.sizes().vec();
        ctx->saved_data["strides"] = x.strides().vec();
        ctx->saved_data["geom"] = std::vector<int64_t>{a.sh, a.sw, a.ph, a.pw, a.groups};
        return at::conv2d(x, a.w, a.b.defined() ? c10::optional<at::Tensor>(a.b) : c10::nullopt,
                          {a.sh, a.sw}, {a.ph, a.pw}, {1, 1}, a.groups);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        if (!grads[0].defined())
            return {at::Tensor(), at::Tensor()};
        at::Tensor w = ctx->saved_data["w"].toTensor();
        std::vector<int64_t> g = ctx->saved_data["geom"].toIntVector();
        std::vector<int64_t> bias = ctx->saved_data["bias"].toIntVector();
        at::Tensor stand_in =
            at::empty_strided(ctx->saved_data["sizes"].toIntVector(),
                              ctx->saved_data["strides"].toIntVector(), grads[0].options());
        at::OptionalIntArrayRef bias_sizes = c10::nullopt;
        if (ctx->saved_data["has_bias"].toBool())
            bias_sizes = at::IntArrayRef(bias);
        auto r =
            at::convolution_backward(grads[0], stand_in, w, bias_sizes, {g[0], g[1]}, {g[2], g[3]},
                                     {1, 1}, false, {0, 0}, g[4], {true, false, false});
        return {std::get<0>(r), at::Tensor()};
    }
};

// silu(group_norm(x)) keeping x and the group statistics. How it computes
// (vqt_set_group_norm_impl):
//   native  libtorch's kernels both ways; the backward pass recomputes the normalised tensor
//           with the same deterministic kernel, then makes the calls libtorch's SiluBackward0 and
//           NativeGroupNormBackward0 make: values and gradients bit for bit libtorch's (the CPU)
//   saved   forward as native; it also keeps each (sample, channel)'s scale and shift, and the
//           backward pass rebuilds the normalised tensor from them in one multiply-add instead of
//           computing the statistics again (on CUDA that pass is one block per group: slow at
//           batch 1, docs/benchmarks.md); gradients within rounding of native's (CUDA default)
//   reduce  as saved, and the forward statistics come from var_mean over [N, G, C/G*H*W] (a
//           reduction spread over the whole GPU), the output from the scale and shift
// x is prepared as at::group_norm prepares it.
struct GroupNormArgs {
    at::Tensor w, b; // either may be undefined
    int64_t groups;
    double eps;
};

inline std::atomic<int> &group_norm_impl()
{
    static std::atomic<int> impl{VQT_GN_AUTO};
    return impl;
}

inline vqt_gn_impl group_norm_impl_for(const at::Tensor &x)
{
    int impl = group_norm_impl().load(std::memory_order_relaxed);
    if (impl == VQT_GN_AUTO)
        return x.is_cuda() ? VQT_GN_SAVED : VQT_GN_NATIVE;
    return (vqt_gn_impl)impl;
}

struct GroupNormSilu : public torch::autograd::Function<GroupNormSilu> {
    static std::tuple<at::Tensor, at::Tensor, at::Tensor> norm(const at::Tensor &x,
                                                               const GroupNormArgs &a)
    {
        int64_t n = x.size(0), c = x.size(1), hw = c10::multiply_integers(x.sizes().slice(2));
        return at::native_group_norm(x, a.w.defined() ? a.w.contiguous() : at::Tensor(),
                                     a.b.defined() ? a.b.contiguous() : at::Tensor(), n, c, hw,
                                     a.groups, a.eps);
    }
    // Per (sample, channel) scale rstd * w and shift b - mean * rstd * w, [N, C, 1, 1] in x's
    // type, from the [N, G] statistics: normalised = x * scale + shift.
    static std::pair<at::Tensor, at::Tensor> scale_shift(const at::Tensor &x,
                                                         const at::Tensor &mean,
                                                         const at::Tensor &rstd,
                                                         const GroupNormArgs &a)
    {
        int64_t n = x.size(0), c = x.size(1), g = a.groups;
        at::Tensor r = rstd.to(x.scalar_type()).reshape({n, g, 1});
        at::Tensor m = mean.to(x.scalar_type()).reshape({n, g, 1});
        at::Tensor scale = a.w.defined() ? r * a.w.reshape({1, g, c / g}) : r.expand({n, g, c / g});
        at::Tensor shift = -(m * scale);
        if (a.b.defined())
            shift = shift + a.b.reshape({1, g, c / g});
        std::vector<int64_t> s(x.dim(), 1);
        s[0] = n;
        s[1] = c;
        return {scale.reshape(s), shift.reshape(s)};
    }
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &input,
                              const GroupNormArgs &a)
    {
        at::Tensor x = input.device().is_cpu() ? input.contiguous(input.suggest_memory_format())
                                               : input.contiguous();
        vqt_gn_impl impl = group_norm_impl_for(x);
        ctx->saved_data["w"] = a.w;
        ctx->saved_data["b"] = a.b;
        ctx->saved_data["groups"] = a.groups;
        ctx->saved_data["eps"] = a.eps;
        ctx->saved_data["impl"] = (int64_t)impl;
        if (impl == VQT_GN_NATIVE) {
            auto r = norm(x, a);
            ctx->save_for_backward({x, std::get<1>(r), std::get<2>(r)});
            return at::silu(std::get<0>(r));
        }
        at::Tensor mean, rstd, y;
        if (impl == VQT_GN_REDUCE) {
            int64_t n = x.size(0);
            auto vm =
                at::var_mean(x.reshape({n, a.groups, -1}), at::IntArrayRef({2}), false, false);
            mean = std::get<1>(vm);
            rstd = (std::get<0>(vm).to(at::kFloat) + a.eps).rsqrt();
        } else {
            auto r = norm(x, a);
            y = std::get<0>(r);
            mean = std::get<1>(r);
            rstd = std::get<2>(r);
        }
        auto ss = scale_shift(x, mean, rstd, a);
        if (!y.defined())
            y = at::addcmul(ss.second, x, ss.first);
        // native_group_norm_backward takes the statistics in x's type, [N, G]
        ctx->save_for_backward(
            {x, mean.to(x.scalar_type()), rstd.to(x.scalar_type()), ss.first, ss.second});
        return at::silu_(y);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        if (!grads[0].defined())
            return {at::Tensor(), at::Tensor()};
        torch::autograd::variable_list saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0];
        GroupNormArgs a{ctx->saved_data["w"].toTensor(), ctx->saved_data["b"].toTensor(),
                        ctx->saved_data["groups"].toInt(), ctx->saved_data["eps"].toDouble()};
        at::Tensor normed = ctx->saved_data["impl"].toInt() == VQT_GN_NATIVE
                                ? std::get<0>(norm(x, a))
                                : at::addcmul(saved[4], x, saved[3]);
        at::Tensor gy = at::silu_backward(grads[0], normed);
        int64_t n = x.size(0), c = x.size(1), hw = c10::multiply_integers(x.sizes().slice(2));
        auto r = at::native_group_norm_backward(gy.is_contiguous() ? gy : gy.contiguous(), x,
                                                saved[1], saved[2],
                                                a.w.defined() ? a.w.contiguous() : at::Tensor(), n,
                                                c, hw, a.groups, {true, false, false});
        return {std::get<0>(r), at::Tensor()};
    }
};

// CLIP's QuickGELU x * sigmoid(1.702 x) keeping only x. The backward pass makes the calls of
// libtorch's MulBackward0 / SigmoidBackward0 / MulBackward1 chain; the two contributions to
// the input gradient are added once, and a two-term float sum does not depend on its order.
struct QuickGelu : public torch::autograd::Function<QuickGelu> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x)
    {
        ctx->save_for_backward({x});
        return x * (x * 1.702).sigmoid();
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        if (!grads[0].defined())
            return {at::Tensor()};
        at::Tensor x = ctx->get_saved_variables()[0], g = grads[0];
        at::Tensor s = (x * 1.702).sigmoid();
        at::Tensor through_sigmoid = at::sigmoid_backward(g * x, s) * 1.702;
        return {g * s + through_sigmoid};
    }
};

// Whether an operator on x with parameters w, b (either may be undefined) records only an input
// gradient: the case the operators above serve.
inline bool input_grad_only(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b)
{
    return at::GradMode::is_enabled() && x.requires_grad() && !(w.defined() && w.requires_grad()) &&
           !(b.defined() && b.requires_grad());
}

// A float32 linear layer on the CPU as a 1x1 convolution over a channels-last view of x (no
// copy either way): oneDNN's convolution kernels run these shapes faster than OpenBLAS's sgemm
// on the benchmark machine (docs/benchmarks.md). libtorch only picks oneDNN for a batch-1 1x1
// convolution with more than one thread, so with one thread this stays at::linear.
inline at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b)
{
    if (!x.is_cpu() || x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat ||
        x.dim() < 2 || w.dim() != 2 || !x.is_contiguous() || !w.is_contiguous() ||
        at::get_num_threads() < 2 || x.numel() == 0 || !at::globalContext().userEnabledMkldnn())
        return at::linear(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt);
    int64_t k = x.size(-1), m = x.numel() / k, n = w.size(0);
    at::Tensor xc = x.reshape({1, m, 1, k}).permute({0, 3, 1, 2});
    at::Tensor wc = w.reshape({n, k, 1, 1});
    at::Tensor y =
        input_grad_only(x, w, b)
            ? ConvInputGrad::apply(xc, ConvArgs{wc, b, 1, 1, 0, 0, 1})
            : at::conv2d(xc, wc, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt);
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = n;
    return y.permute({0, 2, 3, 1}).reshape(sizes);
}

// at::conv2d, through ConvInputGrad when only the input needs a gradient.
inline at::Tensor conv2d(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b,
                         std::array<int64_t, 5> g /* sh, sw, ph, pw, groups */)
{
    if (input_grad_only(x, w, b))
        return ConvInputGrad::apply(x, ConvArgs{w, b, g[0], g[1], g[2], g[3], g[4]});
    return at::conv2d(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt, {g[0], g[1]},
                      {g[2], g[3]}, {1, 1}, g[4]);
}

// silu(group_norm(x)), through GroupNormSilu when only the input needs a gradient.
inline at::Tensor group_norm_silu(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b,
                                  int64_t groups, double eps)
{
    if (input_grad_only(x, w, b) && x.dim() >= 2)
        return GroupNormSilu::apply(x, GroupNormArgs{w, b, groups, eps});
    auto opt = [](const at::Tensor &t) {
        return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
    };
    return at::silu(at::group_norm(x, groups, opt(w), opt(b), eps));
}

// CLIP's QuickGELU, through QuickGelu when x needs a gradient.
inline at::Tensor quick_gelu(const at::Tensor &x)
{
    if (input_grad_only(x, at::Tensor(), at::Tensor()))
        return QuickGelu::apply(x);
    return x * (x * 1.702).sigmoid();
}

} // namespace vqt_lean

#endif

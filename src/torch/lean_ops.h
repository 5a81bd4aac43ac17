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
//   composed  everything from reductions and elementwise operators that keep x's memory layout:
//           libtorch's CUDA GroupNorm takes NCHW only, so a channels-last decoder (the layout
//           cuDNN's bfloat16 convolutions run in) would be transposed there and back at every
//           norm. Statistics, scale and shift in float32 (each (sample, channel)'s sums, then
//           the groups'); the backward pass is libtorch's formula from two per-channel sums.
//           AUTO picks it for any channels-last input
// x is prepared as at::group_norm prepares it, except that composed keeps x's layout.
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

// A 4-D tensor laid out channels last (NHWC) and not also plainly contiguous.
inline bool is_channels_last(const at::Tensor &x)
{
    return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

inline vqt_gn_impl group_norm_impl_for(const at::Tensor &x)
{
    int impl = group_norm_impl().load(std::memory_order_relaxed);
    if (impl == VQT_GN_AUTO) {
        // Channels last: COMPOSED on the CPU too, where libtorch 1.13's bfloat16 kernel for
        // that layout loses accuracy over a decoder (test-gpu-precision's dry run).
        if (is_channels_last(x))
            return VQT_GN_COMPOSED;
        return x.is_cuda() ? VQT_GN_SAVED : VQT_GN_NATIVE;
    }
    return (vqt_gn_impl)impl;
}

// out = base + x * s, out in x's type. s, and base where its type is not x's, are float32 (or
// float64 for a float64 x): the arithmetic is then float32 and rounded once. On CUDA TensorIterator
// converts as it loads; its CPU kernels cannot, so there (tests only) x goes through a copy.
inline at::Tensor &fma_into(at::Tensor &out, const at::Tensor &base, const at::Tensor &x,
                            const at::Tensor &s)
{
    if (x.is_cuda() ||
        (x.scalar_type() == s.scalar_type() && base.scalar_type() == s.scalar_type()))
        return at::addcmul_out(out, base, x, s);
    at::ScalarType st = s.scalar_type();
    return out.copy_(at::addcmul(base.to(st), x.to(st), s));
}

// base + x * s in x's type and layout (see fma_into).
inline at::Tensor fma(const at::Tensor &base, const at::Tensor &x, const at::Tensor &s)
{
    at::Tensor out = at::empty_like(x);
    return fma_into(out, base, x, s);
}

// The type composed GroupNorm computes its statistics and its per-channel factors in.
inline at::ScalarType accumulate_type(const at::Tensor &x)
{
    return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// x as [N, C, spatial...] with at least one spatial dimension (a view), and those dimensions.
inline std::pair<at::Tensor, std::vector<int64_t>> spatial(const at::Tensor &x)
{
    at::Tensor v = x.dim() > 2 ? x : x.reshape({x.size(0), x.size(1), 1});
    std::vector<int64_t> dims;
    for (int64_t d = 2; d < v.dim(); d++)
        dims.push_back(d);
    return {v, dims};
}

// Mean and 1/sqrt(var + eps) of each (sample, group), [N, G] in accumulate_type(x), from each
// (sample, channel)'s statistics over the spatial dimensions, reductions that read x in any
// layout. float32 and float64 take per-channel var_mean (one read) and combine them exactly
// (equal counts); the reduced types sum x and x^2 in float32 (two reads: var_mean would round
// its results to x's type).
inline std::pair<at::Tensor, at::Tensor> composed_stats(const at::Tensor &x, int64_t groups,
                                                        double eps)
{
    int64_t n = x.size(0), c = x.size(1), g = groups;
    auto sv = spatial(x);
    at::ScalarType acc = accumulate_type(x);
    at::Tensor mean, var;
    if (x.scalar_type() == acc) {
        auto vm = at::var_mean(sv.first, at::IntArrayRef(sv.second), false, false);
        at::Tensor cmean = std::get<1>(vm).reshape({n, g, c / g});
        mean = cmean.mean(-1);
        var = std::get<0>(vm).reshape({n, g, c / g}).mean(-1) +
              (cmean - mean.unsqueeze(-1)).square().mean(-1);
    } else {
        // Few kernels on the small tensors: each is a launch, and there are ~30 norms a decode.
        double count = (double)(c / g) * (double)(sv.first.numel() / std::max<int64_t>(n * c, 1));
        at::Tensor s1 = at::sum(sv.first, sv.second, false, acc);
        at::Tensor s2 = at::linalg_vector_norm(sv.first, 2, sv.second, false, acc).square_();
        at::Tensor moments =
            at::stack({s1, s2}).reshape({2, n, g, c / g}).sum(-1).mul_(1.0 / count);
        mean = moments[0];
        var = at::addcmul(moments[1], mean, mean, -1).clamp_min_(0);
    }
    return {mean, var.add_(eps).rsqrt_()};
}

// The input gradient of group_norm(x) given gy, its output's gradient, as libtorch computes it
// (ds, db per channel, then per group), with the big tensors in x's type and layout. x and gy
// are seen as [N, G, C/G, spatial...] (a view in either layout), so that the per-group and
// per-channel factors broadcast without being expanded.
inline at::Tensor composed_backward(const at::Tensor &gy, const at::Tensor &x,
                                    const at::Tensor &mean, const at::Tensor &rstd,
                                    const at::Tensor &w, int64_t groups)
{
    int64_t n = x.size(0), c = x.size(1), g = groups;
    at::ScalarType acc = accumulate_type(x);
    auto sx = spatial(x), sg = spatial(gy);
    double count = (double)(c / g) * (double)(sx.first.numel() / std::max<int64_t>(n * c, 1));
    at::Tensor sums = at::stack({at::sum(sg.first, sg.second, false, acc),
                                 at::sum(sg.first * sx.first, sg.second, false, acc)})
                          .reshape({2, n, g, c / g}); // db, ds per channel
    if (w.defined())
        sums = sums * w.reshape({1, 1, g, c / g});
    at::Tensor a = sums.sum(-1); // [2, N, G]: sum of gamma*db, gamma*ds over each group
    // dx = rstd*gamma*gy - rstd*a1/M - rstd^3 (x - mean)(a2 - mean*a1)/M = coef*gy + bx*x + cx
    at::Tensor bx = at::addcmul(a[1], mean, a[0], -1).mul_(rstd.pow(3)).mul_(-1.0 / count);
    at::Tensor cx = (rstd * a[0]).mul_(-1.0 / count).addcmul_(bx, mean, -1);
    std::vector<int64_t> gs = {n, g, c / g}, bs = {n, g, 1};
    for (int64_t d = 2; d < x.dim(); d++) {
        gs.push_back(x.size(d));
        bs.push_back(1);
    }
    std::vector<int64_t> cs(bs);
    cs[2] = c / g;
    at::Tensor coef = w.defined() ? rstd.unsqueeze(-1) * w.reshape({1, g, c / g})
                                  : rstd.unsqueeze(-1).expand({n, g, c / g});
    at::Tensor dx = at::empty_like(x), dxg = dx.view(gs);
    fma_into(dxg, cx.view(bs), x.view(gs), bx.view(bs));
    fma_into(dxg, dxg, gy.view(gs), coef.reshape(cs));
    return dx;
}

// SiLU's input gradient at the normalised tensor `normed`, which the backward pass rebuilt for
// it alone: written into normed's own memory when the types agree (the same values as a new
// tensor), so that the backward pass's peak holds one activation-sized tensor less.
inline at::Tensor silu_backward_into(const at::Tensor &g, at::Tensor &normed)
{
    if (g.scalar_type() == normed.scalar_type() && g.device() == normed.device())
        return at::silu_backward_out(normed, g, normed);
    return at::silu_backward(g, normed);
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
                                                         const GroupNormArgs &a, at::ScalarType st)
    {
        int64_t n = x.size(0), c = x.size(1), g = a.groups;
        at::Tensor r = rstd.to(st).reshape({n, g, 1});
        at::Tensor m = mean.to(st).reshape({n, g, 1});
        // w and b are x's type: they are promoted to st where that is wider (no extra kernel)
        at::Tensor scale = a.w.defined() ? r * a.w.reshape({1, g, c / g}) : r.expand({n, g, c / g});
        at::Tensor shift = a.b.defined() ? a.b.reshape({1, g, c / g}) - m * scale : -(m * scale);
        std::vector<int64_t> s(x.dim(), 1);
        s[0] = n;
        s[1] = c;
        return {scale.reshape(s), shift.reshape(s)};
    }
    // The forward pass of impl; with ctx, it also saves what the backward pass reads (ctx may
    // be null: without gradient recording the values are the same as with it).
    static at::Tensor compute(torch::autograd::AutogradContext *ctx, const at::Tensor &input,
                              const GroupNormArgs &a, vqt_gn_impl impl)
    {
        at::Tensor x = input.device().is_cpu() || impl == VQT_GN_COMPOSED
                           ? input.contiguous(input.suggest_memory_format())
                           : input.contiguous();
        if (impl == VQT_GN_COMPOSED) {
            auto st = composed_stats(x, a.groups, a.eps);
            auto ss = scale_shift(x, st.first, st.second, a, accumulate_type(x));
            at::Tensor y = fma(ss.second, x, ss.first);
            if (ctx)
                ctx->save_for_backward({x, st.first, st.second, ss.first, ss.second});
            return at::silu_(y);
        }
        if (impl == VQT_GN_NATIVE) {
            auto r = norm(x, a);
            if (ctx)
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
        auto ss = scale_shift(x, mean, rstd, a, x.scalar_type());
        if (!y.defined())
            y = at::addcmul(ss.second, x, ss.first);
        // native_group_norm_backward takes the statistics in x's type, [N, G]
        if (ctx)
            ctx->save_for_backward(
                {x, mean.to(x.scalar_type()), rstd.to(x.scalar_type()), ss.first, ss.second});
        return at::silu_(y);
    }
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &input,
                              const GroupNormArgs &a)
    {
        vqt_gn_impl impl = group_norm_impl_for(input);
        ctx->saved_data["w"] = a.w;
        ctx->saved_data["b"] = a.b;
        ctx->saved_data["groups"] = a.groups;
        ctx->saved_data["eps"] = a.eps;
        ctx->saved_data["impl"] = (int64_t)impl;
        return compute(ctx, input, a, impl);
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
        if (ctx->saved_data["impl"].toInt() == VQT_GN_COMPOSED) {
            at::Tensor normed = fma(saved[4], x, saved[3]);
            at::Tensor gy = silu_backward_into(grads[0], normed);
            return {composed_backward(gy, x, saved[1], saved[2], a.w, a.groups), at::Tensor()};
        }
        at::Tensor normed = ctx->saved_data["impl"].toInt() == VQT_GN_NATIVE
                                ? std::get<0>(norm(x, a))
                                : at::addcmul(saved[4], x, saved[3]);
        at::Tensor gy = silu_backward_into(grads[0], normed);
        int64_t n = x.size(0), c = x.size(1), hw = c10::multiply_integers(x.sizes().slice(2));
        // NCHW both: libtorch 1.13's CPU backward kernel misreads channels-last tensors
        auto r = at::native_group_norm_backward(gy.contiguous(), x.contiguous(), saved[1], saved[2],
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
    // Without any gradient, the implementations whose values are not libtorch's give the same
    // values as with one (low-memory decoding's first pass, whose recomputation records one).
    bool records =
        at::GradMode::is_enabled() && (x.requires_grad() || (w.defined() && w.requires_grad()) ||
                                       (b.defined() && b.requires_grad()));
    vqt_gn_impl impl = x.dim() >= 2 ? group_norm_impl_for(x) : VQT_GN_NATIVE;
    if (!records && (impl == VQT_GN_COMPOSED || impl == VQT_GN_REDUCE))
        return GroupNormSilu::compute(nullptr, x, GroupNormArgs{w, b, groups, eps}, impl);
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

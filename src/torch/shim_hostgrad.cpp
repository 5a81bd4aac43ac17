// Deterministic input gradients for the operators whose CUDA backward passes add with atomics
// (grid sampling, adaptive pooling, bilinear and bicubic interpolation, reflection and
// replication padding): libtorch has no deterministic CUDA version of them, and the order of
// their atomic additions changes the last bits of a picture from run to run. Where
// vqt_set_host_grad asks for it, the operator runs forward on its own device as before, and
// its backward pass copies the input, the auxiliary tensor and the output gradient to the CPU,
// runs the operator there again with recording on, and takes its input gradient from libtorch's
// CPU kernels, which add in a fixed order. See shim.h.

#include <torch/torch.h>

#include <atomic>

#include "torch/shim_internal.h"

using namespace vqt_detail;

namespace
{
std::atomic<int> host_grad_mode{VQT_HOSTGRAD_OFF};
std::atomic<long long> host_grads_done{0};

struct HostGradArgs {
    HostGradOp op;
    at::Tensor aux; // grid_sample's grid (no gradient); undefined for the others
    std::vector<int64_t> p;
};

at::Tensor run_op(HostGradOp op, const at::Tensor &x, const at::Tensor &aux,
                  const std::vector<int64_t> &p)
{
    namespace F = torch::nn::functional;
    switch (op) {
    case HostGradOp::GridSample: return at::grid_sampler(x, aux, 0, p[0], p[1] != 0);
    case HostGradOp::AdaptiveAvg: return at::adaptive_avg_pool2d(x, {p[0], p[1]});
    case HostGradOp::AdaptiveMax: return std::get<0>(at::adaptive_max_pool2d(x, {p[0], p[1]}));
    case HostGradOp::Bilinear: return at::upsample_bilinear2d(x, {p[0], p[1]}, p[2] != 0);
    case HostGradOp::Bicubic: return at::upsample_bicubic2d(x, {p[0], p[1]}, p[2] != 0);
    case HostGradOp::PadReflect:
    case HostGradOp::PadReplicate: {
        auto o = F::PadFuncOptions(p);
        if (op == HostGradOp::PadReflect)
            o.mode(torch::kReflect);
        else
            o.mode(torch::kReplicate);
        return F::pad(x, o);
    }
    }
    throw std::runtime_error("invalid host-gradient operator");
}

struct HostGrad : public torch::autograd::Function<HostGrad> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x,
                              const HostGradArgs &a)
    {
        ctx->save_for_backward({x});
        ctx->saved_data["aux"] = a.aux;
        ctx->saved_data["op"] = (int64_t)a.op;
        ctx->saved_data["p"] = a.p;
        return run_op(a.op, x, a.aux, a.p);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        if (!grads[0].defined())
            return {at::Tensor(), at::Tensor()};
        at::Tensor x = ctx->get_saved_variables()[0], aux = ctx->saved_data["aux"].toTensor();
        auto op = (HostGradOp)ctx->saved_data["op"].toInt();
        auto p = ctx->saved_data["p"].toIntVector();
        // float32 on the CPU (its kernels for half types are few); float64 stays float64
        at::ScalarType ct = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
        at::Tensor xc = x.detach().to(at::kCPU, ct).requires_grad_(true);
        at::Tensor ac = aux.defined() ? aux.detach().to(at::kCPU, ct) : at::Tensor();
        at::Tensor yc;
        {
            at::AutoGradMode on(true);
            yc = run_op(op, xc, ac, p);
        }
        at::Tensor gx = torch::autograd::grad({yc}, {xc}, {grads[0].to(at::kCPU, ct)})[0];
        host_grads_done.fetch_add(1, std::memory_order_relaxed);
        return {gx.to(x.device(), x.scalar_type()), at::Tensor()};
    }
};
} // namespace

at::Tensor vqt_detail::host_grad_op(HostGradOp op, const at::Tensor &x, const at::Tensor &aux,
                                    std::vector<int64_t> p)
{
    int mode = host_grad_mode.load(std::memory_order_relaxed);
    bool wrap = mode != VQT_HOSTGRAD_OFF && (mode == VQT_HOSTGRAD_ALL || x.is_cuda()) &&
                at::GradMode::is_enabled() && x.requires_grad() &&
                !(aux.defined() && aux.requires_grad());
    if (!wrap)
        return run_op(op, x, aux, p);
    return HostGrad::apply(x, HostGradArgs{op, aux, std::move(p)});
}

extern "C" {

void vqt_set_host_grad(vqt_hostgrad mode)
{
    host_grad_mode.store(mode, std::memory_order_relaxed);
}

vqt_hostgrad vqt_get_host_grad(void)
{
    return (vqt_hostgrad)host_grad_mode.load(std::memory_order_relaxed);
}

long long vqt_host_grads_done(void)
{
    return host_grads_done.load(std::memory_order_relaxed);
}

} // extern "C"

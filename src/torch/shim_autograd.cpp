// The shim's autograd: gradients of leaves, the loop's custom gradient rules (ClampWithGrad,
// ReplaceGrad) and activation checkpointing (vqt_checkpoint). See shim.h.

#include <torch/torch.h>

#include "torch/shim_internal.h"

using namespace vqt_detail;

// The C function builds its result from vqt ops inside a scope of the calling thread (the
// backward pass of a CUDA tensor runs on an autograd device thread), so its handles are freed
// here. A NULL result throws the function's error, recorded on this thread, as an exception that
// carries its message and its kind (oom_error for an allocation failure): the autograd engine
// hands it to the thread waiting in vqt_backward, whose GUARD records both there.
at::Tensor vqt_detail::run_segment(vqt_segment_fn fn, void *arg, const at::Tensor &x)
{
    vqt_scope_begin();
    vqt_tensor *in = wrap(x);
    vqt_tensor *out = fn(arg, in);
    at::Tensor y = out ? out->t : at::Tensor();
    vqt_scope_end();
    if (y.defined())
        return y;
    const char *msg = err_buf[0] ? err_buf : "a segment function failed";
    if (err_oom)
        throw oom_error(msg);
    throw std::runtime_error(msg);
}

namespace
{

// The seed notebook's ClampWithGrad: clamp forward; backward passes the gradient where it
// points back into the range.
struct ClampWithGrad : public torch::autograd::Function<ClampWithGrad> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, at::Tensor x, double lo,
                              double hi)
    {
        ctx->saved_data["lo"] = lo;
        ctx->saved_data["hi"] = hi;
        ctx->save_for_backward({x});
        return x.clamp(lo, hi);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        auto x = ctx->get_saved_variables()[0];
        double lo = ctx->saved_data["lo"].toDouble(), hi = ctx->saved_data["hi"].toDouble();
        auto g = grads[0];
        auto keep = (g * (x - x.clamp(lo, hi))) >= 0;
        return {g * keep, at::Tensor(), at::Tensor()};
    }
};

// The seed notebook's ReplaceGrad: the value of x_forward, the gradient of x_backward.
struct ReplaceGrad : public torch::autograd::Function<ReplaceGrad> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, at::Tensor fwd, at::Tensor bwd)
    {
        ctx->saved_data["shape"] = bwd.sizes().vec();
        return fwd.clone();
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        auto shape = ctx->saved_data["shape"].toIntVector();
        return {at::Tensor(), grads[0].sum_to_size(shape)};
    }
};

// Activation checkpointing: the forward pass runs a C function without recording its
// intermediate values and keeps only its input; the backward pass runs the function again on
// that input with recording on, and back-propagates through the rerun (run_segment).
struct Checkpoint : public torch::autograd::Function<Checkpoint> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, at::Tensor x, int64_t fn,
                              int64_t arg)
    {
        ctx->saved_data["fn"] = fn;
        ctx->saved_data["arg"] = arg;
        ctx->save_for_backward({x});
        at::NoGradGuard ng;
        return run_segment(reinterpret_cast<vqt_segment_fn>(fn), reinterpret_cast<void *>(arg), x);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        auto fn = reinterpret_cast<vqt_segment_fn>(ctx->saved_data["fn"].toInt());
        auto *arg = reinterpret_cast<void *>(ctx->saved_data["arg"].toInt());
        at::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
        at::Tensor y;
        {
            at::AutoGradMode on(true);
            y = run_segment(fn, arg, x);
        }
        if (!y.requires_grad())
            return {at::zeros_like(x), at::Tensor(), at::Tensor()};
        auto gx = torch::autograd::grad({y}, {x}, {grads[0]}, false, false, true);
        return {gx[0].defined() ? gx[0] : at::zeros_like(x), at::Tensor(), at::Tensor()};
    }
};

} // namespace

extern "C" {

/* ---- autograd ---- */

int vqt_set_requires_grad(vqt_tensor *t, bool on)
{
    GUARD(-1, {
        T(t);
        t->t.set_requires_grad(on);
        return 0;
    })
}

bool vqt_requires_grad(const vqt_tensor *t)
{
    GUARD(false, return T(t).requires_grad();)
}

int vqt_backward(const vqt_tensor *loss)
{
    GUARD(-1, {
        T(loss).backward();
        return 0;
    })
}

vqt_tensor *vqt_grad(const vqt_tensor *t)
{
    GUARD(nullptr, {
        at::Tensor g = T(t).grad();
        if (!g.defined())
            return (vqt_tensor *)nullptr;
        return wrap(g.clone());
    })
}

void vqt_grad_clear(vqt_tensor *t)
{
    try {
        if (t && t->t.defined() && t->t.grad().defined())
            t->t.mutable_grad() = at::Tensor();
    } catch (...) {
    }
}

int vqt_copy_(vqt_tensor *dst, const vqt_tensor *src)
{
    GUARD(-1, {
        at::NoGradGuard ng;
        T(dst);
        dst->t.copy_(T(src));
        return 0;
    })
}

vqt_tensor *vqt_clamp_with_grad(const vqt_tensor *x, double lo, double hi)
{
    TENSOR_OP(ClampWithGrad::apply(T(x), lo, hi))
}

vqt_tensor *vqt_replace_grad(const vqt_tensor *fwd, const vqt_tensor *bwd)
{
    TENSOR_OP(ReplaceGrad::apply(T(fwd), T(bwd)))
}

vqt_tensor *vqt_checkpoint(vqt_segment_fn fn, void *arg, const vqt_tensor *x)
{
    GUARD(nullptr, {
        const at::Tensor &in = T(x);
        if (!fn)
            throw std::runtime_error("vqt_checkpoint: no function");
        if (!at::GradMode::is_enabled() || !in.requires_grad()) // nothing to save memory on
            return wrap(run_segment(fn, arg, in));
        return wrap(
            Checkpoint::apply(in, reinterpret_cast<int64_t>(fn), reinterpret_cast<int64_t>(arg)));
    })
}

} // extern "C"

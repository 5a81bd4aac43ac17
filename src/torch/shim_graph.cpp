// Recorded functions (vqt_graphed, see shim.h): a function of one tensor whose forward and
// backward passes replay two CUDA graphs, after the pattern of PyTorch's
// make_graphed_callables: static input, output and gradient buffers, an autograd node whose
// forward copies the input in and replays the forward graph and whose backward copies the
// gradient in and replays the backward graph. The step is bound by the host's launching of
// operators on a GPU (docs/gpu.md), and one replay replaces hundreds of launches.
//
// The CUDA part is compiled only with VQT_WITH_CUDA_GRAPHS, which cmake/cuda.cmake defines after
// it has compiled this very file against the libtorch found (a libtorch whose graph API differs
// builds without graphs instead of failing). Everything else, the buffers, the autograd node and
// the rules for when a call replays, also runs on the CPU in the EMULATE mode, where tests check
// it against plain calls.

#include <ATen/record_function.h>
#include <torch/torch.h>
#if defined(VQT_WITH_CUDA_GRAPHS)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "torch/shim_internal.h"

using namespace vqt_detail;

namespace
{
std::atomic<int> graphs_mode{VQT_GRAPHS_AUTO};

// A replay must give the eager pass's numbers: the same kernels on the same inputs. The bound
// leaves room for a library that picks another algorithm under capture, not for wrong memory.
void check_close(const at::Tensor &got, const at::Tensor &want, const char *what)
{
    at::Tensor a = got.to(at::kFloat), b = want.to(at::kFloat);
    double scale = b.abs().max().item<double>(), diff = (a - b).abs().max().item<double>();
    if (!(diff <= 1e-3 * scale + 1e-6)) {
        char msg[160];
        std::snprintf(msg, sizeof msg, "a replay's %s differs from the eager pass's by %.3g", what,
                      diff);
        throw std::runtime_error(msg);
    }
}

// The pass of a recorded function running on this thread (PassWatch), and the first call in it
// that a CUDA graph cannot record (note_host_call).
thread_local bool in_pass = false;
thread_local const char *host_call = nullptr;

// ATen operators that wait for the device to learn a value or a size: capture fails at them.
// Watched by name, so that the CPU's emulation finds them before a device call does.
const char *const waiting_ops[] = {"aten::item",       "aten::_local_scalar_dense",
                                   "aten::nonzero",    "aten::masked_select",
                                   "aten::unique_dim", "aten::unique_consecutive",
                                   "aten::_unique",    "aten::_unique2",
                                   "aten::is_nonzero", "aten::equal"};

std::unique_ptr<at::ObserverContext> watch_op(const at::RecordFunction &fn)
{
    for (const char *op : waiting_ops)
        if (!std::strcmp(fn.name(), op)) {
            note_host_call(op);
            break;
        }
    return nullptr;
}

// Watches one pass of the function on this thread, when `on` (the backward pass's nodes that
// libtorch runs on its own threads, on CUDA, are not watched: there capture itself fails at a
// wait) and, through check(), fails it when it called what a graph cannot record.
class PassWatch
{
  public:
    explicit PassWatch(bool on) : was_in(in_pass), was_noted(host_call)
    {
        in_pass = on;
        host_call = nullptr;
        if (on)
            handle = at::addThreadLocalCallback(
                at::RecordFunctionCallback(watch_op).scopes({at::RecordScope::FUNCTION}));
    }
    ~PassWatch()
    {
        if (handle)
            at::removeCallback(handle);
        in_pass = was_in;
        host_call = was_noted;
    }
    PassWatch(const PassWatch &) = delete;
    PassWatch &operator=(const PassWatch &) = delete;
    void check() const
    {
        if (!host_call)
            return;
        if (!std::strncmp(host_call, "aten::", 6)) // waiting_ops
            throw std::runtime_error(std::string("the function calls ") + host_call +
                                     ", which waits for the device: a CUDA graph cannot "
                                     "record it");
        throw std::runtime_error(std::string("the function ") + host_call +
                                 ", which a CUDA graph cannot record");
    }

  private:
    bool was_in;
    const char *was_noted;
    at::CallbackHandle handle = 0;
};

// An autograd node held weakly: libtorch hands grad_fn() out as a std::shared_ptr before 2.14
// and as a c10::intrusive_ptr from 2.14 on.
using node_ptr = std::decay_t<decltype(std::declval<const at::Tensor &>().grad_fn())>;
template <class P> struct weak_node;
template <class N> struct weak_node<std::shared_ptr<N>> {
    std::weak_ptr<N> p;
    void set(const std::shared_ptr<N> &n)
    {
        p = n;
    }
    bool expired() const
    {
        return p.expired();
    }
};
template <class N, class Null> struct weak_node<c10::intrusive_ptr<N, Null>> {
    c10::weak_intrusive_ptr<N, Null> p{c10::intrusive_ptr<N, Null>()};
    void set(const c10::intrusive_ptr<N, Null> &n)
    {
        p = c10::weak_intrusive_ptr<N, Null>(n);
    }
    bool expired() const
    {
        return p.expired();
    }
};
} // namespace

void vqt_detail::note_host_call(const char *what)
{
    if (in_pass && !host_call)
        host_call = what;
}

struct vqt_graphed {
    vqt_segment_fn fn;
    void *arg;
    enum { NEW, READY, EAGER } state = NEW;
    vqt_graphs_mode recorded_as = VQT_GRAPHS_AUTO;
    std::string why;
    at::Tensor in, out, gout, gin; // the static buffers (out, gin: the pool's, when recorded)
    long long replays = 0, eagers = 0;
    bool bwd_done = true;        // the last replay's backward pass has run
    weak_node<node_ptr> last_fn; // the last replay's node (expired: dropped)
#if defined(VQT_WITH_CUDA_GRAPHS)
    std::unique_ptr<at::cuda::CUDAGraph> fwd, bwd;
#endif

    at::Tensor eager(const at::Tensor &x)
    {
        eagers++;
        return run_segment(fn, arg, x);
    }

    // fn on the static input, recording: what the forward graph captures. A pass that stands
    // for a capture (`captured`: the captures, and the emulation's) is watched for what a graph
    // cannot record (PassWatch); the eager ones before may set things up once (the decoder's
    // fused attention check reads values back at its first decode).
    void forward_pass(bool captured)
    {
        at::AutoGradMode on(true);
        PassWatch watch(captured);
        out = run_segment(fn, arg, in);
        watch.check();
    }

    // The input gradient for the static output gradient, through the last forward_pass's graph,
    // which it releases: what the backward graph captures.
    void backward_pass(bool captured)
    {
        PassWatch watch(captured);
        auto g = torch::autograd::grad({out}, {in}, {gout}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
        gin = g[0].defined() ? g[0] : at::zeros_like(in);
        watch.check();
    }

    // The first eager pass on the caller's stream: the buffers' shapes, and a warm-up.
    void first_pass(const at::Tensor &x)
    {
        in = x.detach().clone().requires_grad_(true);
        forward_pass(false);
        gout = at::ones_like(out);
        backward_pass(false);
    }

    bool pending() const
    {
        return !bwd_done && !last_fn.expired();
    }

    bool fits(const at::Tensor &x) const
    {
        return x.sizes() == in.sizes() && x.scalar_type() == in.scalar_type() &&
               x.device() == in.device();
    }

    void fail(const char *msg)
    {
        state = EAGER;
        const char *nl = std::strchr(msg, '\n');
        why.assign(msg, nl ? (size_t)(nl - msg) : std::strlen(msg));
        in = out = gout = gin = at::Tensor();
#if defined(VQT_WITH_CUDA_GRAPHS)
        fwd.reset();
        bwd.reset();
#endif
    }

#if defined(VQT_WITH_CUDA_GRAPHS)
    // Captures body into graph (in share's pool when given). A failure inside ends the capture
    // and clears CUDA's last error, so that no later launch check reports it.
    template <class F>
    static void capture(at::cuda::CUDAGraph &graph, at::cuda::CUDAGraph *share, F &&body)
    {
        if (share)
            graph.capture_begin(share->pool());
        else
            graph.capture_begin();
        try {
            body();
        } catch (...) {
            try {
                graph.capture_end();
            } catch (...) {
            }
            (void)cudaGetLastError();
            throw;
        }
        graph.capture_end();
    }

    // A warm-up pass on a side stream (capture needs one, and libraries set up their handles
    // and workspaces for it), the two captures sharing one pool, then the self-check. Between
    // the phases the allocator gives back its cached blocks: each phase's blocks are cached for
    // its own stream, or are the pool's, and a decoder's working set at 2048x2048 is 45 GiB.
    void record_cuda(const at::Tensor &x)
    {
        auto dev = (c10::DeviceIndex)x.device().index();
        c10::cuda::CUDAStream cur = c10::cuda::getCurrentCUDAStream(dev);
        first_pass(x);
        at::Tensor want_out = out.detach().clone(), want_gin = gin.clone();
        out = gin = at::Tensor();
        cur.synchronize();
        c10::cuda::CUDACachingAllocator::emptyCache();
        c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, dev);
        {
            c10::cuda::CUDAStreamGuard guard(side);
            forward_pass(false);
            backward_pass(false);
            out = gin = at::Tensor();
            side.synchronize();
            c10::cuda::CUDACachingAllocator::emptyCache();
            fwd = std::make_unique<at::cuda::CUDAGraph>();
            bwd = std::make_unique<at::cuda::CUDAGraph>();
            capture(*fwd, nullptr, [this] { forward_pass(true); });
            capture(*bwd, fwd.get(), [this] { backward_pass(true); });
            out = out.detach();
            side.synchronize();
        }
        fwd->replay();
        bwd->replay();
        check_close(out, want_out, "output");
        check_close(gin, want_gin, "input gradient");
    }
#endif

    void record(const at::Tensor &x, vqt_graphs_mode mode)
    {
        try {
            if (mode == VQT_GRAPHS_EMULATE) { // the eager pass, then one for the captures
                first_pass(x);
                forward_pass(true);
                backward_pass(true);
                out = gin = at::Tensor();
            } else if (!x.is_cuda()) {
                fail("the input is not on a CUDA device");
                return;
            } else {
#if defined(VQT_WITH_CUDA_GRAPHS)
                record_cuda(x);
#else
                fail("this build's libtorch offers no CUDA graphs (ATen/cuda/CUDAGraph.h)");
                return;
#endif
            }
            recorded_as = mode;
            state = READY;
        } catch (const std::exception &e) {
            fail(e.what());
#if defined(VQT_WITH_CUDA_GRAPHS)
            if (x.is_cuda()) // what a failed recording left cached (an allocation failure's)
                c10::cuda::CUDACachingAllocator::emptyCache();
#endif
        }
    }

    at::Tensor replay_forward(const at::Tensor &x)
    {
        in.detach().copy_(x);
#if defined(VQT_WITH_CUDA_GRAPHS)
        if (recorded_as != VQT_GRAPHS_EMULATE) {
            fwd->replay();
            return out.clone();
        }
#endif
        forward_pass(true);
        return out.detach().clone();
    }

    at::Tensor replay_backward(const at::Tensor &grad)
    {
        bwd_done = true;
        if (!grad.defined())
            return at::Tensor();
        gout.copy_(grad);
#if defined(VQT_WITH_CUDA_GRAPHS)
        if (recorded_as != VQT_GRAPHS_EMULATE) {
            bwd->replay();
            return gin.clone();
        }
#endif
        backward_pass(true);
        return gin.clone();
    }

    at::Tensor call(const at::Tensor &x);

    ~vqt_graphed()
    {
#if defined(VQT_WITH_CUDA_GRAPHS)
        if (fwd || bwd)
            (void)cudaDeviceSynchronize(); // no replay may still use the pool it releases
#endif
    }
};

namespace
{
// The autograd node of a replay: its forward and backward passes are the graphs'.
struct GraphedFn : public torch::autograd::Function<GraphedFn> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, at::Tensor x, int64_t gp)
    {
        ctx->saved_data["g"] = gp;
        return reinterpret_cast<vqt_graphed *>((intptr_t)gp)->replay_forward(x);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        auto *g = reinterpret_cast<vqt_graphed *>((intptr_t)ctx->saved_data["g"].toInt());
        return {g->replay_backward(grads[0]), at::Tensor()};
    }
};
} // namespace

at::Tensor vqt_graphed::call(const at::Tensor &x)
{
    auto mode = (vqt_graphs_mode)graphs_mode.load();
    if (mode == VQT_GRAPHS_OFF || !at::GradMode::is_enabled() || !x.requires_grad())
        return eager(x);
    if (state == NEW)
        record(x, mode);
    if (state != READY || !fits(x) || pending())
        return eager(x);
    at::Tensor y = GraphedFn::apply(x, (int64_t)(intptr_t)this);
    bwd_done = false;
    last_fn.set(y.grad_fn());
    replays++;
    return y;
}

extern "C" {

void vqt_set_graphs_mode(vqt_graphs_mode mode)
{
    graphs_mode.store(mode);
}

vqt_graphs_mode vqt_get_graphs_mode(void)
{
    return (vqt_graphs_mode)graphs_mode.load();
}

bool vqt_cuda_graphs_built(void)
{
#if defined(VQT_WITH_CUDA_GRAPHS)
    return true;
#else
    return false;
#endif
}

vqt_graphed *vqt_graphed_new(vqt_segment_fn fn, void *arg)
{
    if (!fn) {
        set_error("vqt_graphed_new: no function");
        return nullptr;
    }
    GUARD(nullptr, {
        auto *g = new vqt_graphed;
        g->fn = fn;
        g->arg = arg;
        return g;
    })
}

vqt_tensor *vqt_graphed_call(vqt_graphed *g, const vqt_tensor *x)
{
    if (!g) {
        set_error("vqt_graphed_call: no recorder");
        return nullptr;
    }
    TENSOR_OP(g->call(T(x)))
}

void vqt_graphed_counts(const vqt_graphed *g, long long *replays, long long *eager)
{
    if (replays)
        *replays = g ? g->replays : 0;
    if (eager)
        *eager = g ? g->eagers : 0;
}

const char *vqt_graphed_why(const vqt_graphed *g)
{
    return g && g->state == vqt_graphed::EAGER ? g->why.c_str() : nullptr;
}

void vqt_graphed_free(vqt_graphed *g)
{
    try {
        delete g;
    } catch (...) {
    }
}

} // extern "C"

// Step profiling for the shim (see "profiling" in shim.h): marks timed by CUDA events on the
// device's current stream, or by the host clock on the CPU, where every operator has finished
// when it returns.
#if defined(VQT_WITH_CUDART) && defined(VQT_WITH_CUDA_HEADERS) && \
    __has_include(<c10/cuda/CUDAStream.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#define VQT_PROFILE_EVENTS 1
#endif

#include <ATen/record_function.h>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "torch/shim_internal.h"
#include "util/clock.h"

namespace
{

constexpr int max_marks = 64; // marks per step; later ones are dropped (and counted)

// Outermost ATen operators dispatched so far on every thread while a profile lives: those the
// C side asks for and the backward pass's nodes, not the calls they make inside (CPU kernels
// make many: a small batched matmul selects each matrix). On a GPU each costs host time, which
// is what limits a step that the device finishes first.
std::atomic<long long> ops_dispatched{0};
thread_local int op_depth = 0;

// The profile that may record operators (vqt_profile_want_kernels): libtorch's profiler is one
// per process.
std::atomic<vqt_profile *> kernels_owner{nullptr};

std::unique_ptr<at::ObserverContext> op_enter(const at::RecordFunction &)
{
    if (op_depth++ == 0)
        ops_dispatched.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
}

void op_leave(const at::RecordFunction &, at::ObserverContext *)
{
    op_depth--;
}

} // namespace

struct vqt_profile {
    vqt_device dev;
    int nstages;
    std::vector<double> device_s, host_s; // totals per stage over the finished steps
    std::vector<long long> hits;          // marks per stage over the finished steps
    std::vector<long long> ops;           // operators dispatched per stage, finished steps
    // Memory above the step's start, the largest over the counted steps: held at the stage's
    // end, and the highest within it (the device's peak is reset at every mark, so the run's
    // own peak is folded into run_peak first).
    std::vector<long long> held, high;
    long long run_peak = 0;
    at::CallbackHandle counter = 0;
    int steps = 0, dropped = 0;
    // The operator profiler (vqt_profile_want_kernels): asked for, recording, and the counted
    // steps it has recorded whole.
    bool kernels_wanted = false, kernels_on = false;
    int kernel_steps = 0;
    std::string kernels_error; // why the recording could not start (the run goes on without)
    // The step in flight: mark i ends stage stage[i]; mark 0 is the step's start.
    int n = 0;
    int stage[max_marks + 1];
    double host_at[max_marks + 1];
    long long ops_at[max_marks + 1];
    long long mem_at[max_marks + 1], peak_at[max_marks + 1];
#ifdef VQT_PROFILE_EVENTS
    cudaEvent_t ev[max_marks + 1] = {};
#endif
};

namespace
{

// Records mark number p->n (stage `stage`, -1 for the start); false when the step is full.
bool record(vqt_profile *p, int stage)
{
    if (p->n > max_marks) {
        p->dropped++;
        return false;
    }
    p->stage[p->n] = stage;
    p->host_at[p->n] = vqc_now();
    p->ops_at[p->n] = ops_dispatched.load(std::memory_order_relaxed);
    // The allocator's figures are the host's: what was allocated when the operators so far
    // were queued, which is the order the device runs them in.
    long long peak = vqt_peak_bytes(p->dev);
    p->run_peak = peak > p->run_peak ? peak : p->run_peak;
    p->peak_at[p->n] = peak;
    p->mem_at[p->n] = vqt_allocated_bytes(p->dev);
    vqt_reset_peak(p->dev);
#ifdef VQT_PROFILE_EVENTS
    if (p->dev.type == VQT_DEVICE_CUDA) {
        cudaStream_t s = c10::cuda::getCurrentCUDAStream((c10::DeviceIndex)p->dev.index).stream();
        if (cudaEventRecord(p->ev[p->n], s) != cudaSuccess)
            throw std::runtime_error("cudaEventRecord failed");
    }
#endif
    p->n++;
    return true;
}

} // namespace

using namespace vqt_detail;

extern "C" {

vqt_profile *vqt_profile_new(vqt_device dev, int nstages)
{
    GUARD(nullptr, {
        if (nstages <= 0 || nstages > 256)
            throw std::runtime_error("profile: stage count out of range");
        auto *p = new vqt_profile();
        p->dev = dev;
        p->nstages = nstages;
        p->device_s.assign((size_t)nstages, 0.0);
        p->host_s.assign((size_t)nstages, 0.0);
        p->hits.assign((size_t)nstages, 0);
        p->ops.assign((size_t)nstages, 0);
        p->held.assign((size_t)nstages, 0);
        p->high.assign((size_t)nstages, 0);
        p->counter = at::addGlobalCallback(
            at::RecordFunctionCallback(op_enter, op_leave).scopes({at::RecordScope::FUNCTION}));
#ifdef VQT_PROFILE_EVENTS
        if (dev.type == VQT_DEVICE_CUDA)
            for (auto &e : p->ev)
                if (cudaEventCreate(&e) != cudaSuccess) {
                    vqt_profile_free(p);
                    throw std::runtime_error("profile: cudaEventCreate failed");
                }
#else
        if (dev.type == VQT_DEVICE_CUDA)
            std::fprintf(stderr, "vqclip: warning: built without the CUDA runtime headers: the "
                                 "profile's device times are host times\n");
#endif
        return p;
    })
}

void vqt_profile_free(vqt_profile *p)
{
    if (!p)
        return;
    if (p->kernels_on)
        vqt_detail::kernels_abort();
    vqt_profile *self = p;
    kernels_owner.compare_exchange_strong(self, nullptr);
    if (p->counter)
        at::removeCallback(p->counter);
#ifdef VQT_PROFILE_EVENTS
    for (auto &e : p->ev)
        if (e)
            cudaEventDestroy(e);
#endif
    delete p;
}

int vqt_profile_begin(vqt_profile *p)
{
    GUARD(-1, {
        p->n = 0;
        record(p, -1);
        return 0;
    })
}

int vqt_profile_mark(vqt_profile *p, int stage)
{
    GUARD(-1, {
        if (stage < 0 || stage >= p->nstages)
            throw std::runtime_error("profile: no such stage");
        if (p->n == 0)
            throw std::runtime_error("profile: mark before vqt_profile_begin");
        record(p, stage);
        return 0;
    })
}

int vqt_profile_mark_on_grad(vqt_profile *p, vqt_tensor *t, int stage)
{
    GUARD(-1, {
        if (stage < 0 || stage >= p->nstages)
            throw std::runtime_error("profile: no such stage");
        at::Tensor x = T(t);
        if (!x.requires_grad())
            throw std::runtime_error("profile: the tensor records no gradient");
        // The autograd engine calls this once the gradient of x is complete; it runs on the
        // engine's thread while the caller waits in vqt_backward, so no mark races it.
        x.register_hook([p, stage](const at::TensorBase &) {
            try {
                record(p, stage);
            } catch (...) {
                p->dropped++;
            }
        });
        return 0;
    })
}

int vqt_profile_end(vqt_profile *p, bool count)
{
    GUARD(-1, {
        if (p->n == 0)
            throw std::runtime_error("profile: end before vqt_profile_begin");
#ifdef VQT_PROFILE_EVENTS
        if (p->dev.type == VQT_DEVICE_CUDA && cudaEventSynchronize(p->ev[p->n - 1]) != cudaSuccess)
            throw std::runtime_error("cudaEventSynchronize failed");
#endif
        for (int i = 1; count && i < p->n; i++) {
            size_t s = (size_t)p->stage[i];
            double host = p->host_at[i] - p->host_at[i - 1], dev = host;
#ifdef VQT_PROFILE_EVENTS
            float ms = 0;
            if (p->dev.type == VQT_DEVICE_CUDA) {
                if (cudaEventElapsedTime(&ms, p->ev[i - 1], p->ev[i]) != cudaSuccess)
                    throw std::runtime_error("cudaEventElapsedTime failed");
                dev = ms * 1e-3;
            }
#endif
            p->device_s[s] += dev;
            p->host_s[s] += host;
            p->ops[s] += p->ops_at[i] - p->ops_at[i - 1];
            p->hits[s]++;
            p->held[s] = std::max(p->held[s], p->mem_at[i] - p->mem_at[0]);
            p->high[s] = std::max(p->high[s], p->peak_at[i] - p->mem_at[0]);
        }
        if (count)
            p->steps++;
        p->n = 0;
        // The recording starts once a counted step is over: the first steps record the CUDA
        // graphs and set libraries up, which a table per step would mix in.
        if (count && p->kernels_on)
            p->kernel_steps++;
        if (count && p->kernels_wanted && !p->kernels_on) {
            p->kernels_wanted = false; // one recording per profile
            try {
                vqt_detail::kernels_start(p->dev);
                p->kernels_on = true;
            } catch (const std::exception &e) {
                p->kernels_error = e.what(); // the tables' loss, not the step's
                p->kernels_error.resize(std::min<size_t>(p->kernels_error.size(), 300));
            }
        }
        return 0;
    })
}

int vqt_profile_get(const vqt_profile *p, int stage, double *device_s, double *host_s)
{
    if (!p || stage < 0 || stage >= p->nstages)
        return -1;
    *device_s = p->device_s[(size_t)stage];
    *host_s = p->host_s[(size_t)stage];
    return p->steps;
}

int vqt_profile_memory(const vqt_profile *p, int stage, long long *held, long long *high)
{
    if (!p || stage < 0 || stage >= p->nstages)
        return -1;
    *held = p->held[(size_t)stage];
    *high = p->high[(size_t)stage];
    return p->steps;
}

long long vqt_profile_peak_bytes(const vqt_profile *p)
{
    if (!p)
        return 0;
    long long now = vqt_peak_bytes(p->dev);
    return now > p->run_peak ? now : p->run_peak;
}

long long vqt_profile_ops(const vqt_profile *p, int stage)
{
    if (!p || stage < 0 || stage >= p->nstages)
        return -1;
    return p->ops[(size_t)stage];
}

bool vqt_profile_uses_events(const vqt_profile *p)
{
#ifdef VQT_PROFILE_EVENTS
    return p && p->dev.type == VQT_DEVICE_CUDA;
#else
    (void)p;
    return false;
#endif
}

int vqt_profile_want_kernels(vqt_profile *p)
{
    GUARD(-1, {
        vqt_profile *none = nullptr;
        if (!kernels_owner.compare_exchange_strong(none, p) && none != p)
            throw std::runtime_error("another profile records operators already");
        p->kernels_wanted = true;
        return 0;
    })
}

int vqt_profile_kernels(vqt_profile *p, int top, char **text)
{
    GUARD(-1, {
        *text = nullptr;
        if (!p->kernels_error.empty())
            throw std::runtime_error("the operator profiler did not start: " + p->kernels_error);
        if (!p->kernels_on)
            return 0;
        p->kernels_on = false;
        int steps = p->kernel_steps;
        std::string t = vqt_detail::kernels_stop(steps, top > 0 ? top : 1);
        if (steps <= 0)
            return 0;
        *text = (char *)std::malloc(t.size() + 1);
        if (!*text)
            throw std::bad_alloc();
        std::memcpy(*text, t.c_str(), t.size() + 1);
        return steps;
    })
}

long long vqt_handles_made(void)
{
    return vqt_detail::handles_made.load(std::memory_order_relaxed);
}

} // extern "C"

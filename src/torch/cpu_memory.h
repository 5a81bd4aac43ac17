// CPU memory for the shim: zero-copy views, and the process-wide malloc settings of vqt_init
// (see shim.h). C++, included by shim.cpp only.
#ifndef VQC_TORCH_CPU_MEMORY_H
#define VQC_TORCH_CPU_MEMORY_H

#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "torch/shim_internal.h"

#ifdef __GLIBC__
#include <malloc.h>
#include <sys/mman.h>
#endif

namespace vqt_memory
{

// A CPU tensor viewing `data` (empty strides: contiguous); release(ctx) runs once, when the
// storage dies (see vqt_from_blob).
inline at::Tensor view_blob(const void *data, at::ScalarType st, at::IntArrayRef sizes,
                            at::IntArrayRef strides, void (*release)(void *), void *ctx)
{
    auto deleter = [release, ctx](void *) {
        if (release)
            release(ctx);
    };
    if (strides.empty() && !sizes.empty())
        return at::from_blob(const_cast<void *>(data), sizes, deleter, st);
    return at::from_blob(const_cast<void *>(data), sizes, strides, deleter, st);
}

#ifdef __GLIBC__
// What HeapAllocator's tensors hold now and at most since the last reset, process-wide: the
// CPU's counterpart of the CUDA caching allocator's allocated-bytes statistics, so that a CPU
// run reports its peak and the memory planner can be checked against it. Each block records
// its size beside its start, so that freeing needs no lookup.
struct HeapCount {
    std::atomic<int64_t> current{0}, peak{0};
    std::atomic<int64_t> limit{0}; // vqt_set_memory_limit's (0: none)
};
inline HeapCount &heap_count()
{
    static HeapCount c;
    return c;
}

inline void heap_free(void *p)
{
    if (!p)
        return;
    heap_count().current.fetch_sub((int64_t)((size_t *)p)[-2], std::memory_order_relaxed);
    free(((void **)p)[-1]);
}

// libtorch's CPU allocator takes memory with posix_memalign(64). glibc serves an aligned
// request by carving it out of a block 64 + 32 bytes larger, so a freed tensor leaves a hole
// just too small for the next tensor of the same size: with the heap kept (below) and every
// step allocating the same sizes, the heap grows far beyond the live memory (docs/gpu.md). This
// allocator aligns inside a plain malloc block of size + 80 instead, so that a freed block
// fits the next request of the same size exactly; the block's start and the tensor's size are
// stored just before the aligned address (data and context stay the same pointer, as
// libtorch's raw_allocate, used by oneDNN, requires). When malloc fails it throws std::bad_alloc,
// and a request beyond vqt_set_memory_limit's limit an oom_error: the shim records either as an
// allocation failure (vqt_last_error_oom).
//
// libtorch changed at::Allocator's interface in 2.x: allocate() lost its const and copy_data()
// became pure virtual. Both forms of allocate() are declared here, without `override`, so that
// whichever one the libtorch at hand declares virtual is the one overridden (the other is a
// plain overload), and copy_data() is an extra member where the base class has none.
struct HeapAllocator final : public at::Allocator {
    static constexpr size_t kAlign = 64;
    static at::DataPtr take(size_t n)
    {
        if (n == 0)
            return {nullptr, nullptr, &heap_free, at::Device(at::kCPU)};
        const size_t head = sizeof(void *) + sizeof(size_t);
        // Counted first, so that two threads cannot both pass the limit with one block each.
        HeapCount &c = heap_count();
        int64_t now = c.current.fetch_add((int64_t)n, std::memory_order_relaxed) + (int64_t)n;
        int64_t limit = c.limit.load(std::memory_order_relaxed);
        if (limit > 0 && now > limit) {
            c.current.fetch_sub((int64_t)n, std::memory_order_relaxed);
            char msg[160];
            std::snprintf(msg, sizeof msg,
                          "CPU: %.1f MiB more would exceed the memory limit of %.1f MiB",
                          (double)n / 1048576.0, (double)limit / 1048576.0);
            throw vqt_detail::oom_error(msg);
        }
        void *raw = malloc(n + kAlign + head);
        if (!raw) {
            c.current.fetch_sub((int64_t)n, std::memory_order_relaxed);
            throw std::bad_alloc();
        }
        uintptr_t p = ((uintptr_t)raw + head + kAlign - 1) & ~(uintptr_t)(kAlign - 1);
        ((void **)p)[-1] = raw;
        ((size_t *)p)[-2] = n;
        int64_t top = c.peak.load(std::memory_order_relaxed);
        while (now > top && !c.peak.compare_exchange_weak(top, now, std::memory_order_relaxed))
            ;
        return {(void *)p, (void *)p, &heap_free, at::Device(at::kCPU)};
    }
    at::DataPtr allocate(size_t n) // libtorch 2.x
    {
        return take(n);
    }
    at::DataPtr allocate(size_t n) const // libtorch 1.x
    {
        return take(n);
    }
    void copy_data(void *dest, const void *src, std::size_t count) const
    {
        std::memcpy(dest, src, count);
    }
    at::DeleterFnPtr raw_deleter() const
    {
        return &heap_free;
    }
};
#endif

// Makes glibc's malloc keep what it gets from the kernel (no mmap'ed chunks, which go back on
// free, and no trimming of the heap), routes libtorch's CPU tensors through HeapAllocator, and
// asks for transparent huge pages on the first GiB the heap grows into: an address-space-only
// reservation malloc'ed, advised and freed again (it stays in the heap as free space since
// trimming is off), so that a tensor's first touch faults in huge pages instead of small ones,
// which is cheaper per byte (docs/gpu.md). Nothing is made resident here. Called once, by
// vqt_init.
inline void tune_malloc()
{
#ifdef __GLIBC__
    static HeapAllocator heap_allocator;
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    c10::SetCPUAllocator(&heap_allocator, 0);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t reserve = (size_t)1 << 30, huge = (size_t)2 << 20;
    char *p = (char *)malloc(reserve);
    if (p) {
        uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1);
        uintptr_t hi = ((uintptr_t)p + reserve) & ~(uintptr_t)(huge - 1);
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        free(p);
    }
#endif
#endif
}

} // namespace vqt_memory

#endif

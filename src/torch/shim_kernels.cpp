// Operator and kernel tables of profiled steps, from libtorch's own profiler (Kineto): which
// kernels the device ran and for how long, and where the host's time went, operator by
// operator. The stage table (shim_profile.cpp) says which stage is slow; this says why: a
// GroupNorm statistics kernel, layout transposes, the device idle while the host launches.
//
// libtorch's profiler API is its least stable one. cmake/cuda.cmake compiles this file once
// against a CUDA libtorch before the build; where it does not compile, the build defines
// VQT_NO_KERNEL_TABLES and takes the stub at the end instead of failing: a run then logs why
// it has no tables, and the rest of the build (the lent GPU machine's one call) is unharmed.
#include <stdexcept>
#include <string>

#include "torch/shim_internal.h"

#ifndef VQT_NO_KERNEL_TABLES
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <vector>

namespace
{

namespace kp = torch::autograd::profiler;
namespace ki = torch::profiler::impl;

bool active = false; // one profiler per process: libtorch keeps its state globally

// Kineto's activity types (libkineto::ActivityType, the same first values from libtorch 1.13
// to 2.x) of the annotations, which cover operators or kernels and would count them twice.
constexpr uint8_t user_annotation = 1, gpu_user_annotation = 2;

// libtorch 2.x gives event times in nanoseconds (startNs), 1.13 in microseconds (startUs).
template <class E> auto start_ns(const E &e, int) -> decltype(e.startNs())
{
    return e.startNs();
}
template <class E> uint64_t start_ns(const E &e, long)
{
    return (uint64_t)e.startUs() * 1000;
}
template <class E> auto duration_ns(const E &e, int) -> decltype(e.durationNs())
{
    return e.durationNs();
}
template <class E> uint64_t duration_ns(const E &e, long)
{
    return (uint64_t)e.durationUs() * 1000;
}

// A kernel's name without its parameter list and return type (CUDA kernels come as C++
// signatures), at most 140 characters: the template arguments that name the types stay.
std::string short_name(std::string s)
{
    if (!s.empty() && s.back() == ')') {
        int depth = 0;
        for (size_t i = s.size(); i-- > 0;) {
            depth += s[i] == ')' ? 1 : s[i] == '(' ? -1 : 0;
            if (depth == 0) {
                if (i > 0)
                    s.resize(i);
                break;
            }
        }
    }
    if (s.compare(0, 5, "void ") == 0)
        s.erase(0, 5);
    if (s.size() > 140)
        s = s.substr(0, 137) + "...";
    return s;
}

// A CUDA runtime or driver call (cudaLaunchKernel, cudaGraphLaunch, cuLaunchKernel,
// cudaStreamSynchronize ...), which Kineto records from CUPTI apart from the operators, and
// links to the operator that made it only where a correlation id says so (libtorch versions
// differ in which thread they then give it). They are tabled on their own, outside the
// operators' nesting: their time lies within the operators' own.
bool runtime_call(const std::string &n)
{
    return n.compare(0, 4, "cuda") == 0 ||
           (n.size() > 2 && n[0] == 'c' && n[1] == 'u' && std::isupper((unsigned char)n[2]));
}

struct Row {
    double ns = 0;
    long long calls = 0;
};

struct Span {
    uint64_t start, end;
    std::string name;
};

// The rows with the most time, largest first, as "  ms/step  share  calls/step  name" lines.
void append_table(std::string &out, const std::map<std::string, Row> &rows, double total_ns,
                  int steps, int top)
{
    std::vector<std::pair<std::string, Row>> v(rows.begin(), rows.end());
    std::sort(v.begin(), v.end(),
              [](const auto &a, const auto &b) { return a.second.ns > b.second.ns; });
    char line[256];
    std::snprintf(line, sizeof line, "%10s %6s %10s  %s\n", "ms/step", "share", "calls/step",
                  "name");
    out += line;
    for (size_t i = 0; i < v.size() && (int)i < top; i++) {
        std::snprintf(line, sizeof line, "%10.3f %5.1f%% %10.1f  %s\n",
                      v[i].second.ns * 1e-6 / steps,
                      total_ns > 0 ? 100.0 * v[i].second.ns / total_ns : 0.0,
                      (double)v[i].second.calls / steps, short_name(v[i].first).c_str());
        out += line;
    }
    if ((int)v.size() > top) {
        double rest = 0;
        long long calls = 0;
        for (size_t i = (size_t)top; i < v.size(); i++) {
            rest += v[i].second.ns;
            calls += v[i].second.calls;
        }
        std::snprintf(line, sizeof line, "%10.3f %5.1f%% %10.1f  (%zu more names)\n",
                      rest * 1e-6 / steps, total_ns > 0 ? 100.0 * rest / total_ns : 0.0,
                      (double)calls / steps, v.size() - (size_t)top);
        out += line;
    }
}

// `rows` under a heading that gives their total per step: before + the milliseconds + after.
void append_section(std::string &out, const std::string &before, const std::string &after,
                    const std::map<std::string, Row> &rows, int steps, int top)
{
    double sum = 0;
    for (const auto &r : rows)
        sum += r.second.ns;
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", sum * 1e-6 / steps);
    out += before + ms + after + "\n";
    append_table(out, rows, sum, steps, top);
}

// The time covered by at least one of the spans (sorted by start): kernels of several streams
// may overlap, and the device is busy while any runs.
double covered_ns(const std::vector<Span> &s)
{
    double sum = 0;
    uint64_t from = 0, to = 0;
    bool open = false;
    for (const Span &x : s) {
        if (open && x.start <= to) {
            to = std::max(to, x.end);
            continue;
        }
        if (open)
            sum += (double)(to - from);
        from = x.start;
        to = x.end;
        open = true;
    }
    return open ? sum + (double)(to - from) : sum;
}

// Each host operator's own time: its span less those of the operators it called (the events
// of one thread nest; the innermost open one is the caller).
std::map<std::string, Row> self_times(std::map<uint64_t, std::vector<Span>> &threads)
{
    std::map<std::string, Row> rows;
    for (auto &th : threads) {
        std::vector<Span> &ev = th.second;
        std::sort(ev.begin(), ev.end(), [](const Span &a, const Span &b) {
            return a.start != b.start ? a.start < b.start : a.end > b.end;
        });
        std::vector<std::pair<const Span *, double>> open; // event, its own time so far
        auto close = [&]() {
            Row &r = rows[open.back().first->name];
            r.ns += std::max(0.0, open.back().second);
            r.calls++;
            open.pop_back();
        };
        for (const Span &e : ev) {
            // those that end before e does are not its callers (they ended before it began,
            // or, within the clock's resolution, overlap it without nesting)
            while (!open.empty() && open.back().first->end < e.end)
                close();
            if (!open.empty())
                open.back().second -= (double)(e.end - e.start);
            open.push_back({&e, (double)(e.end - e.start)});
        }
        while (!open.empty())
            close();
    }
    return rows;
}

} // namespace

namespace vqt_detail
{

void kernels_start(vqt_device dev)
{
    if (active)
        throw std::runtime_error("the operator profiler is already recording");
    std::set<ki::ActivityType> acts{ki::ActivityType::CPU};
    if (dev.type == VQT_DEVICE_CUDA)
        acts.insert(ki::ActivityType::CUDA);
    ki::ProfilerConfig cfg(ki::ProfilerState::KINETO);
    kp::prepareProfiler(cfg, acts);
    kp::enableProfiler(cfg, acts);
    active = true;
}

void kernels_abort() noexcept
{
    if (!active)
        return;
    active = false;
    try {
        kp::disableProfiler();
    } catch (...) {
    }
}

std::string kernels_stop(int steps, int top)
{
    if (!active)
        throw std::runtime_error("the operator profiler is not recording");
    active = false;
    std::unique_ptr<kp::ProfilerResult> res = kp::disableProfiler();
    if (!res)
        throw std::runtime_error("libtorch's profiler returned no result");
    steps = steps > 0 ? steps : 1;
    std::map<std::string, Row> dev_rows;
    std::vector<Span> dev_spans;
    std::map<std::string, Row> runtime_rows;
    std::map<uint64_t, std::vector<Span>> host;
    for (const kp::KinetoEvent &e : res->events()) {
        uint64_t t0 = start_ns(e, 0), d = duration_ns(e, 0);
        std::string name = e.name();
        if (e.activityType() == user_annotation || e.activityType() == gpu_user_annotation)
            continue; // spans of a caller's naming around operators or kernels: not work
        if (e.deviceType() != c10::DeviceType::CPU) {
            Row &r = dev_rows[name];
            r.ns += (double)d;
            r.calls++;
            dev_spans.push_back({t0, t0 + d, std::string()});
        } else if (runtime_call(name)) {
            Row &r = runtime_rows[name];
            r.ns += (double)d;
            r.calls++;
        } else if (!e.isAsync()) {
            host[e.startThreadId()].push_back({t0, t0 + d, name});
        }
    }
    std::string out;
    char line[256];
    if (dev_spans.empty()) {
        out += "device: no kernels recorded (the CPU, or no CUPTI for libtorch's profiler)\n";
    } else {
        std::sort(dev_spans.begin(), dev_spans.end(),
                  [](const Span &a, const Span &b) { return a.start < b.start; });
        double sum = 0, span = (double)(dev_spans.back().end - dev_spans.front().start);
        for (const auto &r : dev_rows)
            sum += r.second.ns;
        for (const Span &s : dev_spans)
            span = std::max(span, (double)(s.end - dev_spans.front().start));
        std::snprintf(line, sizeof line,
                      "device: %.1f kernels, copies and sets per step, %.3f ms of them per step, "
                      "the device busy %.3f of the %.3f ms per step from the first to the last\n",
                      (double)dev_spans.size() / steps, sum * 1e-6 / steps,
                      covered_ns(dev_spans) * 1e-6 / steps, span * 1e-6 / steps);
        out += line;
        append_table(out, dev_rows, sum, steps, top);
    }
    append_section(out, "host: ",
                   " ms per step inside operators (each one's own time, without the operators "
                   "it called), " +
                       std::to_string(host.size()) + " threads",
                   self_times(host), steps, top);
    if (!runtime_rows.empty())
        append_section(out, "host: ",
                       " ms per step in CUDA runtime and driver calls (within the operators' "
                       "times above: launches, copies, waits)",
                       runtime_rows, steps, top);
    return out;
}

} // namespace vqt_detail

#else // VQT_NO_KERNEL_TABLES: libtorch's profiler API did not compile here (cmake said why)

namespace vqt_detail
{

void kernels_start(vqt_device)
{
    throw std::runtime_error("libtorch's profiler API did not compile with "
                             "src/torch/shim_kernels.cpp in this build (cmake's output says why)");
}

void kernels_abort() noexcept {}

std::string kernels_stop(int, int)
{
    throw std::runtime_error("the operator profiler is not recording");
}

} // namespace vqt_detail

#endif

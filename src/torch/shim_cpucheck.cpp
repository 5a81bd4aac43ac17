// A check, once per process, that libtorch's CPU convolutions compute right, and the way round
// them when they do not (see vqt_cpu_conv_check in shim.h).
//
// Why: Debian 13's libtorch 2.6 (with its system oneDNN 3.7) computes wrong input gradients for
// float32 convolutions in NCHW whose output channels are not a multiple of the kernel's block
// (16 on AVX-512), from 64 input channels on, on AVX-512 CPUs; the error changes from run to
// run, as if the padding of the weights' last block were left as memory held it (docs/gpu.md).
// The VQGAN decoder's last convolution (128 to 3 channels) is one, so every step's gradient
// would be wrong, silently. Its bfloat16 convolutions go wrong too. libtorch's own convolutions
// (im2col and a matrix product) are right there; they are slower, so they are taken only where
// the check fails.

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "torch/shim_internal.h"
extern "C" {
#include "util/env.h"
#include "util/error.h"
}

namespace
{

std::string why_bad;     // what the check found wrong; empty when all was right
std::once_flag once;     // the check, once per process
std::atomic<int> rc{-2}; // its outcome (vqt_cpu_conv_check); -2 until it has run

// Relative error of a float32 (or bfloat16) convolution's output and input gradient against
// float64, for small whole numbers in x, w and the output gradient, which every type holds
// exactly.
double conv_error(int64_t ic, int64_t oc, int64_t hw, at::ScalarType t)
{
    auto whole = [](std::vector<int64_t> s, int64_t seed) {
        int64_t n = 1;
        for (int64_t d : s)
            n *= d;
        at::Tensor v = at::arange(n, at::kDouble);
        return (v * (double)seed).remainder(7.0).sub(3.0).reshape(s);
    };
    at::Tensor x = whole({1, ic, hw, hw}, 5), w = whole({oc, ic, 3, 3}, 3);
    at::Tensor g = whole({1, oc, hw, hw}, 2);
    at::Tensor xd = x.clone().requires_grad_(true);
    at::conv2d(xd, w, {}, 1, 1).backward(g);
    at::Tensor yd = at::conv2d(x, w, {}, 1, 1);
    {
        // memory full of NaN just given back, so that a block left unwritten shows
        at::Tensor poison = at::full({4 * oc * ic * 9 + 4096}, (double)NAN, at::kFloat);
    }
    at::Tensor xt = x.to(t).requires_grad_(true);
    at::Tensor y = at::conv2d(xt, w.to(t), {}, 1, 1);
    y.backward(g.to(t));
    auto rel = [](const at::Tensor &a, const at::Tensor &b) {
        double d = (a.to(at::kDouble) - b).abs().max().item<double>();
        return std::isfinite(d) ? d / std::max(b.abs().max().item<double>(), 1.0) : 1e30;
    };
    return std::max(rel(y, yd), rel(xt.grad(), xd.grad()));
}

// What is wrong, or empty. bfloat16 adds in a wider type but rounds each result: whole numbers up
// to 256 are exact, so the products of numbers below 4 over 9 taps and these channel counts stay
// within bfloat16's rounding of 2^-8 relative.
std::string first_wrong()
{
    static const int64_t shapes[][3] = {{64, 3, 4}, {4, 4, 8}};
    for (auto &s : shapes) {
        double e32 = conv_error(s[0], s[1], s[2], at::kFloat), e16 = 0;
        try { // bfloat16 is for the tests' emulation of a GPU's fast path
            e16 = conv_error(s[0], s[1], s[2], at::kBFloat16);
        } catch (const std::exception &) {
        }
        char buf[200];
        if (e32 > 1e-6 || e16 > 1.0 / 64) {
            std::snprintf(buf, sizeof buf,
                          "a 3x3 convolution from %lld to %lld channels is off by %.3g in "
                          "float32, %.3g in bfloat16",
                          (long long)s[0], (long long)s[1], e32, e16);
            return buf;
        }
    }
    return std::string();
}

} // namespace

extern "C" {

int vqt_cpu_conv_check(const char **why)
{
    std::call_once(once, [] {
        static const char *const off[] = {"0", "1", nullptr};
        if (vqc_env_choice("VQCLIP_ONEDNN", off) == 0) {
            // asked for: no check, no warning, the same path a failed check takes
            why_bad = "VQCLIP_ONEDNN=0";
            at::globalContext().setUserEnabledMkldnn(false);
            rc = 1;
            return;
        }
        try {
            at::AutoGradMode on(true);
            why_bad = first_wrong();
            if (why_bad.empty()) {
                rc = 0;
                return;
            }
            at::globalContext().setUserEnabledMkldnn(false);
            std::string again = first_wrong();
            rc = again.empty() ? 1 : -1;
            vqc_log(VQC_LOG_WARN,
                    again.empty()
                        ? "libtorch's CPU convolutions (oneDNN) compute wrong results here (%s): "
                          "using libtorch's own instead, which are right and slower"
                        : "libtorch's CPU convolutions compute wrong results here (%s), with "
                          "oneDNN and without: CPU results cannot be trusted",
                    why_bad.c_str());
        } catch (const std::exception &e) {
            why_bad = std::string("the check failed: ") + e.what();
            rc = -1;
        }
    });
    if (why)
        *why = why_bad.empty() ? nullptr : why_bad.c_str();
    return rc;
}

int vqt_cpu_conv_state(void)
{
    return rc;
}

} // extern "C"

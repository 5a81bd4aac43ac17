#!/usr/bin/python3
"""FLOPs of one generation step, and this machine's peak GEMM / convolution rate (for bench.sh).

  bench_flops.py --size 128 --cutn 8      JSON: FLOPs of one step, by part
  bench_flops.py --peak [--threads N]     JSON: measured GFLOP/s of a large GEMM and convolution

Counting: the architectures of scripts/peer_baseline.py (vqgan_imagenet_f16_16384's decoder,
ViT-B/32's image tower; the same layers vqclip runs) are run once on random weights with hooks
on every convolution and linear layer, and the attention products are added by hand. A
multiply-add counts 2 FLOPs. One step is
  - the nearest-codebook search (z . codebook^T), forward only;
  - the decoder forward, and its backward for the input gradient only (weights need none):
    the same FLOPs again for each convolution; both operands of the attention products;
  - the CLIP image tower over the cutouts, forward and input-gradient backward likewise.
Normalisations, activations, additions, pooling, the cutout augmentations and the optimiser
are left out: they are memory-bound and well under 1% of the FLOPs (reported as uncounted).

Peak: torch.mm of two 4096 x 4096 float32 matrices (OpenBLAS sgemm) and a 3x3 convolution of
[1, 256, 128, 128] with 256 output channels (oneDNN), through Debian's python3-torch, which is
the libtorch, OpenBLAS and oneDNN that vqclip links; best of 5 runs after a warm-up.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_baseline as pb  # noqa: E402


class Counter:
    def __init__(self):
        self.flops = 0

    def conv(self, m, inp, out):
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]  # Cin/groups * kh * kw
        self.flops += 2 * out.numel() * k

    def linear(self, m, inp, out):
        self.flops += 2 * out.numel() * m.in_features

    def attach(self, model):
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                mod.register_forward_hook(self.conv)
            elif isinstance(mod, nn.Linear):
                mod.register_forward_hook(self.linear)


def decoder_flops(size):
    """Forward FLOPs of post_quant_conv + decoder at size x size: (layers, attention products)."""
    model = pb.VQModel()
    c = Counter()
    c.attach(model.decoder)
    c.attach(model.post_quant_conv)
    with torch.no_grad():
        model.decode(torch.zeros(1, 256, size // 16, size // 16))
    # AttnBlocks sit at the 16x-downsampled level: q^T k and v w^T, each 2 * C * (hw)^2.
    hw = (size // 16) ** 2
    n_attn = 1 + 3  # mid.attn_1 + the three blocks of level 4
    return c.flops, n_attn * 2 * (2 * 512 * hw * hw)


def clip_flops(cutn):
    """Forward FLOPs of the ViT-B/32 image tower on cutn 224x224 cutouts."""
    vis = pb.VisionTransformer(224, 32, 768, 12, 12, 512)
    c = Counter()
    c.attach(vis)
    # nn.MultiheadAttention calls its projections functionally: count them by hand.
    tokens, width, layers = 50, 768, 12
    proj = layers * 2 * cutn * tokens * width * (3 * width + width)
    attn = layers * 2 * (2 * cutn * tokens * tokens * width)  # q k^T and p v over all heads
    with torch.no_grad():
        vis(torch.zeros(cutn, 3, 224, 224))
    final_proj = 2 * cutn * width * 512  # ln_post(x) @ proj is a plain matmul
    return c.flops + proj + final_proj, attn


def step_flops(size, cutn):
    dec_layers, dec_attn = decoder_flops(size)
    clip_layers, clip_attn = clip_flops(cutn)
    hw = (size // 16) ** 2
    nearest = 2 * hw * 256 * 16384
    parts = {
        "nearest_codebook": nearest,
        "decoder_forward": dec_layers + dec_attn,
        "decoder_backward_input": dec_layers + 2 * dec_attn,
        "clip_forward": clip_layers + clip_attn,
        "clip_backward_input": clip_layers + 2 * clip_attn,
    }
    parts["total"] = sum(parts.values())
    parts["size"], parts["cutn"] = size, cutn
    return parts


def best_rate(fn, flops, reps=5):
    fn()
    best = min(timed(fn) for _ in range(reps))
    return flops / best / 1e9


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak(threads):
    torch.set_num_threads(threads)
    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    gemm = best_rate(lambda: torch.mm(a, b), 2 * n ** 3)
    x, w = torch.randn(1, 256, 128, 128), torch.randn(256, 256, 3, 3)
    conv_fl = 2 * 256 * 128 * 128 * 256 * 9
    with torch.no_grad():
        conv = best_rate(lambda: torch.nn.functional.conv2d(x, w, padding=1), conv_fl)
    return {"threads": torch.get_num_threads(), "gemm_gflops": gemm, "conv_gflops": conv,
            "gemm": "mm 4096x4096x4096 f32", "conv": "conv2d 3x3 256->256 on 128x128 f32"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cutn", type=int, default=8)
    ap.add_argument("--peak", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    print(json.dumps(peak(a.threads) if a.peak else step_flops(a.size, a.cutn)))


if __name__ == "__main__":
    main()

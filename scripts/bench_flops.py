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

Peak (--peak with --size and --cutn): the best of torch.mm on square float32 matrices of 2048
and 4096 and of ViT-B/32's linear layers over the cutouts' tokens (OpenBLAS sgemm), and
separately the best 3x3 convolution at the decoder's channel / size pairs for that picture size
(oneDNN), through Debian's python3-torch, which is the libtorch, OpenBLAS and oneDNN that vqclip
links; best of 5 runs after a warm-up each. bench_run.py compares a step with the time its FLOPs
take at these rates (spatial convolutions at the convolution rate, the rest at the GEMM rate).
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
    """FLOPs of the hooked layers: spatial convolutions (kernel > 1, stride 1: the decoder's
    3x3 convolutions, which oneDNN may run as Winograd) apart from GEMM-shaped work (linear
    layers, 1x1 convolutions, the ViT's stride-32 patch embedding)."""

    def __init__(self):
        self.flops = 0
        self.spatial = 0

    def conv(self, m, inp, out):
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]  # Cin/groups * kh * kw
        n = 2 * out.numel() * k
        self.flops += n
        if m.weight.shape[2] > 1 and m.stride == (1, 1):
            self.spatial += n

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
    return c.flops, n_attn * 2 * (2 * 512 * hw * hw), c.spatial


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
    """One step's FLOPs by part; "spatial_conv" is the share of the total in 3x3-style
    convolutions (decoder forward and input gradient), the rest is GEMM-shaped."""
    dec_layers, dec_attn, dec_spatial = decoder_flops(size)
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
    parts["spatial_conv"] = 2 * dec_spatial
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


def peak(threads, size=128, cutn=8):
    """Best rate of the large GEMMs of a step (OpenBLAS sgemm: square 2048 and 4096 matrices and
    ViT-B/32's linear layers over cutn cutouts' tokens) and of the 3x3 convolutions of the
    VQGAN decoder at `size` (oneDNN), each counted as direct multiply-adds. oneDNN may pick
    Winograd for 3x3 convolutions, doing fewer multiplies than counted: such a rate can exceed
    the FMA units' limit, and it is what the decoder's convolutions can reach."""
    torch.set_num_threads(threads)
    gemms = {}
    for n in (2048, 4096):
        a, b = torch.randn(n, n), torch.randn(n, n)
        gemms["mm %dx%dx%d" % (n, n, n)] = best_rate(lambda: torch.mm(a, b), 2 * n ** 3)
    tokens = cutn * 50
    with torch.no_grad():
        for fin, fout in ((768, 2304), (768, 3072), (3072, 768)):
            x, w = torch.randn(tokens, fin), torch.randn(fout, fin)
            gemms["linear %dx%d->%d" % (tokens, fin, fout)] = best_rate(
                lambda: torch.nn.functional.linear(x, w), 2 * tokens * fin * fout)
    convs = {}
    with torch.no_grad():
        for ch, hw in ((512, size // 16), (512, size // 8), (256, size // 4), (256, size // 2),
                       (128, size // 2), (128, size)):
            x, w = torch.randn(1, ch, hw, hw), torch.randn(ch, ch, 3, 3)
            convs["conv3x3 %d->%d on %dx%d" % (ch, ch, hw, hw)] = best_rate(
                lambda: torch.nn.functional.conv2d(x, w, padding=1), 2 * ch * ch * 9 * hw * hw)
    g, c = max(gemms, key=gemms.get), max(convs, key=convs.get)
    return {"threads": torch.get_num_threads(), "gemm_gflops": gemms[g], "conv_gflops": convs[c],
            "gemm": g, "conv": c, "size": size, "cutn": cutn, "all": dict(gemms, **convs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cutn", type=int, default=8)
    ap.add_argument("--peak", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    print(json.dumps(peak(a.threads, a.size, a.cutn) if a.peak else step_flops(a.size, a.cutn)))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Where a step stands against the hardware, stage by stage (issue 17's per-stage table).

  bench_stages.py rates [--device cuda] [--dtype bfloat16]     JSON: measured matrix rate, bandwidth
  bench_stages.py work --size 512 --cutn 32 [--device cuda]    JSON: FLOPs and bytes per stage
  bench_stages.py table --profile P --work W --rates R         Markdown: the stages of vqclip's
                                                               --profile log P against both

rates: the best of 5 timed runs (after a warm-up) of a square matrix product of 8192 (4096 on
the CPU) in --dtype, counted as 2 n^3 FLOPs, and of a device-to-device copy of 1 GiB (256 MiB on
the CPU), counted as its bytes read plus written. CUDA events time the device.

work: for one step of the default fast precision (decoder in bfloat16, CLIP in float16; the
codebook search, cutouts, losses and optimiser in float32) at --size and --cutn, each stage's
  - FLOPs: the matrix work of scripts/bench_flops.py (convolutions, linear layers, attention
    products; a multiply-add is 2), by stage; the input-gradient pass of a layer costs its
    forward FLOPs again, an attention product twice;
  - bytes: a floor on its memory traffic: the weights read once, and every convolution's,
    linear layer's and normalisation's input read once and output written once (backward: the
    saved input read, the gradient of the output read and of the input written), attention
    scores and probabilities written and read once, the cutouts and the optimiser's state.
    Element-wise work between those layers (SiLU, residual additions, QuickGELU, casts) is left
    out, so real traffic is higher.
The models are scripts/peer_baseline.py's (the architectures vqclip runs) with random weights.

table: per stage, the device time from the profile, the least time its FLOPs take at the
measured matrix rate and its bytes at the measured bandwidth, the larger of the two (the
floor), and how many times the floor the stage took; with the profile's memory lines, the MiB
above the step's start held at the stage's end and highest within it (the step row: the
highest of all).
"""
import argparse
import json
import os
import re
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_flops as bf  # noqa: E402
import peer_baseline as pb  # noqa: E402

STAGES = ["quantise", "decode forward", "cutouts + augmentation", "CLIP forward", "losses",
          "CLIP backward", "cutouts backward", "decode backward", "read back (waits)",
          "optimiser"]


def best_seconds(fn, device, reps=5):
    fn()
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            best = min(best, a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return best


def rates(device, dtype):
    cuda = device.type == "cuda"
    n = 8192 if cuda else 2048
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    mm = 2 * n ** 3 / best_seconds(lambda: torch.mm(a, b), device)
    del a, b
    nbytes = (1 << 30) if cuda else (256 << 20)
    x = torch.empty(nbytes, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    bw = 2 * nbytes / best_seconds(lambda: y.copy_(x), device)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    return {"device": name, "dtype": str(dtype).replace("torch.", ""), "matrix_tflops": mm / 1e12,
            "matrix": "mm %dx%dx%d" % (n, n, n), "bandwidth_gbs": bw / 1e9,
            "bandwidth": "copy of %d MiB" % (nbytes >> 20)}


class Traffic:
    """Bytes of the leaf layers' inputs, outputs and weights (forward hooks)."""

    def __init__(self):
        self.inputs = self.outputs = self.weights = 0
        self.norm_inputs = 0  # a normalisation's backward reads its input twice over

    def hook(self, m, inp, out):
        x = inp[0]
        o = out[0] if isinstance(out, tuple) else out
        size = x.element_size()
        self.inputs += x.numel() * size
        self.outputs += o.numel() * o.element_size()
        if isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            self.norm_inputs += x.numel() * size
        # nn.MultiheadAttention uses its out_proj's weights functionally (no hook of its own)
        mha = isinstance(m, nn.MultiheadAttention)
        self.weights += sum(p.numel() * p.element_size() for p in m.parameters(recurse=mha))

    def attach(self, model):
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.GroupNorm, nn.LayerNorm,
                              nn.MultiheadAttention)):
                m.register_forward_hook(self.hook)


def decoder_traffic(size, device, dtype):
    model = pb.VQModel().to(device=device, dtype=dtype)
    t = Traffic()
    t.attach(model.decoder)
    t.attach(model.post_quant_conv)
    with torch.no_grad():
        model.decode(torch.zeros(1, 256, size // 16, size // 16, device=device, dtype=dtype))
    hw, n_attn = (size // 16) ** 2, 4
    scores = n_attn * 2 * hw * hw * torch.finfo(dtype).bits // 8  # scores and probabilities
    return t, scores


def clip_traffic(cutn, device, dtype):
    vis = pb.VisionTransformer(224, 32, 768, 12, 12, 512).to(device=device, dtype=dtype)
    t = Traffic()
    t.attach(vis)
    with torch.no_grad():
        vis(torch.zeros(cutn, 3, 224, 224, device=device, dtype=dtype))
    b = torch.finfo(dtype).bits // 8
    tokens, width, heads, layers = 50, 768, 12, 12
    # inside nn.MultiheadAttention: q, k, v and the context, and the scores and probabilities
    inner = layers * b * (4 * cutn * tokens * width + 2 * cutn * heads * tokens * tokens)
    return t, inner


def work(size, cutn, device):
    dflops = bf.decoder_flops(size)
    cflops = bf.clip_flops(cutn)
    dt, dscores = decoder_traffic(size, device, torch.bfloat16 if device.type == "cuda"
                                  else torch.float32)
    ct, cinner = clip_traffic(cutn, device, torch.float16 if device.type == "cuda"
                              else torch.float32)
    hw = (size // 16) ** 2
    f32 = 4
    z = 256 * hw * f32
    img = 3 * size * size * f32
    cuts = cutn * 3 * 224 * 224 * f32
    st = {
        "quantise": (2 * hw * 256 * 16384, 16384 * 256 * f32 + 3 * z),
        "decode forward": (dflops[0] + dflops[1],
                           dt.weights + dt.inputs + dt.outputs + dscores),
        "cutouts + augmentation": (0, img + cuts),
        "CLIP forward": (cflops[0] + cflops[1], ct.weights + ct.inputs + ct.outputs + cinner),
        "losses": (0, 0),
        "CLIP backward": (cflops[0] + 2 * cflops[1],
                          ct.weights + 2 * ct.inputs + ct.norm_inputs + ct.outputs + 2 * cinner),
        "cutouts backward": (0, cuts + img),
        "decode backward": (dflops[0] + 2 * dflops[1],
                            dt.weights + 2 * dt.inputs + dt.norm_inputs + dt.outputs
                            + 2 * dscores),
        "read back (waits)": (0, 0),
        "optimiser": (0, 7 * z),  # z, its gradient, Adam's two moments: read, write back
    }
    return {"size": size, "cutn": cutn, "device": str(device),
            "stages": {k: {"flops": v[0], "bytes": v[1]} for k, v in st.items()}}


def first_matches(path, pattern, convert):
    """{stage: convert(match)} for the first line matching `pattern` per stage (the first
    profile in the file)."""
    out = {}
    pat = re.compile(pattern)
    with open(path) as f:
        for line in f:
            m = pat.search(line)
            if m and m.group(1).strip() in STAGES and m.group(1).strip() not in out:
                out[m.group(1).strip()] = convert(m)
    return out


def read_profile(path):
    """{stage: (device ms, host ms, operators)} from vqclip's --profile log lines."""
    return first_matches(path, r"profile: (.+?)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?\d+)\s*$",
                         lambda m: (float(m.group(2)), float(m.group(3)), int(m.group(4))))


def read_memory(path):
    """{stage: (MiB held at its end, MiB highest within it)} from the profile's memory lines;
    empty for a log from before they were printed."""
    return first_matches(path, r"profile: memory: (.+?)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*$",
                         lambda m: (float(m.group(2)), float(m.group(3))))


def table(profile, w, r, memory=None):
    mm = r["matrix_tflops"] * 1e12
    bw = r["bandwidth_gbs"] * 1e9
    rows = ["Against %s's measured %s rate (%s: %.1f TFLOP/s) and bandwidth (%s: %.0f GB/s); "
            "%dx%d, cutn %d:" % (r["device"], r["dtype"], r["matrix"], r["matrix_tflops"],
                                 r["bandwidth"], r["bandwidth_gbs"], w["size"], w["size"],
                                 w["cutn"]),
            "",
            "| stage | device ms | host ms | GFLOP | ms at matrix rate | MB moved (floor) "
            "| ms at bandwidth | floor ms | device / floor |" +
            (" MiB held / highest |" if memory else ""),
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" +
            (" --- |" if memory else "")]
    tot = [0.0] * 5
    for s in STAGES:
        if s not in profile:
            continue
        dev, host, _ = profile[s]
        fl, by = w["stages"][s]["flops"], w["stages"][s]["bytes"]
        t_mm, t_bw = fl / mm * 1e3, by / bw * 1e3
        floor = max(t_mm, t_bw)
        ratio = "%.1f" % (dev / floor) if floor > 0 else ""
        mem = ""
        if memory:
            held, high = memory.get(s, (0.0, 0.0))
            mem = " %.0f / %.0f |" % (held, high)
        rows.append("| %s | %.2f | %.2f | %.1f | %.3f | %.0f | %.3f | %.3f | %s |%s" % (
            s, dev, host, fl / 1e9, t_mm, by / 1e6, t_bw, floor, ratio, mem))
        for i, v in enumerate((dev, host, t_mm, t_bw, floor)):
            tot[i] += v
    ratio = "%.1f" % (tot[0] / tot[4]) if tot[4] > 0 else ""
    rows.append("| step | %.2f | %.2f | | %.3f | | %.3f | %.3f | %s |%s" % (
        tot[0], tot[1], tot[2], tot[3], tot[4], ratio,
        " %.0f |" % max(v[1] for v in memory.values()) if memory else ""))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["rates", "work", "table"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cutn", type=int, default=32)
    ap.add_argument("--profile")
    ap.add_argument("--work")
    ap.add_argument("--rates")
    a = ap.parse_args()
    if a.what == "table":
        with open(a.work) as f:
            w = json.load(f)
        with open(a.rates) as f:
            r = json.load(f)
        print(table(read_profile(a.profile), w, r, read_memory(a.profile)))
        return
    dev = torch.device(a.device)
    if a.what == "rates":
        dtype = getattr(torch, a.dtype) if dev.type == "cuda" else torch.float32
        print(json.dumps(rates(dev, dtype)))
    else:
        print(json.dumps(work(a.size, a.cutn, dev)))


if __name__ == "__main__":
    main()

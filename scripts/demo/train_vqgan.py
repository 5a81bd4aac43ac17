#!/usr/bin/env python3
"""Trains the demo VQGAN on the demo world and writes it in taming-transformers' checkpoint
layout (a torch.save'd {"state_dict": ...}, float16 weights) with its .yaml config.

  nice -n 10 /usr/bin/python3 scripts/demo/train_vqgan.py --minutes 60 --out models/demo

Phases: a plain autoencoder warm-up (no quantisation), a k-means start of the codebook on the
encoder's outputs, then VQ training (L1 + L2, shape pixels weighted up so that small shapes keep
their colour, codebook + commitment loss), resetting unused codes to random encoder outputs.
Time-limited; the model is written every --save-every minutes and at the end.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taming_vq  # noqa: E402
import world  # noqa: E402


def psnr(a, b):
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).mean().item()


def kmeans(x, k, iters=20):
    c = x[torch.randperm(x.shape[0])[:k]].clone()
    for _ in range(iters):
        a = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, a, x)
        counts = torch.bincount(a, minlength=k).float()
        empty = counts == 0
        c = sums / counts.clamp_min(1)[:, None]
        c[empty] = x[torch.randint(x.shape[0], (int(empty.sum()),))]
    return c


def save(model, out, name, step, info):
    sd = {k: v.detach().half().clone() if v.is_floating_point() else v.clone()
          for k, v in model.state_dict().items()}
    path = os.path.join(out, name + ".ckpt")
    torch.save({"state_dict": sd, "global_step": step, "epoch": 0, "demo_info": info}, path + ".tmp")
    os.replace(path + ".tmp", path)
    with open(os.path.join(out, name + ".yaml"), "w") as f:
        f.write(model.yaml())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--warmup-frac", type=float, default=0.12)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--shape-weight", type=float, default=6.0)
    ap.add_argument("--save-every", type=float, default=5)
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--name", default="vqgan_demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    model = taming_vq.VQModel()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.5, 0.9))
    _, ev, _ = world.batch(np.random.default_rng(12345), 64, held_out=False)
    ev = torch.from_numpy(ev)
    t0, last_save, step, phase = time.time(), time.time(), 0, "ae"
    usage = torch.zeros(model.quantize.embedding.num_embeddings)
    budget = a.minutes * 60
    print(f"params {sum(p.numel() for p in model.parameters())}", flush=True)
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1:
            break
        if phase == "ae" and frac >= a.warmup_frac:
            with torch.no_grad():
                xs = [torch.from_numpy(world.batch(rng, 64)[1]) * 2 - 1 for _ in range(2)]
                z = torch.cat([model.encode_pre(x).permute(0, 2, 3, 1).reshape(-1, model.config["embed_dim"]) for x in xs])
                model.quantize.embedding.weight.copy_(kmeans(z, model.config["n_embed"]))
            phase = "vq"
            print(f"step {step}: k-means codebook start from {z.shape[0]} vectors", flush=True)
        lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1))))
        for g in opt.param_groups:
            g["lr"] = lr
        _, x, m = world.batch(rng, a.batch)
        x = torch.from_numpy(x) * 2 - 1
        m = torch.from_numpy(m)[:, None]
        w = 1 + a.shape_weight * F.max_pool2d(m, 3, 1, 1)
        y, qloss, idx = model(x, quantize=phase == "vq")
        d = y - x
        rec = (w * (d.abs() + d * d)).mean() / w.mean()
        loss = rec + qloss
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if idx is not None:
            usage += torch.bincount(idx, minlength=usage.numel()).float()
            if step % 200 == 0:
                dead = (usage == 0).nonzero().flatten()
                if len(dead):
                    with torch.no_grad():
                        z = model.encode_pre(x).permute(0, 2, 3, 1).reshape(-1, model.config["embed_dim"])
                        pick = z[torch.randint(z.shape[0], (len(dead),))]
                        model.quantize.embedding.weight[dead] = pick + 0.01 * torch.randn_like(pick)
                print(f"step {step}: {usage.numel() - len(dead)} codes used, {len(dead)} reset", flush=True)
                usage.zero_()
        if step % 100 == 0:
            with torch.no_grad():
                yq, _, _ = model(ev * 2 - 1, quantize=phase == "vq")
                p = psnr(((yq + 1) / 2).clamp(0, 1), ev)
            print(f"step {step} {time.time() - t0:.0f}s {phase} lr {lr:.2e} rec {rec.item():.4f} "
                  f"q {float(qloss):.4f} eval-psnr {p:.2f}", flush=True)
        if phase == "vq" and time.time() - last_save > a.save_every * 60:
            save(model, a.out, a.name, step, f"step {step}")
            last_save = time.time()
    with torch.no_grad():
        yq, _, _ = model(ev * 2 - 1)
        p = psnr(((yq + 1) / 2).clamp(0, 1), ev)
    info = f"{step} steps, batch {a.batch}, {a.minutes} min, eval PSNR {p:.2f} dB"
    save(model, a.out, a.name, step, info)
    print("done:", info, flush=True)


if __name__ == "__main__":
    main()

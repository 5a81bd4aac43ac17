#!/usr/bin/env python3
"""Trains the demo CLIP on the demo world and writes it as safetensors with OpenAI's names, plus
its BPE vocabulary (vocab.json + merges.txt, learned from the captions).

  nice -n 10 /usr/bin/python3 scripts/demo/train_clip.py --minutes 60 --out models/demo \
      [--vqgan models/demo/vqgan_demo.ckpt]

Contrastive training (CLIP's symmetric loss) where each image also meets hard-negative captions
that differ from its own in one named attribute (colour, background, shape, size, position, a
swap of colour and background). Images get small random affine distortions, as the generation
loop's cutouts do. Once the VQGAN file given by --vqgan exists, a share of each batch is replaced
by its reconstructions (reloaded every few minutes), so that the judge also knows the pictures the
loop decodes. Time-limited; written every --save-every minutes and at the end.
"""
import argparse
import math
import os
import sys
import time
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import clip_model  # noqa: E402
import demo_eval  # noqa: E402
import taming_vq  # noqa: E402
import world  # noqa: E402


def learn_vocabulary(out, seed):
    rng = np.random.default_rng(seed)
    counts = Counter()
    for _ in range(4000):
        sc = world.sample_scene(rng)
        counts.update(world.caption(sc, world.caption_spec(sc, rng)).split())
    for w in world.all_words():
        counts[w] += 1
    merges = bpe.learn_merges(counts)
    bpe.write(out, merges)
    return merges


def augment(x, gen_scale=1.0):
    n = x.shape[0]
    ang = (torch.rand(n) - 0.5) * 2 * math.radians(8) * gen_scale
    sc = 1 + (torch.rand(n) - 0.5) * 0.16 * gen_scale
    tx, ty = ((torch.rand(2, n) - 0.5) * 0.1 * gen_scale)
    sh = (torch.rand(n) - 0.5) * 0.1 * gen_scale
    theta = torch.stack([torch.stack([torch.cos(ang) / sc, -torch.sin(ang) / sc + sh, tx], 1),
                         torch.stack([torch.sin(ang) / sc, torch.cos(ang) / sc, ty], 1)], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (y + 0.02 * torch.randn_like(y)).clamp(0, 1)


def soft_ce(logits, target):
    """Cross-entropy against a multi-hot target, spread evenly over its positives."""
    return -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()


def save_and_report(model, tok, path, ev_imgs, ev_scenes, what):
    """Writes the model (eval mode while doing so) and prints its zero-shot accuracies."""
    model.eval()
    clip_model.save_safetensors(model, path)
    acc = demo_eval.zero_shot(model, tok, ev_imgs, ev_scenes)
    print(f"{what}; zero-shot " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()),
          flush=True)
    model.train()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--negatives", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--recon-share", type=float, default=0.35)
    ap.add_argument("--vqgan", default="")
    ap.add_argument("--save-every", type=float, default=5)
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--name", default="clip_demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    merges = learn_vocabulary(a.out, a.seed)
    ctx = 24
    tok = bpe.Tokenizer(merges, ctx)
    model = clip_model.CLIP(ctx=ctx, vocab=len(tok.vocab))
    print(f"{len(merges)} merges, vocab {len(tok.vocab)}, params "
          f"{sum(p.numel() for p in model.parameters())}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": rest, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))
    vq, vq_mtime = None, 0
    ev_scenes, ev_imgs = demo_eval.eval_scenes(150, False, 4242)
    t0, last_save, step, budget = time.time(), time.time(), 0, a.minutes * 60
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1:
            break
        warm = min(1.0, step / 200)
        lr = a.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if a.vqgan and os.path.exists(a.vqgan) and os.path.getmtime(a.vqgan) > vq_mtime + 240:
            try:
                ck = torch.load(a.vqgan, map_location="cpu")
                vq = taming_vq.VQModel()
                vq.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
                vq.eval()
                vq_mtime = os.path.getmtime(a.vqgan)
                print(f"step {step}: reconstructions from {a.vqgan} ({ck.get('global_step')})", flush=True)
            except Exception as e:  # a file being replaced: try again later
                print("vqgan load failed:", e, flush=True)
        scenes, x, _ = world.batch(rng, a.batch)
        x = torch.from_numpy(x)
        if vq is not None and a.recon_share > 0:
            k = int(a.batch * a.recon_share)
            with torch.no_grad():
                x[:k] = demo_eval.reconstruct(vq, x[:k])
        x = augment(x)
        texts = []
        for sc in scenes:
            spec = world.caption_spec(sc, rng)
            texts.append(world.caption(sc, spec))
        for sc in scenes:
            spec = world.caption_spec(sc, rng, size_p=0.8, pos_p=0.8)
            for _ in range(a.negatives):
                texts.append(world.caption(world.hard_negative(sc, spec, rng), spec))
        B = a.batch
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(model.encode_text(tok.tokenize(texts)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * img @ txt.t()  # B x (B + B*neg)
        same = torch.tensor([[texts[i] == texts[j] for j in range(len(texts))] for i in range(B)],
                            dtype=torch.float32)
        li = soft_ce(logits, same)
        lt = soft_ce(logits[:, :B].t(), same[:, :B].t())
        loss = (li + lt) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            acc = (logits.argmax(1) == torch.arange(B)).float().mean().item()
            print(f"step {step} {time.time() - t0:.0f}s lr {lr:.2e} loss {loss.item():.4f} "
                  f"batch-acc {acc:.3f} scale {scale.item():.1f}", flush=True)
        if time.time() - last_save > a.save_every * 60:
            save_and_report(model, tok, os.path.join(a.out, a.name + ".safetensors"), ev_imgs,
                            ev_scenes, f"step {step}: saved")
            last_save = time.time()
    save_and_report(model, tok, os.path.join(a.out, a.name + ".safetensors"), ev_imgs, ev_scenes,
                    f"done: {step} steps, batch {a.batch}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Zero-shot accuracies of the demo CLIP and PSNR of the demo VQGAN on fresh scenes of the demo
world (one shape each): for each attribute (colour, shape, background, size, position), the
caption "a SIZE COLOUR SHAPE POS on a BG background" with the true value must score higher than
every caption with another value of that attribute and the rest true.

  /usr/bin/python3 scripts/demo/demo_eval.py [--models models/demo] [--n 400]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

ATTRS = {"colour": world.COLOUR_NAMES, "shape": world.SHAPES, "bg": world.COLOUR_NAMES,
         "size": world.SIZE_NAMES, "pos": world.POSITION_NAMES}


def full_caption(sc):
    s = sc["shapes"][0]
    return f"a {s['size']} {s['colour']} {s['shape']} {s['pos']} on a {sc['bg']} background"


def variant(sc, attr, value):
    v = {"bg": sc["bg"], "shapes": [dict(sc["shapes"][0])]}
    if attr == "bg":
        v["bg"] = value
    else:
        v["shapes"][0][attr] = value
    return v


@torch.no_grad()
def zero_shot(clip, tok, imgs, scenes):
    feats = clip.encode_image(imgs)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    caps, index = [], {}
    for sc in scenes:
        for attr, values in ATTRS.items():
            for v in values:
                c = full_caption(variant(sc, attr, v))
                if c not in index:
                    index[c] = len(caps)
                    caps.append(c)
    t = torch.cat([clip.encode_text(tok.tokenize(caps[i:i + 512])) for i in range(0, len(caps), 512)])
    t = t / t.norm(dim=-1, keepdim=True)
    acc = {}
    for attr, values in ATTRS.items():
        ok = 0
        for i, sc in enumerate(scenes):
            cur = sc["bg"] if attr == "bg" else sc["shapes"][0][attr]
            rows = t[[index[full_caption(variant(sc, attr, v))] for v in values]]
            ok += values[int((rows @ feats[i]).argmax())] == cur
        acc[attr] = ok / len(scenes)
    return acc


def psnr(a, b):
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


@torch.no_grad()
def reconstruct(vq, imgs):
    y, _, _ = vq(imgs * 2 - 1)
    return ((y + 1) / 2).clamp(0, 1)


def eval_scenes(n, held_out, seed):
    rng = np.random.default_rng(seed)
    scenes, imgs, _ = world.batch(rng, n, two_p=0.0, held_out=held_out)
    return scenes, torch.from_numpy(imgs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="models/demo")
    ap.add_argument("--n", type=int, default=400)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from load_demo import load_clip, load_vqgan
    clip, tok = load_clip(a.models)
    vq = load_vqgan(a.models)
    for held in (False, True):
        scenes, imgs = eval_scenes(a.n, held, 777 + held)
        rec = reconstruct(vq, imgs)
        name = ("held-out (%s)" % world.HOLDOUT) if held else "training distribution"
        print(f"{name}: VQGAN PSNR {psnr(rec, imgs):.2f} dB")
        for label, x in (("real", imgs), ("reconstructed", rec)):
            acc = zero_shot(clip, tok, x, scenes)
            print(f"  zero-shot on {label}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()))


if __name__ == "__main__":
    main()

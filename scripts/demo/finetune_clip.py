#!/usr/bin/env python3
"""Fine-tunes the demo CLIP against the generation loop: it learns to see pictures as vqclip's
loop shows them, and to reject the pictures that the loop makes to fool it.

  nice -n 10 /usr/bin/python3 scripts/demo/finetune_clip.py --minutes 60 --out /tmp/ft \
      [--models models/demo] [--threads 2]

Starts from the CLIP, VQGAN and vocabulary in --models (the vocabulary is kept) and trains as
train_clip.py does (contrastive loss with hard-negative captions, real pictures and VQGAN
reconstructions), with two additions:
  - loop-style views: most pictures go through the loop's own augmentations (Af and Pe as
    src/gen/augment.c draws them, zero padding outside the picture, then the cutouts' noise),
    so that black wedges around a warped cutout are not taken for a black background;
  - adversarial pictures: every --adv-every steps, a batched copy of the loop (z from a random
    colour gradient through the encoder, nearest-codebook straight-through, decoder, cutouts
    with those augmentations, spherical-distance loss, Adam at lr 0.1, z clamped to the
    codebook's range) runs --adv-steps steps for --adv-count captions of training pairs against
    the current CLIP. Each result is judged by pixel colours as tests/test-demo-quality.c
    judges (border in the background colour, the shape's colour next): failures become
    negative pictures for their caption, passes positive ones, next to a freshly drawn picture
    of the caption's scene; and each failure is also taught the caption of what it shows as
    the judge reads it (the border's colour as background, the next colour as the shape's),
    so that a picture the loop painted in the wrong colours reads as those colours. What
    world.py holds out (VQCLIP_DEMO_HOLDOUT) never appears, in pictures or captions.
Time-limited; written every --save-every minutes and at the end.
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
import demo_eval  # noqa: E402
import load_demo  # noqa: E402
import quality  # noqa: E402
import train_clip  # noqa: E402
import world  # noqa: E402

DEG = math.pi / 180


def _mat3(rows):
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _gate(n, p):
    return (torch.rand(n) < p).float()


def affine_mats(n, p=0.7):
    """Af: rotation +-15 deg, x-shear +-5 deg, translation +-0.2 (normalised), with prob p."""
    g = _gate(n, p)
    ang = (torch.rand(n) * 30 - 15) * DEG * g
    k = torch.tan((torch.rand(n) * 10 - 5) * DEG * g)
    tx, ty = (torch.rand(n) * 0.4 - 0.2) * g, (torch.rand(n) * 0.4 - 0.2) * g
    c, s, z, o = torch.cos(ang), torch.sin(ang), torch.zeros(n), torch.ones(n)
    return _mat3([[c, c * k - s, tx], [s, s * k + c, ty], [z, z, o]])


def perspective_mats(n, p=0.7):
    """Pe: each corner of [-1, 1]^2 moves inwards by U(0, 0.7) on each axis, with prob p."""
    g = _gate(n, p)[:, None]
    base = torch.tensor([[-1., -1], [1, -1], [1, 1], [-1, 1]])
    inward = -base
    q = base[None] + (torch.rand(n, 4, 2) * 0.7 * g[:, :, None]) * inward[None]
    rows, rhs = [], []
    for i in range(4):
        x, y = base[i]
        u, v = q[:, i, 0], q[:, i, 1]
        one, zero = torch.ones(n), torch.zeros(n)
        rows.append(torch.stack([x * one, y * one, one, zero, zero, zero, -u * x, -u * y], 1))
        rows.append(torch.stack([zero, zero, zero, x * one, y * one, one, -v * x, -v * y], 1))
        rhs += [u, v]
    h = torch.linalg.solve(torch.stack(rows, 1), torch.stack(rhs, 1))
    return torch.cat([h, torch.ones(n, 1)], 1).reshape(n, 3, 3)


def loop_views(x, noise=0.1):
    """The loop's cutouts of 64x64 pictures: Af then Pe (forward homographies), sampled with
    zero padding (align_corners=True), plus U(0, noise) x N(0, 1) noise per view."""
    n, _, h, w = x.shape
    hom = perspective_mats(n) @ affine_mats(n)
    inv = torch.linalg.inv(hom)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    pts = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(h * w)])  # 3 x hw
    src = inv @ pts  # n x 3 x hw
    zc = src[:, 2]
    bad = zc * torch.linalg.det(inv)[:, None] <= 0
    zc = torch.where(bad, torch.ones_like(zc), zc)
    gx = torch.where(bad, torch.full_like(zc, 2.0), src[:, 0] / zc)
    gy = torch.where(bad, torch.full_like(zc, 2.0), src[:, 1] / zc)
    grid = torch.stack([gx, gy], -1).reshape(n, h, w, 2)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return y + torch.rand(n, 1, 1, 1) * noise * torch.randn_like(y)


def gradient_images(n):
    """The loop's `-in gradient` start: per picture two random colours, red varying along x,
    green and blue along y."""
    c0, c1 = torch.rand(n, 3, 1, 1), torch.rand(n, 3, 1, 1)
    t = torch.linspace(0, 1, 64)
    wx = t.view(1, 1, 1, 64).expand(n, 1, 64, 64)
    wy = t.view(1, 1, 64, 1).expand(n, 1, 64, 64)
    return c0 + torch.cat([wx, wy, wy], 1) * (c1 - c0)


def sdist(a, b):
    return (a - b).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def adversarial_round(clip, tok, vq, scenes, captions, steps, cutn=8, lr=0.1):
    """The loop, batched over captions; returns the pictures (N x 3 x 64 x 64 in [0, 1])."""
    for p in list(clip.parameters()) + list(vq.parameters()):
        p.requires_grad_(False)
    n = len(captions)
    with torch.no_grad():
        target = F.normalize(clip.encode_text(tok.tokenize(captions)), dim=-1)
        z = vq.encode_pre(gradient_images(n) * 2 - 1)
        e = vq.quantize.embedding.weight
        lo, hi = e.min(0).values.view(1, -1, 1, 1), e.max(0).values.view(1, -1, 1, 1)
        z = torch.max(torch.min(z, hi), lo)
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        idx = vq.quantize.indices(z)
        zq = e[idx].reshape(n, z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        zq = z + (zq - z).detach()
        img = ((vq.decode(zq) + 1) / 2).clamp(0, 1)
        views = loop_views(img.repeat_interleave(cutn, 0))
        emb = F.normalize(clip.encode_image(views), dim=-1)
        loss = sdist(emb, target.repeat_interleave(cutn, 0)).sum() / cutn
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            z.copy_(torch.max(torch.min(z, hi), lo))
    with torch.no_grad():
        idx = vq.quantize.indices(z)
        zq = e[idx].reshape(n, z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        img = ((vq.decode(zq) + 1) / 2).clamp(0, 1)
    for p in clip.parameters():
        p.requires_grad_(True)
    return img


def judge_batch(imgs, scenes, captions):
    """Per picture: whether it passes the pixel judge for its scene, and a caption of what it
    shows instead when it fails ("a C SHAPE on a B background" from the border's colour B and
    the next colour C, with the prompt's shape; None when that is no colour pair of the training
    world or the picture shows no clear pair)."""
    out = []
    for im, sc, cap in zip(imgs, scenes, captions):
        rgb = (im.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        shape = sc["shapes"][0]
        ok = bool(quality.judge(rgb, shape["colour"], sc["bg"])[0])
        b, bshare, c, cshare = quality.describe(rgb)
        label = cap if ok else None
        if (not ok and bshare >= 0.5 and cshare >= 0.02
                and world.allowed(c, b, False, shape["shape"])):
            label = "a %s %s on a %s background" % (c, shape["shape"], b)
        out.append((ok, label))
    return out


def one_shape_scene(rng):
    while True:
        sc = world.sample_scene(rng, two_p=0.0)
        if sc["shapes"][0]["colour"] != sc["bg"]:
            return sc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--models", default="models/demo")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--negatives", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--recon-share", type=float, default=0.4)
    ap.add_argument("--loop-view-share", type=float, default=0.6)
    ap.add_argument("--adv-every", type=int, default=30)
    ap.add_argument("--adv-count", type=int, default=16)
    ap.add_argument("--adv-steps", type=int, default=60)
    ap.add_argument("--adv-batch", type=int, default=16)
    ap.add_argument("--pool", type=int, default=256)
    ap.add_argument("--label-weight", type=float, default=0.5,
                    help="weight of the relabelled adversarial pictures' loss (0: none)")
    ap.add_argument("--init", default="", help="start from this CLIP file instead of --models'")
    ap.add_argument("--save-every", type=float, default=5)
    ap.add_argument("--out", default="/tmp/demo-ft")
    ap.add_argument("--name", default="clip_demo")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    model, tok = load_demo.load_clip(a.models)
    if a.init:
        model.load_state_dict(load_demo.read_safetensors(a.init))
    vq = load_demo.load_vqgan(a.models)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": rest, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))
    pool = []  # (scene, caption, picture, passed)
    ev_scenes, ev_imgs = demo_eval.eval_scenes(150, False, 4242)
    t0, last_save, step, budget = time.time(), time.time(), 0, a.minutes * 60
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        lr = a.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if step % a.adv_every == 0:
            model.eval()
            scs = [one_shape_scene(rng) for _ in range(a.adv_count)]
            caps = [world.caption(sc, world.caption_spec(sc, rng, 0.3, 0.3)) if rng.random() < 0.5
                    else "a %s %s on a %s background" % (sc["shapes"][0]["colour"],
                                                         sc["shapes"][0]["shape"], sc["bg"])
                    for sc in scs]
            ta = time.time()
            imgs = adversarial_round(model, tok, vq, scs, caps, a.adv_steps)
            judged = judge_batch(imgs, scs, caps)
            ok = [j[0] for j in judged]
            labels = [j[1] for j in judged]
            pool = (pool + list(zip(scs, caps, imgs, ok, labels)))[-a.pool:]
            print(f"step {step}: adversarial round {time.time() - ta:.0f}s, {sum(ok)}/{len(ok)} "
                  f"pass, {sum(1 for o, l in judged if not o and l)} relabelled; pool {len(pool)}",
                  flush=True)
            model.train()
        scenes, x, _ = world.batch(rng, a.batch)
        x = torch.from_numpy(x)
        texts = []
        for sc in scenes:
            texts.append(world.caption(sc, world.caption_spec(sc, rng)))
        # the pool's scenes, drawn afresh, with the captions the loop was given
        picks = [pool[i] for i in rng.choice(len(pool), min(a.adv_batch, len(pool)), replace=False)]
        if picks:
            extra = np.stack([world.render(p[0], rng)[0].transpose(2, 0, 1) for p in picks])
            extra = extra.astype(np.float32)
            x = torch.cat([x, torch.from_numpy(extra)])
            texts += [p[1] for p in picks]
            scenes = scenes + [p[0] for p in picks]
        B = x.shape[0]
        k = int(B * a.recon_share)
        with torch.no_grad():
            x[:k] = demo_eval.reconstruct(vq, x[:k])
        adv = torch.stack([p[2] for p in picks]) if picks else torch.zeros(0, 3, 64, 64)
        allx = torch.cat([x, adv])
        m = int(allx.shape[0] * a.loop_view_share)
        perm = torch.randperm(allx.shape[0])
        lv, sv = perm[:m], perm[m:]
        views = torch.empty_like(allx)
        views[lv] = loop_views(allx[lv]).clamp(-0.5, 1.5)
        views[sv] = train_clip.augment(allx[sv])
        for sc in scenes[:a.batch]:
            spec = world.caption_spec(sc, rng, size_p=0.8, pos_p=0.8)
            for _ in range(a.negatives):
                texts.append(world.caption(world.hard_negative(sc, spec, rng), spec))
        # what each adversarial picture shows, as the judge reads it (its own caption when it
        # passed), when that is a colour pair of the training world
        labelled = [j for j, p in enumerate(picks) if p[4]] if a.label_weight > 0 else []
        for j in labelled:
            if picks[j][4] not in texts:
                texts.append(picks[j][4])
        img = F.normalize(model.encode_image(views), dim=-1)
        txt = F.normalize(model.encode_text(tok.tokenize(texts)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        # picture -> caption, real pictures only
        logits = scale * img[:B] @ txt.t()
        same = torch.tensor([[texts[i] == texts[j] for j in range(len(texts))] for i in range(B)],
                            dtype=torch.float32)
        li = train_clip.soft_ce(logits, same)
        # caption -> picture over real and adversarial pictures: an adversarial picture counts
        # as a match of its caption when it passed the pixel judge, else as a negative
        lt_logits = scale * txt[:B] @ img.t()
        tgt = torch.zeros(B, allx.shape[0])
        tgt[:, :B] = same[:, :B].t()
        for j, p in enumerate(picks):
            if p[3]:
                for i in range(B):
                    if texts[i] == p[1]:
                        tgt[i, B + j] = 1
        lt = train_clip.soft_ce(lt_logits, tgt)
        loss = (li + lt) / 2
        if labelled:  # adversarial picture -> the caption of what it shows
            rows = torch.tensor([B + j for j in labelled])
            la_logits = scale * img[rows] @ txt.t()
            la_tgt = torch.tensor([[float(t == picks[j][4]) for t in texts] for j in labelled])
            loss = loss + a.label_weight * train_clip.soft_ce(la_logits, la_tgt)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            acc = (logits.argmax(1) == torch.arange(B)).float().mean().item()
            print(f"step {step} {time.time() - t0:.0f}s lr {lr:.2e} loss {loss.item():.4f} "
                  f"(i {li.item():.3f} t {lt.item():.3f}) batch-acc {acc:.3f}", flush=True)
        if time.time() - last_save > a.save_every * 60:
            train_clip.save_and_report(model, tok, os.path.join(a.out, a.name + ".safetensors"),
                                       ev_imgs, ev_scenes, f"step {step}: saved")
            last_save = time.time()
    train_clip.save_and_report(model, tok, os.path.join(a.out, a.name + ".safetensors"), ev_imgs,
                               ev_scenes, f"done: {step} steps")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The Python peer's generation loop, written directly in PyTorch, as vqclip's benchmark baseline.

  /usr/bin/python3 scripts/peer_baseline.py --vqgan CKPT --clip PT --bpe BPE.txt.gz \\
      -s 128 128 --cutn 8 -i 5 --seed 1 -o out.png [--threads N]

nerdyrodent's generate.py (the seed notebook's loop) needs taming-transformers, OpenAI's CLIP
package, kornia, omegaconf and pytorch-lightning, none of which Debian packages. This script
does what generate.py does with Debian's python3-torch only (the same libtorch and OpenBLAS
that vqclip links), with the same architectures, reading the same files the same way:

  - VQGAN: torch.load() of the whole Lightning checkpoint (optimizer states included), as
    taming's init_from_ckpt does, into an Encoder/Decoder/quantizer module tree with taming's
    parameter names (taming also builds the LPIPS/discriminator loss and deletes it: not here);
  - CLIP: torch.jit.load() of the TorchScript archive, its state_dict() into a VisionTransformer
    + text Transformer with OpenAI's names (nn.MultiheadAttention, QuickGELU, fp32 LayerNorm),
    converted to float16 as clip.load(jit=False) does, then .float() on the CPU (float16 stays
    on CUDA, as there);
  - the loop of generate.py: z from random codebook rows, Adam (lr 0.1), vector_quantize with
    ReplaceGrad, decode, ClampWithGrad, MakeCutouts "latest" (cutn avg+max poolings, then the
    augmentations, then noise 0.1 per cutout), CLIP normalisation, encode_image, the spherical
    distance prompt loss, backward, step, z clamped to the codebook's range; an image written at
    step 0 (generate.py's checkin at i = 0) and at the end.
  - augmentations Af Pe Ji Er (kornia RandomAffine(15, 0.1, shear 5), RandomPerspective(0.7),
    ColorJitter(hue 0.1, saturation 0.1), RandomErasing(0.1-0.4, same on batch), p = 0.7) are
    written with plain torch ops: per-cutout affine / perspective grids + grid_sample, an
    RGB->HSV->RGB round trip, an erasing mask. kornia's versions do the same arithmetic with
    more bookkeeping; either is a few percent of a step.
  - the tokenizer is a plain-Python CLIP BPE (no ftfy/html cleaning).

It is a lower bound on the peer's start-up (it imports torch only; generate.py also imports
torchvision, kornia, taming, omegaconf, pytorch-lightning, imageio) and close to its step.
Timing events go to stdout as JSON lines with time.monotonic() stamps, for scripts/bench.sh.
"""
import argparse
import gzip
import html
import json
import math
import os
import re
import sys
import time
import types

T0 = time.monotonic()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def event(name, **kw):
    kw.update(event=name, t=time.monotonic())
    print(json.dumps(kw), flush=True)


# ---- VQGAN (taming-transformers' Encoder / Decoder / VectorQuantizer2, names kept) ---------

def gn(c):
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


def swish(x):
    return x * torch.sigmoid(x)  # taming's nonlinearity


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = gn(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2, self.conv2 = gn(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = gn(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        w_ = torch.bmm(q, k.reshape(b, c, hh * ww)) * (int(c) ** -0.5)
        w_ = F.softmax(w_, dim=2)
        h = torch.bmm(v.reshape(b, c, hh * ww), w_.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Resample(nn.Module):
    def __init__(self, c, down):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(c, c, 3, 2 if down else 1, 0 if down else 1)

    def forward(self, x):
        if self.down:
            return self.conv(F.pad(x, (0, 1, 0, 1)))
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    def __init__(self, cin, cout, nblocks, attn, resample=None):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(cin if i == 0 else cout, cout) for i in range(nblocks))
        self.attn = nn.ModuleList(AttnBlock(cout) for _ in range(nblocks if attn else 0))
        if resample is not None:
            setattr(self, "downsample" if resample else "upsample", Resample(cout, resample))

    def forward(self, x):
        for i, b in enumerate(self.block):
            x = b(x)
            if len(self.attn):
                x = self.attn[i](x)
        for name in ("downsample", "upsample"):
            if hasattr(self, name):
                x = getattr(self, name)(x)
        return x


class Coder(nn.Module):
    """taming's Encoder (decoder=False) or Decoder for ch, ch_mult, num_res_blocks, attn levels."""

    def __init__(self, decoder, ch=128, ch_mult=(1, 1, 2, 2, 4), nres=2, attn_levels=(4,), z=256):
        super().__init__()
        n, top = len(ch_mult), ch * ch_mult[-1]
        self.decoder = decoder
        if decoder:
            self.conv_in = nn.Conv2d(z, top, 3, 1, 1)
            self.mid = Mid(top)
            levels, cin = [None] * n, top
            for i in reversed(range(n)):
                levels[i] = Level(cin, ch * ch_mult[i], nres + 1, i in attn_levels,
                                  False if i != 0 else None)
                cin = ch * ch_mult[i]
            self.up = nn.ModuleList(levels)
            self.norm_out, self.conv_out = gn(ch), nn.Conv2d(ch, 3, 3, 1, 1)
        else:
            self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
            mults = (1,) + tuple(ch_mult)
            self.down = nn.ModuleList(
                Level(ch * mults[i], ch * ch_mult[i], nres, i in attn_levels,
                      True if i != n - 1 else None) for i in range(n))
            self.mid = Mid(top)
            self.norm_out, self.conv_out = gn(top), nn.Conv2d(top, z, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        if self.decoder:
            h = self.mid(h)
            for lv in reversed(self.up):
                h = lv(h)
        else:
            for lv in self.down:
                h = lv(h)
            h = self.mid(h)
        return self.conv_out(swish(self.norm_out(h)))


class VQModel(nn.Module):
    def __init__(self, n_embed=16384, embed_dim=256, z=256):
        super().__init__()
        self.encoder, self.decoder = Coder(False, z=z), Coder(True, z=z)
        self.quantize = nn.Module()
        self.quantize.embedding = nn.Embedding(n_embed, embed_dim)
        self.quant_conv, self.post_quant_conv = nn.Conv2d(z, embed_dim, 1), nn.Conv2d(embed_dim, z, 1)

    def decode(self, zq):
        return self.decoder(self.post_quant_conv(zq))


def install_lightning_stub():
    """The checkpoints pickle a Lightning class as a dict key; generate.py has Lightning."""
    names = ["pytorch_lightning", "pytorch_lightning.callbacks",
             "pytorch_lightning.callbacks.model_checkpoint"]
    for n in names:
        sys.modules.setdefault(n, types.ModuleType(n))
    mc = sys.modules[names[-1]]
    if not hasattr(mc, "ModelCheckpoint"):
        mc.ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": names[-1]})


def load_vqgan(path):
    install_lightning_stub()
    model = VQModel()
    # as taming's init_from_ckpt (torch 2.6 and later need weights_only=False for its pickle)
    sd = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    missing, _ = model.load_state_dict(sd, strict=False)
    if missing:
        raise SystemExit(f"peer_baseline: VQGAN weights missing: {missing[:3]}")
    del sd
    return model.eval().requires_grad_(False)


# ---- CLIP (OpenAI's model.py, VisionTransformer + text Transformer, names kept) -----------

class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, heads, mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1, self.ln_2 = LayerNorm(d), LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(d, d * 4))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(d * 4, d))
        self.attn_mask = mask

    def forward(self, x):
        m = self.attn_mask.to(x.device, x.dtype) if self.attn_mask is not None else None
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=m)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, d, layers, heads, mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(d, heads, mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, res, patch, width, layers, heads, out):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        s = width ** -0.5
        self.class_embedding = nn.Parameter(s * torch.randn(width))
        self.positional_embedding = nn.Parameter(s * torch.randn((res // patch) ** 2 + 1, width))
        self.ln_pre, self.ln_post = LayerNorm(width), LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.proj = nn.Parameter(s * torch.randn(width, out))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1],
                                                             dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, sd):
        super().__init__()
        vw = sd["visual.conv1.weight"].shape[0]
        vl = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
        patch = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        embed, ctx = sd["text_projection"].shape[1], sd["positional_embedding"].shape[0]
        vocab, tw = sd["token_embedding.weight"].shape
        tl = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
        self.visual = VisionTransformer(patch * grid, patch, vw, vl, vw // 64, embed)
        mask = torch.empty(ctx, ctx).fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(tw, tl, tw // 64, mask)
        self.token_embedding = nn.Embedding(vocab, tw)
        self.positional_embedding = nn.Parameter(torch.empty(ctx, tw))
        self.ln_final = LayerNorm(tw)
        self.text_projection = nn.Parameter(torch.empty(tw, embed))
        self.logit_scale = nn.Parameter(torch.ones([]))

    def encode_image(self, x):
        return self.visual(x.type(self.visual.conv1.weight.dtype))

    def encode_text(self, tokens):
        dt = self.visual.conv1.weight.dtype
        x = self.token_embedding(tokens).type(dt) + self.positional_embedding.type(dt)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection


def convert_weights_fp16(model):
    """clip.model.convert_weights: conv / linear / attention / projections to float16."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.data = m.weight.data.half()
            if m.bias is not None:
                m.bias.data = m.bias.data.half()
        if isinstance(m, nn.MultiheadAttention):
            for a in ("in_proj_weight", "in_proj_bias"):
                getattr(m, a).data = getattr(m, a).data.half()
        for name in ("text_projection", "proj"):
            if hasattr(m, name) and getattr(m, name) is not None:
                getattr(m, name).data = getattr(m, name).data.half()


def load_clip(path, half):
    """As clip.load(jit=False): float16 weights on CUDA (half), float32 on the CPU."""
    jit_model = torch.jit.load(path, map_location="cpu").eval()
    sd = jit_model.state_dict()
    for k in ("input_resolution", "context_length", "vocab_size"):
        sd.pop(k, None)
    model = CLIP(sd)
    convert_weights_fp16(model)
    model.load_state_dict(sd)
    del jit_model, sd
    model = model.eval().requires_grad_(False)
    return model if half else model.float()


# ---- CLIP's BPE tokenizer (plain Python) --------------------------------------------------

def byte_unicode_table():
    """GPT-2's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Tokenizer:
    PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|"
                     r"[^\s\w]+", re.IGNORECASE)

    def __init__(self, path):
        merges = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        self.bytes = byte_unicode_table()
        vocab = list(self.bytes.values())
        vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.ids = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}

    def bpe(self, token):
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, math.inf))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def tokenize(self, text, ctx=77):
        text = re.sub(r"\s+", " ", html.unescape(text)).strip().lower()
        ids = [self.ids["<|startoftext|>"]]
        for tok in self.PAT.findall(text):
            tok = "".join(self.bytes[b] for b in tok.encode("utf-8"))
            ids += [self.ids[t] for t in self.bpe(tok)]
        ids = ids[:ctx - 1] + [self.ids["<|endoftext|>"]]
        return torch.tensor([ids + [0] * (ctx - len(ids))])


# ---- the loop (generate.py) ----------------------------------------------------------------

class ReplaceGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_forward, x_backward):
        ctx.shape = x_backward.shape
        return x_forward

    @staticmethod
    def backward(ctx, grad_in):
        return None, grad_in.sum_to_size(ctx.shape)


class ClampWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.lo, ctx.hi = lo, hi
        ctx.save_for_backward(x)
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad_in):
        x, = ctx.saved_tensors
        return grad_in * (grad_in * (x - x.clamp(ctx.lo, ctx.hi)) >= 0), None, None


replace_grad, clamp_with_grad = ReplaceGrad.apply, ClampWithGrad.apply


def vector_quantize(x, codebook):
    d = x.pow(2).sum(dim=-1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * x @ codebook.T
    x_q = F.one_hot(d.argmin(-1), codebook.shape[0]).to(d.dtype) @ codebook
    return replace_grad(x_q, x)


def sample_grid(x, theta):
    """Warps x by per-sample 3x3 maps theta (output -> input, normalised coordinates)."""
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device),
                            torch.linspace(-1, 1, w, device=x.device), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)
    src = pts @ theta.transpose(1, 2)
    grid = (src[..., :2] / src[..., 2:3]).reshape(n, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def gate(n, p, dev):
    return (torch.rand(n, device=dev) < p).float()


def uniform(shape, lo, hi, dev):
    return torch.empty(shape, device=dev).uniform_(lo, hi)


def random_affine(x, p=0.7):
    n, dev = x.shape[0], x.device
    g = gate(n, p, dev)
    ang = uniform(n, -15, 15, dev).deg2rad() * g
    sh = uniform(n, -5, 5, dev).deg2rad() * g
    tx, ty = (uniform(n, -0.2, 0.2, dev) * g for _ in range(2))
    c, s, k = ang.cos(), ang.sin(), sh.tan()
    m = torch.zeros(n, 3, 3, device=dev)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = c, c * k - s, tx
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = s, s * k + c, ty
    m[:, 2, 2] = 1
    return sample_grid(x, torch.linalg.inv(m))


def random_perspective(x, p=0.7, scale=0.7):
    n, dev = x.shape[0], x.device
    g = gate(n, p, dev).reshape(n, 1, 1)
    start = torch.tensor([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]], device=dev).expand(n, 4, 2)
    inward = -start.sign() * torch.rand(n, 4, 2, device=dev) * scale * g
    end = start + inward
    a = torch.zeros(n, 8, 8, device=dev)  # kornia's get_perspective_transform: end -> start
    b = start.reshape(n, 8)
    for i in range(4):
        (ex, ey), (sx, sy) = end[:, i].unbind(-1), start[:, i].unbind(-1)
        one, zero = torch.ones(n, device=dev), torch.zeros(n, device=dev)
        a[:, 2 * i] = torch.stack([ex, ey, one, zero, zero, zero, -ex * sx, -ey * sx], -1)
        a[:, 2 * i + 1] = torch.stack([zero, zero, zero, ex, ey, one, -ex * sy, -ey * sy], -1)
    h = torch.cat([torch.linalg.solve(a, b), torch.ones(n, 1, device=dev)], -1).reshape(n, 3, 3)
    return sample_grid(x, h)


def color_jitter(x, p=0.7, hue=0.1, sat=0.1):
    n, dev = x.shape[0], x.device
    g = gate(n, p, dev).reshape(n, 1, 1)
    r, gg, b = x.clamp(0, 1).unbind(1)
    mx, mn = torch.max(torch.max(r, gg), b), torch.min(torch.min(r, gg), b)
    v, delta = mx, mx - mn
    s = delta / (mx + 1e-8)
    dc = delta + 1e-8
    hh = torch.where(mx == r, ((gg - b) / dc) % 6, torch.where(mx == gg, (b - r) / dc + 2,
                                                                (r - gg) / dc + 4)) / 6
    hh = (hh + uniform((n, 1, 1), -hue, hue, dev) * g) % 1.0
    s = (s * (1 + uniform((n, 1, 1), -sat, sat, dev) * g)).clamp(0, 1)
    h6 = hh * 6
    k = lambda m: (m + h6) % 6  # noqa: E731
    f = lambda m: v - v * s * torch.clamp(torch.min(k(m), 4 - k(m)), 0, 1)  # noqa: E731
    return torch.stack([f(5), f(3), f(1)], 1)


def random_erasing(x, p=0.7):
    n, _, h, w = x.shape
    area = torch.empty(1).uniform_(0.1, 0.4).item() * h * w
    ratio = math.exp(torch.empty(1).uniform_(math.log(0.3), math.log(1 / 0.3)).item())
    eh, ew = min(h, max(1, int(round((area * ratio) ** 0.5)))), min(w, max(1, int(round((area / ratio) ** 0.5))))
    y0, x0 = torch.randint(0, h - eh + 1, ()).item(), torch.randint(0, w - ew + 1, ()).item()
    mask = torch.ones(1, 1, h, w, device=x.device)
    mask[..., y0:y0 + eh, x0:x0 + ew] = 0
    g = gate(n, p, x.device).reshape(n, 1, 1, 1)
    return x * (1 - g + g * mask)


class MakeCutouts(nn.Module):
    """generate.py's "latest" cutouts: cutn (avg + max) poolings, augmentations, noise."""

    def __init__(self, cut_size, cutn):
        super().__init__()
        self.cutn = cutn
        self.av_pool = nn.AdaptiveAvgPool2d((cut_size, cut_size))
        self.max_pool = nn.AdaptiveMaxPool2d((cut_size, cut_size))

    def forward(self, x):
        cutouts = [(self.av_pool(x) + self.max_pool(x)) / 2 for _ in range(self.cutn)]
        batch = torch.cat(cutouts, dim=0)
        batch = random_erasing(color_jitter(random_perspective(random_affine(batch))))
        facs = batch.new_empty([self.cutn, 1, 1, 1]).uniform_(0, 0.1)
        return batch + facs * torch.randn_like(batch)


class Prompt(nn.Module):
    def __init__(self, embed, weight=1.0, stop=float("-inf")):
        super().__init__()
        self.register_buffer("embed", embed)
        self.register_buffer("weight", torch.as_tensor(weight))
        self.register_buffer("stop", torch.as_tensor(stop))

    def forward(self, x):
        xn = F.normalize(x.unsqueeze(1), dim=2)
        en = F.normalize(self.embed.unsqueeze(0), dim=2)
        dists = xn.sub(en).norm(dim=2).div(2).arcsin().pow(2).mul(2) * self.weight.sign()
        return self.weight.abs() * replace_grad(dists, torch.maximum(dists, self.stop)).mean()


MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).reshape(1, 3, 1, 1)


def save_png(img, path):
    from PIL import Image  # generate.py writes with PIL too
    arr = (img[0].clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()
    Image.fromarray(arr).save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vqgan", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--bpe", required=True)
    ap.add_argument("-p", "--prompt", default="a red fox")
    ap.add_argument("-s", "--size", type=int, nargs=2, default=[128, 128])
    ap.add_argument("--cutn", type=int, default=8)
    ap.add_argument("-i", "--iterations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default="peer.png")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="intra-op threads (default: all cores, as vqclip; Debian's torch uses 1)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    event("start", since_interpreter=time.monotonic() - T0, threads=torch.get_num_threads())
    torch.manual_seed(a.seed)

    dev = torch.device(a.device)
    model = load_vqgan(a.vqgan).to(dev)
    perceptor = load_clip(a.clip, half=dev.type == "cuda").to(dev)
    mean, std = MEAN.to(dev), STD.to(dev)
    tok = Tokenizer(a.bpe)
    cut_size = perceptor.visual.conv1.weight.shape[-1] * round(
        (perceptor.visual.positional_embedding.shape[0] - 1) ** 0.5)
    make_cutouts = MakeCutouts(cut_size, a.cutn)
    codebook = model.quantize.embedding.weight
    z_min = codebook.min(dim=0).values[None, :, None, None]
    z_max = codebook.max(dim=0).values[None, :, None, None]
    toks_x, toks_y = a.size[0] // 16, a.size[1] // 16
    one_hot = F.one_hot(torch.randint(codebook.shape[0], [toks_y * toks_x], device=dev),
                        codebook.shape[0]).float()
    z = (one_hot @ codebook).view([-1, toks_y, toks_x, codebook.shape[1]]).permute(0, 3, 1, 2)
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.1)
    with torch.no_grad():
        prompts = [Prompt(perceptor.encode_text(tok.tokenize(a.prompt).to(dev)).float())]

    def synth(z):
        z_q = vector_quantize(z.movedim(1, 3), codebook).movedim(3, 1)
        return clamp_with_grad(model.decode(z_q).add(1).div(2), 0, 1)

    @torch.inference_mode()
    def checkin():
        save_png(synth(z), a.output)

    event("loop_start")
    for i in range(a.iterations):
        opt.zero_grad(set_to_none=True)
        out = synth(z)
        feats = perceptor.encode_image((make_cutouts(out) - mean) / std).float()
        losses = [p(feats) for p in prompts]
        if i == 0:
            checkin()
        sum(losses).backward()
        opt.step()
        with torch.inference_mode():
            z.copy_(z.maximum(z_min).minimum(z_max))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        event("step", i=i + 1, loss=float(sum(losses)))
    checkin()
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
    event("done", steps=a.iterations, peak_device_bytes=peak)


if __name__ == "__main__":
    main()

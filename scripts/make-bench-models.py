#!/usr/bin/env python3
"""Writes full-size random-weight models in the released container formats, for benchmarks.

  scripts/make-bench-models.py OUTDIR [--vqgan] [--clip] [--clip-rn] [--clip-l14] [--esrgan]

- OUTDIR/vqgan_f16_16384_random.ckpt (+ .yaml): a PyTorch-Lightning-style checkpoint with the
  vqgan_imagenet_f16_16384 architecture (ch 128, ch_mult 1,1,2,2,4, 2 res blocks, attention
  at 16x16, z 256, 16384 codes), `loss.*` weights of the LPIPS + discriminator sizes, and two
  Adam optimizer states, as the released file has (~0.9 GB).
- OUTDIR/ViT-B-32_random.pt: a TorchScript archive whose state_dict has OpenAI's ViT-B/32 names,
  shapes and dtypes (float16 conv/linear weights, float32 others).
- with --clip-rn (not written by default): OUTDIR/RN50_random.pt, the same for OpenAI's RN50
  (a ModifiedResNet of width 64, blocks 3,4,6,3, at 224 pixels; BatchNorms in float32).
- with --clip-l14 (not written by default): OUTDIR/ViT-L-14_random.pt, the image tower of
  OpenAI's ViT-L/14 (width 1024, 24 layers, 14-pixel patches, 224 pixels, embedding 768) with
  ViT-B/32's text tower (the benchmarks measure the image tower).
- with --esrgan (not written by default): OUTDIR/RealESRGAN_x4plus_random.pth ({"params_ema": RRDBNet x4, 64
  features, 23 blocks}) and OUTDIR/realesr-general-x4v3_random.pth ({"params": SRVGGNetCompact,
  64 features, 32 convs, PReLU}), the released Real-ESRGAN files' layouts.

Weights are random: these files measure speed and memory, not quality. Needs Debian's
python3-torch; this is a development tool, vqclip itself never runs Python.
"""
import argparse
import os
import sys
import types

import torch


def vqgan_state_dict(ch=128, ch_mult=(1, 1, 2, 2, 4), nres=2, attn_levels=(4,), z=256,
                     embed=256, n_embed=16384, gen=None):
    sd = {}

    def conv(name, cin, cout, k):
        sd[name + ".weight"] = torch.randn(cout, cin, k, k, generator=gen) * (cin * k * k) ** -0.5
        sd[name + ".bias"] = torch.zeros(cout)

    def norm(name, c):
        sd[name + ".weight"] = torch.ones(c)
        sd[name + ".bias"] = torch.zeros(c)

    def res(name, cin, cout):
        norm(name + ".norm1", cin)
        conv(name + ".conv1", cin, cout, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(name + ".nin_shortcut", cin, cout, 1)

    def attn(name, c):
        norm(name + ".norm", c)
        for p in ("q", "k", "v", "proj_out"):
            conv(name + "." + p, c, c, 1)

    mults = (1,) + tuple(ch_mult)
    conv("encoder.conv_in", 3, ch, 3)
    for i in range(len(ch_mult)):
        cin, cout = ch * mults[i], ch * ch_mult[i]
        for b in range(nres):
            res(f"encoder.down.{i}.block.{b}", cin if b == 0 else cout, cout)
            if i in attn_levels:
                attn(f"encoder.down.{i}.attn.{b}", cout)
        if i != len(ch_mult) - 1:
            conv(f"encoder.down.{i}.downsample.conv", cout, cout, 3)
    top = ch * ch_mult[-1]
    for m in ("encoder", "decoder"):
        res(f"{m}.mid.block_1", top, top)
        attn(f"{m}.mid.attn_1", top)
        res(f"{m}.mid.block_2", top, top)
    norm("encoder.norm_out", top)
    conv("encoder.conv_out", top, z, 3)
    conv("decoder.conv_in", z, top, 3)
    cin = top
    for i in reversed(range(len(ch_mult))):
        cout = ch * ch_mult[i]
        for b in range(nres + 1):
            res(f"decoder.up.{i}.block.{b}", cin, cout)
            cin = cout
            if i in attn_levels:
                attn(f"decoder.up.{i}.attn.{b}", cout)
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", cout, cout, 3)
    norm("decoder.norm_out", ch)
    conv("decoder.conv_out", ch, 3, 3)
    sd["quantize.embedding.weight"] = torch.rand(n_embed, embed, generator=gen) * 2 - 1
    conv("quant_conv", z, embed, 1)
    conv("post_quant_conv", embed, z, 1)
    return sd


def loss_state_dict(gen):
    """Tensors of the sizes of VQLPIPSWithDiscriminator's (VGG16 LPIPS + NLayer discriminator)."""
    sd = {}
    vgg = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
           (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    for i, (cin, cout) in enumerate(vgg):
        sd[f"loss.perceptual_loss.net.slice{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen)
        sd[f"loss.perceptual_loss.net.slice{i}.bias"] = torch.zeros(cout)
    for i, c in enumerate((64, 128, 256, 512, 512)):
        sd[f"loss.perceptual_loss.lin{i}.model.1.weight"] = torch.rand(1, c, 1, 1, generator=gen)
    disc = [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    for i, (cin, cout) in enumerate(disc):
        sd[f"loss.discriminator.main.{i}.weight"] = torch.randn(cout, cin, 4, 4, generator=gen)
    sd["loss.logvar"] = torch.zeros(())
    return sd


def adam_state(params, gen):
    return {"state": {i: {"step": 1000, "exp_avg": torch.randn_like(p), "exp_avg_sq": torch.rand_like(p)}
                      for i, p in enumerate(params)},
            "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "eps": 1e-8, "weight_decay": 0,
                              "amsgrad": False, "params": list(range(len(params)))}]}


def write_vqgan(outdir):
    gen = torch.Generator().manual_seed(0)
    model = vqgan_state_dict(gen=gen)
    loss = loss_state_dict(gen)
    sd = dict(model)
    sd.update(loss)
    # A stand-in for the Lightning class the released files use as a dict key.
    pl = types.ModuleType("pytorch_lightning")
    cb = types.ModuleType("pytorch_lightning.callbacks")
    mc = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
    class ModelCheckpoint:  # noqa: E306
        pass
    ModelCheckpoint.__module__ = mc.__name__
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    mc.ModelCheckpoint = ModelCheckpoint
    sys.modules.update({pl.__name__: pl, cb.__name__: cb, mc.__name__: mc})
    ckpt = {"epoch": 3, "global_step": 100000, "pytorch-lightning_version": "1.0.8",
            "callbacks": {ModelCheckpoint: {"monitor": "val/rec_loss", "best_model_score": torch.tensor(0.5)}},
            "optimizer_states": [adam_state(list(model.values()), gen), adam_state(list(loss.values()), gen)],
            "lr_schedulers": [], "state_dict": sd}
    path = os.path.join(outdir, "vqgan_f16_16384_random.ckpt")
    torch.save(ckpt, path)
    with open(os.path.join(outdir, "vqgan_f16_16384_random.yaml"), "w") as f:
        f.write("model:\n  target: taming.models.vqgan.VQModel\n  params:\n    embed_dim: 256\n"
                "    n_embed: 16384\n    ddconfig:\n      double_z: False\n      z_channels: 256\n"
                "      resolution: 256\n      in_channels: 3\n      out_ch: 3\n      ch: 128\n"
                "      ch_mult: [1, 1, 2, 2, 4]\n      num_res_blocks: 2\n"
                "      attn_resolutions: [16]\n      dropout: 0.0\n")
    print(path, os.path.getsize(path))


class TensorTree(torch.nn.Module):
    """A module holding only named tensors, so that TorchScript stores them under their names."""
    def __init__(self, tensors):
        super().__init__()
        children = {}
        for name, t in tensors.items():
            head, _, rest = name.partition(".")
            if rest:
                children.setdefault(head, {})[rest] = t
            else:
                self.register_parameter(head, torch.nn.Parameter(t, requires_grad=False))
        for head, sub in children.items():
            self.add_module(head, TensorTree(sub))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _randn(gen):
    def r(*s, dt=torch.float32, scale=0.02):
        return (torch.randn(*s, generator=gen) * scale).to(dt)
    return r


def clip_text_head(sd, r, embed=512, tw=512, ctx=77):
    """The text tower's parts that OpenAI's files draw first (the order keeps the files the
    same as before for a seed), and logit_scale."""
    sd["positional_embedding"] = r(ctx, tw, scale=0.01)
    sd["text_projection"] = r(tw, embed, dt=torch.float16, scale=tw ** -0.5)
    sd["logit_scale"] = torch.tensor(4.6052)


def clip_text_tail(sd, r, tw=512, tl=12, vocab=49408, ctx=77):
    """The rest of the text tower and the scalars that OpenAI's files carry."""
    sd["ln_final.weight"] = torch.ones(tw)
    sd["ln_final.bias"] = torch.zeros(tw)
    for i in range(tl):
        transformer_block(sd, f"transformer.resblocks.{i}", tw, r)
    sd["token_embedding.weight"] = r(vocab, tw, dt=torch.float16)
    sd["context_length"] = torch.tensor(ctx)
    sd["vocab_size"] = torch.tensor(vocab)


def transformer_block(sd, p, w, r):
    half = torch.float16
    sd[p + ".attn.in_proj_weight"] = r(3 * w, w, dt=half)
    sd[p + ".attn.in_proj_bias"] = r(3 * w, dt=half)
    sd[p + ".attn.out_proj.weight"] = r(w, w, dt=half)
    sd[p + ".attn.out_proj.bias"] = r(w, dt=half)
    for ln in ("ln_1", "ln_2"):
        sd[f"{p}.{ln}.weight"] = torch.ones(w)
        sd[f"{p}.{ln}.bias"] = torch.zeros(w)
    sd[p + ".mlp.c_fc.weight"] = r(4 * w, w, dt=half)
    sd[p + ".mlp.c_fc.bias"] = r(4 * w, dt=half)
    sd[p + ".mlp.c_proj.weight"] = r(w, 4 * w, dt=half)
    sd[p + ".mlp.c_proj.bias"] = r(w, dt=half)


def clip_vit_state_dict(width=768, layers=12, patch=32, res=224, embed=512, gen=None):
    half, r = torch.float16, _randn(gen)
    sd = {}
    grid = res // patch
    clip_text_head(sd, r, embed=embed)
    sd["visual.class_embedding"] = r(width, scale=width ** -0.5)
    sd["visual.positional_embedding"] = r(grid * grid + 1, width, scale=width ** -0.5)
    sd["visual.proj"] = r(width, embed, dt=half, scale=width ** -0.5)
    sd["visual.conv1.weight"] = r(width, 3, patch, patch, dt=half)
    for ln in ("visual.ln_pre", "visual.ln_post"):
        sd[ln + ".weight"] = torch.ones(width)
        sd[ln + ".bias"] = torch.zeros(width)
    for i in range(layers):
        transformer_block(sd, f"visual.transformer.resblocks.{i}", width, r)
    clip_text_tail(sd, r)
    sd["input_resolution"] = torch.tensor(res)
    return sd


def clip_rn_state_dict(width=64, blocks=(3, 4, 6, 3), res=224, embed=1024, gen=None):
    """OpenAI's ModifiedResNet: a three-convolution stem, Bottleneck blocks with average pooling
    for their strides, and attention pooling (heads = width * 32 / 64)."""
    half, r = torch.float16, _randn(gen)
    sd = {}
    clip_text_head(sd, r, embed=embed)
    def bn(p, c):
        sd[p + ".weight"] = 1 + r(c)
        sd[p + ".bias"] = r(c)
        sd[p + ".running_mean"] = r(c)
        sd[p + ".running_var"] = 1 + r(c).abs()
        sd[p + ".num_batches_tracked"] = torch.tensor(0)
    def conv(p, cout, cin, k):
        sd[p + ".weight"] = r(cout, cin, k, k, dt=half, scale=(cin * k * k) ** -0.5)
    stem = ((3, width // 2), (width // 2, width // 2), (width // 2, width))
    for i, (cin, cout) in enumerate(stem):
        conv(f"visual.conv{i + 1}", cout, cin, 3)
        bn(f"visual.bn{i + 1}", cout)
    inplanes = width
    for l, n in enumerate(blocks):
        planes = width << l
        for j in range(n):
            p = f"visual.layer{l + 1}.{j}"
            conv(p + ".conv1", planes, inplanes, 1)
            bn(p + ".bn1", planes)
            conv(p + ".conv2", planes, planes, 3)
            bn(p + ".bn2", planes)
            conv(p + ".conv3", planes * 4, planes, 1)
            bn(p + ".bn3", planes * 4)
            if j == 0 and (l > 0 or inplanes != planes * 4):
                conv(p + ".downsample.0", planes * 4, inplanes, 1)
                bn(p + ".downsample.1", planes * 4)
            inplanes = planes * 4
    c, grid = width * 32, res // 32
    sd["visual.attnpool.positional_embedding"] = r(grid * grid + 1, c, scale=c ** -0.5)
    for proj, cout in (("q_proj", c), ("k_proj", c), ("v_proj", c), ("c_proj", embed)):
        sd[f"visual.attnpool.{proj}.weight"] = r(cout, c, dt=half)
        sd[f"visual.attnpool.{proj}.bias"] = r(cout, dt=half)
    clip_text_tail(sd, r)
    sd["input_resolution"] = torch.tensor(res)
    return sd


def save_clip(outdir, name, sd):
    """A TorchScript archive of sd's tensors under their names, as OpenAI's .pt files are."""
    path = os.path.join(outdir, name)
    torch.jit.save(torch.jit.script(TensorTree(sd)), path)
    print(path, os.path.getsize(path))


def write_clip(outdir):
    save_clip(outdir, "ViT-B-32_random.pt",
              clip_vit_state_dict(gen=torch.Generator().manual_seed(1)))


def write_clip_rn(outdir):
    save_clip(outdir, "RN50_random.pt", clip_rn_state_dict(gen=torch.Generator().manual_seed(3)))


def write_clip_l14(outdir):
    save_clip(outdir, "ViT-L-14_random.pt",
              clip_vit_state_dict(width=1024, layers=24, patch=14, res=224, embed=768,
                                  gen=torch.Generator().manual_seed(4)))


def rrdbnet_state_dict(nf=64, nb=23, gc=32, gen=None):
    """BasicSR's RRDBNet x4 names and shapes (RealESRGAN_x4plus: 64 features, 23 blocks)."""
    sd = {}

    def conv(name, cin, cout):
        sd[name + ".weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (cin * 9) ** -0.5
        sd[name + ".bias"] = torch.zeros(cout)

    conv("conv_first", 3, nf)
    for b in range(nb):
        for r in range(1, 4):
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", nf + (c - 1) * gc, nf if c == 5 else gc)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(name, nf, nf)
    conv("conv_last", nf, 3)
    return sd


def srvgg_state_dict(nf=64, nconv=32, scale=4, gen=None):
    """SRVGGNetCompact with PReLU (realesr-general-x4v3: 64 features, 32 body convs)."""
    sd = {}
    for i in range(nconv + 2):
        cin = 3 if i == 0 else nf
        cout = 3 * scale * scale if i == nconv + 1 else nf
        sd[f"body.{2 * i}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (cin * 9) ** -0.5
        sd[f"body.{2 * i}.bias"] = torch.zeros(cout)
        if i <= nconv:
            sd[f"body.{2 * i + 1}.weight"] = torch.full((nf,), 0.25)
    return sd


def write_esrgan(outdir):
    gen = torch.Generator().manual_seed(2)
    # the released files' containers: {"params_ema": ...} for RRDBNet, {"params": ...} for SRVGG
    files = (("RealESRGAN_x4plus_random.pth", "params_ema", rrdbnet_state_dict(gen=gen)),
             ("realesr-general-x4v3_random.pth", "params", srvgg_state_dict(gen=gen)))
    for name, key, sd in files:
        path = os.path.join(outdir, name)
        torch.save({key: sd}, path)
        print(path, os.path.getsize(path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--vqgan", action="store_true")
    ap.add_argument("--clip", action="store_true")
    ap.add_argument("--clip-rn", action="store_true",
                    help="also (or only) OpenAI's RN50 layout")
    ap.add_argument("--clip-l14", action="store_true",
                    help="also (or only) OpenAI's ViT-L/14 image tower")
    ap.add_argument("--esrgan", action="store_true",
                    help="also (or only) the Real-ESRGAN x4plus and general-x4v3 layouts")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    both = not a.vqgan and not a.clip and not a.clip_rn and not a.clip_l14 and not a.esrgan
    if a.vqgan or both:
        write_vqgan(a.outdir)
    if a.clip or both:
        write_clip(a.outdir)
    if a.clip_rn:
        write_clip_rn(a.outdir)
    if a.clip_l14:
        write_clip_l14(a.outdir)
    if a.esrgan:
        write_esrgan(a.outdir)


if __name__ == "__main__":
    main()

"""Loads the demo models back into the training modules (for evaluation)."""
import json
import os
import struct

import numpy as np
import torch

import bpe
import clip_model
import taming_vq


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        dt = {"F16": np.float16, "F32": np.float32}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).copy().reshape(v["shape"])).float()
    return out


def load_clip(folder, name="clip_demo"):
    sd = read_safetensors(os.path.join(folder, name + ".safetensors"))
    ctx, tw = sd["positional_embedding"].shape
    vw, _, patch, _ = sd["visual.conv1.weight"].shape
    grid = int(round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    vl = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
    tl = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    m = clip_model.CLIP(embed=sd["text_projection"].shape[1], res=grid * patch, patch=patch, vw=vw,
                        vl=vl, ctx=ctx, vocab=sd["token_embedding.weight"].shape[0], tw=tw, tl=tl)
    m.load_state_dict(sd)
    m.eval()
    tok = bpe.Tokenizer(bpe.read(folder), ctx)
    return m, tok


def load_vqgan(folder, name="vqgan_demo"):
    ck = torch.load(os.path.join(folder, name + ".ckpt"), map_location="cpu")
    m = taming_vq.VQModel()
    m.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    m.eval()
    return m

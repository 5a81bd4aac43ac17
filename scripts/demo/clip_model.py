"""A CLIP in OpenAI's architecture and parameter names (clip/model.py: VisionTransformer, the
text Transformer with a causal mask, QuickGELU, pooling at the end-of-text token), small enough
to train on two CPU cores."""
from collections import OrderedDict

import torch
import torch.nn as nn

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, w, heads, mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(w, heads)
        self.ln_1 = nn.LayerNorm(w)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(w, 4 * w)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * w, w))]))
        self.ln_2 = nn.LayerNorm(w)
        self.mask = mask

    def forward(self, x):
        h = self.ln_1(x)
        m = self.mask.to(x.dtype) if self.mask is not None else None
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=m)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, w, layers, heads, mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(w, heads, mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, res, patch, w, layers, out):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, patch, patch, bias=False)
        s = w ** -0.5
        self.class_embedding = nn.Parameter(s * torch.randn(w))
        self.positional_embedding = nn.Parameter(s * torch.randn((res // patch) ** 2 + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, layers, max(1, w // 64))
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(s * torch.randn(w, out))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed=128, res=64, patch=8, vw=128, vl=4, ctx=32, vocab=1000, tw=128, tl=3):
        super().__init__()
        self.config = dict(embed=embed, res=res, patch=patch, vw=vw, vl=vl, ctx=ctx, vocab=vocab,
                           tw=tw, tl=tl)
        self.visual = VisionTransformer(res, patch, vw, vl, embed)
        mask = torch.full((ctx, ctx), float("-inf")).triu_(1)
        self.transformer = Transformer(tw, tl, max(1, tw // 64), mask)
        self.token_embedding = nn.Embedding(vocab, tw)
        self.positional_embedding = nn.Parameter(torch.empty(ctx, tw))
        self.ln_final = nn.LayerNorm(tw)
        self.text_projection = nn.Parameter(torch.empty(tw, embed))
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=tw ** -0.5)
        for tr, w in ((self.transformer, tw), (self.visual.transformer, vw)):
            for b in tr.resblocks:
                nn.init.normal_(b.attn.in_proj_weight, std=w ** -0.5)
                nn.init.normal_(b.attn.out_proj.weight, std=w ** -0.5 * (2 * len(tr.resblocks)) ** -0.5)
                nn.init.normal_(b.mlp.c_fc.weight, std=(2 * w) ** -0.5)
                nn.init.normal_(b.mlp.c_proj.weight, std=w ** -0.5 * (2 * len(tr.resblocks)) ** -0.5)

    def encode_image(self, x):
        """x: N x 3 x res x res in [0, 1]; normalised here with CLIP's mean and std."""
        m = torch.tensor(MEAN).view(1, 3, 1, 1)
        s = torch.tensor(STD).view(1, 3, 1, 1)
        return self.visual((x - m) / s)

    def encode_text(self, tokens):
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection


def save_safetensors(model, path, half=True):
    """OpenAI's state-dict names; matrices in float16 (as in OpenAI's files), the rest float32."""
    import json
    import struct
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    header, blobs, off = {"__metadata__": {"format": "pt", "note": "vqclip demo CLIP"}}, [], 0
    for k in sorted(sd):
        t = sd[k].contiguous()
        if half and t.dim() >= 2 and k not in ("positional_embedding", "visual.positional_embedding"):
            t = t.half()
        else:
            t = t.float()
        b = t.numpy().tobytes()
        header[k] = {"dtype": "F16" if t.dtype == torch.float16 else "F32",
                     "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, path)

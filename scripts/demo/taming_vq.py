"""A VQGAN in taming-transformers' architecture and parameter names (VQModel: Encoder, Decoder,
VectorQuantizer2, quant_conv, post_quant_conv), so that vqclip's loader reads the state dict as
it reads the released checkpoints. Only what the demo uses: no attention outside the middle
blocks, no dropout."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def Normalize(c):
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = Normalize(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = Normalize(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = Normalize(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        b, c, hh, ww = h.shape
        q = self.q(h).reshape(b, c, hh * ww).permute(0, 2, 1)
        k = self.k(h).reshape(b, c, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)
        v = self.v(h).reshape(b, c, hh * ww)
        h = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1 = ResnetBlock(c, c)
        self.attn_1 = AttnBlock(c)
        self.block_2 = ResnetBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, nres, z):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
        mults = (1,) + tuple(ch_mult)
        self.down = nn.ModuleList()
        for i in range(len(ch_mult)):
            lvl = nn.Module()
            cin, cout = ch * mults[i], ch * ch_mult[i]
            lvl.block = nn.ModuleList([ResnetBlock(cin if b == 0 else cout, cout) for b in range(nres)])
            lvl.attn = nn.ModuleList()
            if i != len(ch_mult) - 1:
                lvl.downsample = Downsample(cout)
            self.down.append(lvl)
        top = ch * ch_mult[-1]
        self.mid = Mid(top)
        self.norm_out = Normalize(top)
        self.conv_out = nn.Conv2d(top, z, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for lvl in self.down:
            for b in lvl.block:
                h = b(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, ch, ch_mult, nres, z):
        super().__init__()
        top = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z, top, 3, 1, 1)
        self.mid = Mid(top)
        ups = [None] * len(ch_mult)
        cin = top
        for i in reversed(range(len(ch_mult))):
            lvl = nn.Module()
            cout = ch * ch_mult[i]
            blocks = []
            for b in range(nres + 1):
                blocks.append(ResnetBlock(cin, cout))
                cin = cout
            lvl.block = nn.ModuleList(blocks)
            lvl.attn = nn.ModuleList()
            if i != 0:
                lvl.upsample = Upsample(cout)
            ups[i] = lvl
        self.up = nn.ModuleList(ups)
        self.norm_out = Normalize(ch)
        self.conv_out = nn.Conv2d(ch, 3, 3, 1, 1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            for b in self.up[i].block:
                h = b(h)
            if hasattr(self.up[i], "upsample"):
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    def __init__(self, n, dim, beta=0.25):
        super().__init__()
        self.embedding = nn.Embedding(n, dim)
        self.embedding.weight.data.uniform_(-1.0 / n, 1.0 / n)
        self.beta = beta

    def indices(self, z):
        zf = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        e = self.embedding.weight
        d = (zf * zf).sum(1, keepdim=True) - 2 * zf @ e.t() + (e * e).sum(1)[None]
        return d.argmin(1)

    def forward(self, z):
        idx = self.indices(z)
        zq = self.embedding(idx).reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        loss = self.beta * F.mse_loss(zq.detach(), z) + F.mse_loss(zq, z.detach())
        return z + (zq - z).detach(), loss, idx


class VQModel(nn.Module):
    def __init__(self, ch=32, ch_mult=(1, 1, 2), nres=1, z=64, embed_dim=32, n_embed=512):
        super().__init__()
        self.config = dict(ch=ch, ch_mult=list(ch_mult), nres=nres, z=z, embed_dim=embed_dim,
                           n_embed=n_embed)
        self.encoder = Encoder(ch, ch_mult, nres, z)
        self.decoder = Decoder(ch, ch_mult, nres, z)
        self.quantize = VectorQuantizer(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(z, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z, 1)

    def encode_pre(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, zq):
        return self.decoder(self.post_quant_conv(zq))

    def forward(self, x, quantize=True):
        h = self.encode_pre(x)
        if not quantize:
            return self.decode(h), torch.zeros(()), None
        zq, qloss, idx = self.quantize(h)
        return self.decode(zq), qloss, idx

    def yaml(self):
        c = self.config
        down = 2 ** (len(c["ch_mult"]) - 1)
        return ("model:\n  base_learning_rate: 4.5e-06\n  target: taming.models.vqgan.VQModel\n"
                f"  params:\n    embed_dim: {c['embed_dim']}\n    n_embed: {c['n_embed']}\n"
                "    ddconfig:\n      double_z: false\n"
                f"      z_channels: {c['z']}\n      resolution: 64\n      in_channels: 3\n"
                f"      out_ch: 3\n      ch: {c['ch']}\n      ch_mult: {c['ch_mult']}\n"
                f"      num_res_blocks: {c['nres']}\n      attn_resolutions: []\n"
                f"      dropout: 0.0\n    # downsampling factor {down}\n")

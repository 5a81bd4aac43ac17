#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (docs/fuzzing.md) into OUT/<target>/.

    fuzz/make-corpus.py OUT [FIXTURES]

Seeds come from three places: the small hand-made ones committed under fuzz/corpus/<target>/;
pieces of the reference fixtures (FIXTURES, default ../shared/fixtures: the pickles inside the
checkpoints, the YAML configs, the tokenizer test texts, the small safetensors files); and
small files written here the way torch.save, TorchScript and safetensors write them, with the
Python standard library only (no torch: fake `torch` modules make pickle emit the same opcodes).
Nothing here is executed by vqclip; the files only need to look right byte for byte.
"""
import gzip
import io
import json
import os
import pickle
import pickletools
import shutil
import struct
import sys
import types
import zipfile
import zlib
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_SEED = 64 << 10  # larger pieces of the fixtures are skipped (they slow the fuzzer down)


# ---- fake torch: classes and functions that pickle by the names torch uses ----------------

def _module(name):
    mod = sys.modules.get(name) or types.ModuleType(name)
    sys.modules[name] = mod
    return mod


def _global(module, name, obj):
    obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
    setattr(_module(module), name, obj)
    return obj


for _m in ("torch", "torch._utils", "torch._tensor", "__torch__"):
    _module(_m)
_module("torch")._utils = sys.modules["torch._utils"]
STORAGE_TYPES = {t: _global("torch", t + "Storage", type(t + "Storage", (), {}))
                 for t in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Byte", "Bool")}
ELEM = {"Float": "<f", "Half": "<e", "Double": "<d", "Long": "<q", "Int": "<i", "Byte": "B",
        "Bool": "?", "BFloat16": "<H"}
rebuild_v2 = _global("torch._utils", "_rebuild_tensor_v2", lambda *a: None)
rebuild_param = _global("torch._utils", "_rebuild_parameter", lambda *a: None)


class Storage:
    def __init__(self, key, kind, values):
        self.key, self.kind, self.values = key, kind, values

    def raw(self):
        return b"".join(struct.pack(ELEM[self.kind], v) for v in self.values)


class Tensor:
    def __init__(self, storage, shape, offset=0, stride=None):
        if stride is None:
            stride, acc = [], 1
            for s in reversed(shape):
                stride.insert(0, acc)
                acc *= s
        self.args = (storage, offset, tuple(shape), tuple(stride), False, OrderedDict())

    def __reduce_ex__(self, proto):
        return (rebuild_v2, self.args)


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, proto):
        return (rebuild_param, (self.tensor, True, OrderedDict()))


class Pickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        pid = ("storage", STORAGE_TYPES[obj.kind], obj.key, "cpu", len(obj.values))
        return pid + (None,) if self.legacy else pid


def dumps(obj, protocol=2, legacy=False):
    f = io.BytesIO()
    p = Pickler(f, protocol=protocol)
    p.legacy = legacy
    p.dump(obj)
    return f.getvalue()


def storages_of(obj, found):
    if isinstance(obj, Storage):
        found.setdefault(obj.key, obj)
    elif isinstance(obj, Tensor):
        storages_of(obj.args[0], found)
    elif isinstance(obj, Parameter):
        storages_of(obj.tensor, found)
    elif isinstance(obj, dict):
        for v in obj.values():
            storages_of(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            storages_of(v, found)
    elif hasattr(obj, "__dict__"):
        storages_of(vars(obj), found)
    return found


# ---- model-shaped objects ---------------------------------------------------------------

def state_dict():
    w = Storage("0", "Float", [0.5 * i for i in range(24)])
    b = Storage("1", "Float", [1.0, -2.0])
    e = Storage("2", "Half", [0.25] * 8)
    return OrderedDict([
        ("encoder.conv_in.weight", Tensor(w, [2, 3, 2, 2])),
        ("encoder.conv_in.bias", Parameter(Tensor(b, [2]))),
        ("quantize.embedding.weight", Tensor(e, [4, 2])),
        ("decoder.view", Tensor(w, [3, 2], offset=4, stride=[1, 3])),
        ("scalar", Tensor(b, [], offset=1, stride=[])),
        ("empty", Tensor(Storage("3", "Long", []), [0, 5])),
    ])


def lightning():
    return {"epoch": 3, "global_step": 1000, "state_dict": state_dict(),
            "optimizer_states": [{"state": {0: {"exp_avg": Tensor(
                Storage("9", "Double", [0.0, 1.0]), [2])}}}],
            "hyper_parameters": {"lr": 4.5e-06, "ch_mult": [1, 2, 2], "name": u"vq\u00e9"}}


Module = _global("__torch__", "Model", type("Model", (), {}))


def torchscript_root():
    root, child = Module(), Module()
    child.__dict__.update(training=False, weight=Tensor(Storage("0", "Float", [1.0] * 6), [2, 3]))
    root.__dict__.update(training=False, visual=child, logit_scale=Tensor(
        Storage("1", "Float", [4.6]), []))
    return root


# ---- containers -------------------------------------------------------------------------

def torch_zip(obj, prefix="archive", extra=(), deflate=False, protocol=2):
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(prefix + "/data.pkl", dumps(obj, protocol))
        for name, data in extra:
            z.writestr(prefix + "/" + name, data)
        z.writestr(prefix + "/byteorder", "little")
        for key, st in sorted(storages_of(obj, {}).items()):
            z.writestr(prefix + "/data/" + key, st.raw())
        z.writestr(prefix + "/version", "3\n")
    return buf.getvalue()


def legacy(obj):
    info = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = b"".join(dumps(x) for x in (0x1950A86A20F9469CFC6C, 1001, info))
    out += dumps(obj, legacy=True)
    found = storages_of(obj, {})
    keys = sorted(found)
    out += dumps(keys)
    for k in keys:
        out += struct.pack("<q", len(found[k].values)) + found[k].raw()
    return out


def safetensors(tensors, meta=None):
    header, data = {}, b""
    if meta:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data),
                                                                        len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def png(w, h, color_type, depth=8):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = bytes((x * 37 + 11) % 256 for x in range(w * channels * depth // 8))
    raw = b"".join(b"\0" + row for _ in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(
            ">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth,
                                                               color_type, 0, 0, 0))
    if color_type == 3:
        out += chunk(b"PLTE", bytes(range(48)))
    out += chunk(b"tEXt", b"parameters\0vqclip -p cat")
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bmp(w, h):
    row = bytes((x * 7) % 256 for x in range(w * 3)) + b"\0" * (-(w * 3) % 4)
    pixels = row * h
    return (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54) +
            struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0) +
            pixels)


def tga(w, h):
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 24, 0) + bytes(
        (i * 13) % 256 for i in range(w * h * 3))


# ---- pieces of the fixtures -------------------------------------------------------------

def fixture_pickles(fixtures):
    """data.pkl / constants.pkl of the zip checkpoints and the five pickles of the legacy one."""
    out = {}
    for rel in ("vqgan/tiny_vq.ckpt", "vqgan/tiny_gumbel.ckpt", "vqgan/tiny_transformer.ckpt",
                "clip/tiny_vit.pt", "clip/tiny_rn.pt"):
        path = os.path.join(fixtures, rel)
        if not os.path.exists(path):
            continue
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(".pkl") and "debug" not in name:
                    out["%s-%s" % (os.path.basename(rel), name.replace("/", "-"))] = z.read(name)
    path = os.path.join(fixtures, "vqgan/tiny_vq_legacy.ckpt")
    if os.path.exists(path):
        f = io.BytesIO(open(path, "rb").read(1 << 20))
        for i in range(5):
            start = f.tell()
            for _ in pickletools.genops(f):
                pass
            out["legacy-%d" % i] = f.getvalue()[start:f.tell()]
    return out


def tokenizer_texts(fixtures):
    """The texts of tokenizer_cases.json, then the Unicode and mojibake lines of
    tokenizer_realworld.json (they reach the mojibake repair)."""
    texts = []
    for rel in ("clip/tokenizer_cases.json", "clip/tokenizer_realworld.json"):
        path = os.path.join(fixtures, rel)
        if not os.path.exists(path):
            continue
        cases = json.load(open(path, encoding="utf-8"))
        if isinstance(cases, dict):
            cases = cases.get("cases", list(cases.values()))
        for c in cases:
            if isinstance(c, dict) and c.get("kind") == "plain":
                continue
            t = c.get("text") if isinstance(c, dict) else c
            if isinstance(t, str):
                texts.append(t.encode("utf-8", "surrogateescape"))
    return texts


# ---- writing ----------------------------------------------------------------------------

def write(out, target, name, data):
    if len(data) > MAX_SEED:
        return
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def weight_files():
    sd, lt, ts = state_dict(), lightning(), torchscript_root()
    code = [("code/__torch__.py", b"class Model(Module):\n  pass\n"),
            ("constants.pkl", dumps((), 2))]
    f32 = struct.pack("<6f", *range(6))
    return {
        "zip-state-dict": torch_zip(sd),
        "zip-state-dict-deflated": torch_zip(sd, deflate=True),
        "zip-lightning": torch_zip(lt, prefix="last"),
        "zip-proto4": torch_zip(sd, protocol=4),
        "zip-prepended": b"\0" * 64 + torch_zip(sd),
        "torchscript": torch_zip(ts, prefix="tiny", extra=code),
        "legacy-state-dict": legacy(sd),
        "legacy-lightning": legacy(lt),
        "safetensors": safetensors({"a.weight": ("F32", [2, 3], f32),
                                    "b": ("I64", [], struct.pack("<q", 7)),
                                    "c": ("F16", [0], b"")}, {"format": "pt"}),
    }


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make-corpus.py OUT [FIXTURES]")
    out = sys.argv[1]
    fixtures = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "..", "shared",
                                                                 "fixtures")
    committed = os.path.join(HERE, "corpus")
    if os.path.isdir(committed):
        shutil.copytree(committed, out, dirs_exist_ok=True)
    files = weight_files()
    for name, data in files.items():
        write(out, "tmap", name, data)
        if name.startswith(("zip", "torchscript")):
            write(out, "zip", name, data)
        if name.startswith("safetensors"):
            write(out, "safetensors", name, data)
    for name, data in fixture_pickles(fixtures).items():
        write(out, "pickle", name, data)
    for name, obj in (("state-dict", state_dict()), ("lightning", lightning()),
                      ("torchscript", torchscript_root())):
        for proto in (2, 4, 5):
            write(out, "pickle", "%s-p%d" % (name, proto), dumps(obj, proto))
    shared = [1, 2]
    write(out, "pickle", "plain", dumps({"l": shared, "again": shared, "t": (1, 2.5, None, True),
                                         "s": {1, 2}, "f": frozenset([3]), "b": b"\0\1",
                                         "ba": bytearray(b"xy"), "big": 1 << 100, "neg": -5}, 4))
    for rel in ("vqgan/tiny_vq_ref.safetensors", "clip/tiny_vit_ref.safetensors"):
        path = os.path.join(fixtures, rel)
        if os.path.exists(path):
            data = open(path, "rb").read()
            write(out, "safetensors", os.path.basename(rel), data)
            write(out, "tmap", os.path.basename(rel), data)
    for rel in ("tiny_vq.yaml", "tiny_gumbel.yaml", "tiny_transformer.yaml"):
        path = os.path.join(fixtures, "vqgan", rel)
        if os.path.exists(path):
            write(out, "yaml", rel, open(path, "rb").read())
    for i, text in enumerate(tokenizer_texts(fixtures)):
        write(out, "tokenizer-encode", "case-%03d" % i, text)
    bpe = os.path.join(fixtures, "clip/bpe_simple_vocab_16e6.txt.gz")
    if os.path.exists(bpe):
        head = gzip.open(bpe).read(2000)
        write(out, "tokenizer-load", "plain-head", b"\0" + head)
        write(out, "tokenizer-load", "gzip-head", b"\0" + gzip.compress(head))
        write(out, "tokenizer-load", "prefix-header", b"\1" + head.split(b"\n")[0])
    for name, data in (("grey", png(5, 3, 0)), ("rgb", png(4, 4, 2)), ("palette", png(3, 2, 3)),
                       ("grey-alpha", png(2, 2, 4)), ("rgba16", png(2, 3, 6, 16)),
                       ("bmp", bmp(3, 2)), ("tga", tga(2, 2))):
        write(out, "image", name, data)


if __name__ == "__main__":
    main()

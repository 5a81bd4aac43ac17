#!/usr/bin/env python3
"""The Python baseline for `vqclip upscale`: xinntao/Real-ESRGAN's inference_realesrgan.py path
(cv2.imread, RealESRGANer.enhance, cv2.imwrite) with XPixelGroup/BasicSR's RRDBNet, run from
checkouts of the two projects' own sources, unchanged.

    scripts/peer_esrgan.py --realesrgan DIR --basicsr DIR -m MODEL.pth -i IN.png -o OUT.png
                           [--tile N] [--tile-pad N] [--pre-pad N] [--outscale S] [--fp32]

Neither project is installed here (no PyPI on these machines) and neither is copied into this
repository: the files the computation uses (realesrgan/utils.py, basicsr/archs/arch_util.py,
basicsr/archs/rrdbnet_arch.py) are loaded from the checkouts, and the package-level imports
they make that do not take part in it (BasicSR's registry, logger, deformable-convolution ops and
download helper) are replaced by empty stand-ins. RRDBNet's settings are those of
RealESRGAN_x4plus (scale 4, 64 features, 23 blocks, growth 32), or x2plus's with a scale-2 file.
Prints `enhance_s=SECONDS` (the enhance call alone) on stderr.
"""
import argparse
import importlib.util
import os
import sys
import time
import types


def stub(name, **attrs):
    mod = types.ModuleType(name)
    mod.__path__ = []  # a package, so that submodules can be registered under it
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules[name] = mod
    return mod


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class _Registry:
    def register(self, obj=None, **_):
        return obj if obj is not None else (lambda o: o)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--realesrgan", required=True, help="a checkout of xinntao/Real-ESRGAN")
    ap.add_argument("--basicsr", required=True, help="a checkout of XPixelGroup/BasicSR")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-i", "--input", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--tile", type=int, default=0)
    ap.add_argument("--tile-pad", type=int, default=10)
    ap.add_argument("--pre-pad", type=int, default=0)
    ap.add_argument("--outscale", type=float, default=None)
    ap.add_argument("--fp32", action="store_true", help="float32 on CUDA (always on the CPU)")
    a = ap.parse_args()

    import cv2
    import torch

    stub("basicsr")
    stub("basicsr.archs")
    stub("basicsr.utils", get_root_logger=lambda *x, **k: None)
    stub("basicsr.utils.registry", ARCH_REGISTRY=_Registry())
    stub("basicsr.utils.download_util", load_file_from_url=None)
    stub("basicsr.ops")
    stub("basicsr.ops.dcn", ModulatedDeformConvPack=object, modulated_deform_conv=None)
    try:
        import torchvision  # noqa: F401  (arch_util imports it for a version check only)
    except ImportError:
        stub("torchvision", __version__="0.0")
    load("basicsr.archs.arch_util", os.path.join(a.basicsr, "basicsr/archs/arch_util.py"))
    rrdb = load("basicsr.archs.rrdbnet_arch", os.path.join(a.basicsr, "basicsr/archs/rrdbnet_arch.py"))
    utils = load("realesrgan.utils", os.path.join(a.realesrgan, "realesrgan/utils.py"))

    state = torch.load(a.model, map_location="cpu")
    sd = state.get("params_ema", state.get("params"))
    scale = 2 if sd["conv_first.weight"].shape[1] == 12 else 4
    model = rrdb.RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32,
                         scale=scale)
    half = torch.cuda.is_available() and not a.fp32
    up = utils.RealESRGANer(scale=scale, model_path=a.model, model=model, tile=a.tile,
                            tile_pad=a.tile_pad, pre_pad=a.pre_pad, half=half)
    img = cv2.imread(a.input, cv2.IMREAD_UNCHANGED)
    if img is None:
        sys.exit(f"peer_esrgan: cannot read {a.input}")
    t0 = time.perf_counter()
    out, _ = up.enhance(img, outscale=a.outscale if a.outscale else scale)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    print(f"enhance_s={time.perf_counter() - t0:.4f}", file=sys.stderr)
    cv2.imwrite(a.output, out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`vqclip upscale` against the original Python (scripts/peer_esrgan.py) on the same machine:
whole processes, interleaved (vqclip first in even rounds, the peer first in odd ones), each
run's wall time and peak RSS from the kernel's accounting of the finished child (wait4), the
median of each and the median of the per-round ratios vqclip/peer.

    scripts/bench_upscale.py --bin build/vqclip --model RealESRGAN_x4plus_random.pth \
        --realesrgan DIR --basicsr DIR [--sizes 64,128] [--tiles 0,64] [--reps 3] [--out DIR]

The input of each size is a smooth random picture (fixed seed); both programs write PNG.
Prints a markdown table (also DIR/upscale.md) and writes every run to DIR/upscale.json.
"""
import argparse
import os
import statistics
import sys

from bench_proc import report, run


def picture(path, size, seed=1):
    import numpy as np
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, size // 8), max(2, size // 8), 3), dtype=np.uint8)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(path, img)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--realesrgan", required=True)
    ap.add_argument("--basicsr", required=True)
    ap.add_argument("--sizes", default="64,128")
    ap.add_argument("--tiles", default="0,64")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="bench-out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_esrgan.py")
    rows, runs = [], []
    for size in [int(s) for s in a.sizes.split(",")]:
        src = os.path.join(a.out, f"up_in_{size}.png")
        picture(src, size)
        for tile in [int(t) for t in a.tiles.split(",")]:
            ours_o = os.path.join(a.out, f"up_vqclip_{size}_{tile}.png")
            peer_o = os.path.join(a.out, f"up_peer_{size}_{tile}.png")
            ours = [a.bin, "upscale", "-m", a.model, "-i", src, "-o", ours_o, "--tile", str(tile)]
            theirs = [sys.executable, peer, "--realesrgan", a.realesrgan, "--basicsr", a.basicsr,
                      "-m", a.model, "-i", src, "-o", peer_o, "--tile", str(tile)]
            res = {"vqclip": [], "peer": []}
            for r in range(a.reps):
                order = [("vqclip", ours), ("peer", theirs)]
                if r % 2:
                    order.reverse()
                for name, cmd in order:
                    for o in (ours_o, peer_o):  # each run writes a new file
                        if os.path.exists(o):
                            os.unlink(o)
                    wall, rss, err = run(cmd)
                    enh = None
                    for line in err.splitlines():
                        if line.startswith("enhance_s="):
                            enh = float(line.split("=", 1)[1])
                    res[name].append((wall, rss, enh))
                    runs.append({"size": size, "tile": tile, "round": r, "prog": name,
                                 "wall_s": wall, "peak_rss_mib": rss, "enhance_s": enh})
            med = lambda name, k: statistics.median(x[k] for x in res[name])
            tr = statistics.median(o[0] / p[0] for o, p in zip(res["vqclip"], res["peer"]))
            mr = statistics.median(o[1] / p[1] for o, p in zip(res["vqclip"], res["peer"]))
            rows.append((size, tile, med("vqclip", 0), med("peer", 0), tr,
                         med("vqclip", 1), med("peer", 1), mr, med("peer", 2)))
    lines = ["| input | tile | vqclip s | peer s | time ratio | vqclip MiB | peer MiB | memory ratio "
             "| peer enhance s |", "|---|---|---|---|---|---|---|---|---|"]
    for s, t, vw, pw, tr, vm, pm, mr, pe in rows:
        lines.append(f"| {s}x{s} -> {4 * s}x{4 * s} | {t or 'none'} | {vw:.2f} | {pw:.2f} | "
                     f"{tr:.2f}x | {vm:.0f} | {pm:.0f} | {mr:.2f}x | {pe:.2f} |")
    report(a.out, "upscale", "\n".join(lines), runs)


if __name__ == "__main__":
    main()

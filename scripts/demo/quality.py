#!/usr/bin/env python3
"""Judges vqclip's pictures with the demo models by pixel colours, as tests/test-demo-quality.c
does, over more prompts: for tuning the demo defaults and checking a retrained CLIP.

  python3 scripts/demo/quality.py [--bin build/vqclip] [--clip FILE] [--prompts 9|24]
                                  [--seeds 1] [--jobs 2] [-- EXTRA VQCLIP ARGS]

Each pixel gets the nearest colour of the demo palette; a picture passes when its border (outer
6 pixels) is at least 60% the background colour and the shape's colour is the most common after
the background's, covering at least 2% of the picture. Prompts: the test's nine (the eight
held-out triples and the README's example), or with --prompts N the held-out prompts of
world.py (VQCLIP_DEMO_HOLDOUT=pairs: every held-out pair with each shape; otherwise the eight
held-out triples, repeated with other seeds up to N), or with --pairs training N random
(colour, shape, background) triples seen in training, one per colour pair. HOME and
VQCLIP_MODELS point at an empty folder, so the demo fallback and its defaults
apply unless EXTRA says otherwise; --clip swaps in another CLIP file (same vocabulary).
"""
import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

BORDER, MIN_BORDER, MIN_SHAPE = 6, 0.6, 0.02
TEST_CASES = [("red", "circle", "yellow"), ("green", "square", "purple"),
              ("blue", "triangle", "orange"), ("yellow", "circle", "black"),
              ("purple", "square", "white"), ("orange", "triangle", "green"),
              ("white", "circle", "red"), ("black", "square", "blue"), ("red", "circle", "blue")]


def palette():
    names = list(world.COLOURS)
    return names, np.array([world.COLOURS[n] for n in names], dtype=np.float64)


def labels(rgb):
    """Each pixel's nearest palette colour (H x W indices into names) and the border mask."""
    names, pal = palette()
    d = ((rgb[:, :, None, :].astype(np.float64) - pal[None, None]) ** 2).sum(-1)
    lab = d.argmin(-1)
    h, w = lab.shape
    ring = np.ones((h, w), bool)
    ring[BORDER:h - BORDER, BORDER:w - BORDER] = False
    return names, lab, ring


def next_colour(lab, b, n):
    """The most common colour other than b."""
    counts = np.bincount(lab.ravel(), minlength=n).astype(float)
    counts[b] = -1
    return int(counts.argmax())


def judge(rgb, colour, bg):
    """rgb: H x W x 3 uint8. Returns (passed, border share, shape share, next colour)."""
    names, lab, ring = labels(rgb)
    b, f = names.index(bg), names.index(colour)
    bshare = float((lab[ring] == b).mean())
    second = next_colour(lab, b, len(names))
    fshare = float((lab == f).mean())
    ok = bshare >= MIN_BORDER and second == f and fshare >= MIN_SHAPE
    return ok, bshare, fshare, names[second]


def describe(rgb):
    """What the judge sees: (the border's most common colour, its share of the border, the most
    common other colour, its share of the picture)."""
    names, lab, ring = labels(rgb)
    b = int(np.bincount(lab[ring], minlength=len(names)).argmax())
    c = next_colour(lab, b, len(names))
    return names[b], float((lab[ring] == b).mean()), names[c], float((lab == c).mean())


def read_png(path):
    import zlib
    import struct
    data = open(path, "rb").read()
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype == 2, "expects 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    out = np.zeros((h, 3 * w), np.int32)
    prev = np.zeros(3 * w, np.int32)
    for y in range(h):
        ft, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        cur = np.zeros(3 * w, np.int32)
        for x in range(3 * w):
            a = cur[x - 3] if x >= 3 else 0
            c = prev[x - 3] if x >= 3 else 0
            bb = prev[x]
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = bb
            elif ft == 3:
                p = (a + bb) // 2
            else:
                pa, pb, pc = abs(bb - c), abs(a - c), abs(a + bb - 2 * c)
                p = a if pa <= pb and pa <= pc else (bb if pb <= pc else c)
            cur[x] = (line[x] + p) & 255
        out[y], prev = cur, cur
    return out.reshape(h, w, 3).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/vqclip")
    ap.add_argument("--clip", default="")
    ap.add_argument("--prompts", type=int, default=9)
    ap.add_argument("--pairs", choices=["held-out", "training"], default="held-out",
                    help="with --prompts N > 9: the held-out prompts of world.py, "
                         "or N random (colour, shape, background) triples of training pairs")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default="")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    cases = list(TEST_CASES)
    if a.prompts > 9 and a.pairs == "held-out":
        if world.HOLDOUT == "pairs":
            cases = [(c, s, b) for (c, b) in sorted(world.HELD_OUT_PAIRS) for s in world.SHAPES]
        else:  # each held-out triple again (with another seed) until there are N
            held = sorted(world.HELD_OUT_TRIPLES)
            cases = [held[k % len(held)] for k in range(a.prompts)]
    elif a.prompts > 9:
        rng = np.random.default_rng(31)
        pairs = [(c, b) for c in world.COLOURS for b in world.COLOURS if world.allowed(c, b, False)]
        cases = []
        for k in rng.permutation(len(pairs))[:a.prompts]:
            c, b = pairs[k]
            shape = world.SHAPES[rng.integers(3)]
            while world.is_held_out(c, b, shape):
                shape = world.SHAPES[rng.integers(3)]
            cases.append((c, shape, b))
    tmp = a.keep or tempfile.mkdtemp(prefix="demo-quality-")
    os.makedirs(os.path.join(tmp, "empty"), exist_ok=True)
    empty = os.path.join(tmp, "empty")
    # passive OpenMP waiting: spinning idle threads of parallel runs starve each other
    env = dict(os.environ, HOME=empty, VQCLIP_MODELS=empty, OMP_WAIT_POLICY="PASSIVE")
    threads = max(1, 2 // a.jobs)
    jobs = []
    for seed in range(a.seeds):
        for i, (col, shape, bg) in enumerate(cases):
            out = os.path.join(tmp, "q%d-%d.png" % (seed, i))
            cmd = [a.bin, "-p", "a %s %s on a %s background" % (col, shape, bg), "--seed",
                   str(100 + i + 1000 * seed), "--threads", str(threads), "-o", out, "-q"]
            if a.clip:
                root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                demo = os.path.join(root, "models", "demo")
                cmd += ["--clip", a.clip, "--vqgan", os.path.join(demo, "vqgan_demo.ckpt"),
                        "--bpe", os.path.join(demo, "vocab.json"), "--size", "64", "-i", "200",
                        "-cutn", "8", "-aug", "Af,Pe", "-in", "gradient"]
            jobs.append((cmd + a.extra, out, col, shape, bg))

    def run(job):
        cmd, out, col, shape, bg = job
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            return job, None, r.stderr.strip()
        return job, judge(read_png(out), col, bg), ""

    passed = 0
    with ThreadPoolExecutor(a.jobs) as ex:
        for job, res, err in ex.map(run, jobs):
            _, out, col, shape, bg = job
            if res is None:
                print("ERROR %s: %s" % (out, err))
                continue
            ok, bs, fs, nxt = res
            passed += ok
            print("%-4s a %s %s on a %s background: border %.0f%%, %s %.1f%% (next %s)"
                  % ("ok" if ok else "FAIL", col, shape, bg, 100 * bs, col, 100 * fs, nxt),
                  flush=True)
    print("%d of %d pass" % (passed, len(jobs)))


if __name__ == "__main__":
    main()

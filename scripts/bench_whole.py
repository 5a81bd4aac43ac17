#!/usr/bin/python3
"""Whole-process timing of vqclip against nerdyrodent's generate.py itself, for scripts/bench.sh
--whole (see there). Each program runs N and 2N steps, interleaved (vqclip first in even rounds,
the peer first in odd ones), and from the kernel's accounting of each finished process:

  step   (T(2N) - T(N)) / N, the steady step, from outside the process
  fixed  T(N) - n(N) * step, what one picture costs beyond its steps: start-up, model loading,
         the first step's warm-up, the written picture(s) and exit. n(N) is the number of steps
         the program runs for -i N: N for vqclip, N + 1 for generate.py (its loop trains at
         i = 0 .. N).
  rss    peak resident set of the N-step run

bench_run.py (bench.sh's default mode) measures from inside instead: start-up to the first
step, and each step from vqclip's progress lines and peer_baseline.py's events. The figures
differ because generate.py is not peer_baseline.py (its kornia augmentations and its per-step
work) and because the fixed cost counts more than the start-up (docs/benchmarks.md). A
two-point estimate is noisy on a shared machine: quote the medians of several rounds.

The peer runs as `python3 DIR/generate.py` with PYTHONPATH=DIR:scripts/peer_stubs, where DIR
holds generate.py and the packages it imports (its CLIP/ folder, taming, kornia, ...), e.g. a
checkout with its requirements installed. scripts/peer_stubs stands in for the imports that do
not take part in the computation (pytorch_lightning's base class and checkpoint callback,
taming's instantiate_from_config, torch_optimizer), for machines without them. Its VQGAN config
is the benchmark model's with `lossconfig: torch.nn.Identity`, which generate.py's VQModel
requires and never uses.
"""
import argparse
import os
import statistics
import sys

from bench_proc import report, run

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--vqgan", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--bpe", required=True)
    ap.add_argument("--peer-dir", required=True, help="folder with generate.py and its imports")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cutn", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="N (and 2N)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompt", default="a red fox")
    ap.add_argument("--out", default="bench-out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    yaml = os.path.join(a.out, "peer_vqgan.yaml")
    with open(os.path.splitext(a.vqgan)[0] + ".yaml") as f:
        text = f.read().rstrip("\n")
    with open(yaml, "w") as f:
        f.write(text + "\n    lossconfig:\n      target: torch.nn.Identity\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = a.peer_dir + os.pathsep + os.path.join(HERE, "peer_stubs")
    s = str(a.size)

    def ours(n):
        out = os.path.join(a.out, "whole-vqclip-%d.png" % n)
        if os.path.exists(out):
            os.unlink(out)
        return [a.bin, "-p", a.prompt, "--vqgan", a.vqgan, "--clip", a.clip, "--bpe", a.bpe,
                "-s", s, s, "--cutn", str(a.cutn), "-i", str(n), "--seed", "1", "-q", "-o",
                out, "--device", "cpu"]

    def theirs(n):
        out = os.path.join(a.out, "whole-peer-%d.png" % n)
        return [sys.executable, os.path.join(a.peer_dir, "generate.py"), "-p", a.prompt,
                "-s", s, s, "-cuts", str(a.cutn), "-i", str(n), "-se", str(n), "-sd", "1",
                "-o", out, "-conf", yaml, "-ckpt", a.vqgan, "-m", a.clip, "-cd", "cpu"]

    runs = {"vqclip": [], "peer": []}
    n1, n2 = a.steps, 2 * a.steps
    for r in range(a.reps):
        order = ["vqclip", "peer"] if r % 2 == 0 else ["peer", "vqclip"]
        for tool in order:
            make = ours if tool == "vqclip" else theirs
            w1, rss, _ = run(make(n1), env=env, cwd=a.out)
            w2, _, _ = run(make(n2), env=env, cwd=a.out)
            k = 0 if tool == "vqclip" else 1  # generate.py trains N + 1 times for -i N
            step = (w2 - w1) / (n2 - n1)
            fixed = w1 - (n1 + k) * step
            runs[tool].append({"t_n": w1, "t_2n": w2, "step_s": step, "fixed_s": fixed,
                               "peak_rss_mib": rss, "load": os.getloadavg()[0]})
            print("round %d %s: T(%d) %.2f s, T(%d) %.2f s, step %.3f s, fixed %.2f s, rss %.0f MiB"
                  % (r + 1, tool, n1, w1, n2, w2, step, fixed, rss), file=sys.stderr)
    med = {t: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for t, rs in runs.items()}
    ratio = {k: statistics.median(o[k] / p[k] for o, p in zip(runs["vqclip"], runs["peer"]))
             for k in ("step_s", "fixed_s", "peak_rss_mib")}
    lines = ["| %dx%d cutn %d, N = %d | vqclip | generate.py | ratio (median of rounds) |"
             % (a.size, a.size, a.cutn, n1), "|---|---|---|---|"]
    for k, label, fmt in (("step_s", "steady step s", "%.3f"), ("fixed_s", "fixed cost s", "%.2f"),
                          ("peak_rss_mib", "peak RSS MiB", "%.0f")):
        lines.append("| %s | %s | %s | %.2fx |" % (label, fmt % med["vqclip"][k],
                                                   fmt % med["peer"][k], ratio[k]))
    report(a.out, "whole", "\n".join(lines), runs)


if __name__ == "__main__":
    main()

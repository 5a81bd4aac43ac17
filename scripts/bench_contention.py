#!/usr/bin/env python3
"""vqclip on a CPU that other work keeps busy (scripts/bench.sh --contention).

Three scenes, each timed as whole processes (wall seconds, start to exit):
  lone  one demo run on an otherwise idle machine;
  pair  two demo runs started together (the time of each);
  busy  one demo run beside a busy-loop neighbour (a process that only spins).
Two arms, interleaved round by round so that the machine's drift falls on both:
  auto  vqclip as shipped: no OMP_WAIT_POLICY / GOMP_SPINCOUNT in the environment, so it
        chooses its wait policy from the load it sees when it starts;
  spin  GOMP_SPINCOUNT=300000, libgomp's own default, which vqclip leaves alone: how every run
        waited before the choice existed (or --base-bin: an older build as it was).
Prints a markdown table of medians and the ratios to the auto arm's lone run.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SCENES = ("lone", "pair", "busy")


def env_for(arm):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if arm == "spin":
        env["GOMP_SPINCOUNT"] = "300000"
    return env


def start(binary, arm, args, out, workdir):
    cmd = [binary, *args, "-o", out, "-q"]
    return subprocess.Popen(cmd, cwd=workdir, env=env_for(arm), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def run_scene(scene, binary, arm, args, workdir):
    """Wall seconds of each vqclip process in the scene."""
    spinner = None
    if scene == "busy":
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    n = 2 if scene == "pair" else 1
    t0 = time.monotonic()
    procs = [start(binary, arm, args, f"{scene}-{arm}-{i}.png", workdir) for i in range(n)]
    times = [None] * n
    while any(t is None for t in times):
        for i, p in enumerate(procs):
            if times[i] is None and p.poll() is not None:
                if p.returncode != 0:
                    sys.exit(f"bench_contention: {scene}/{arm} run exited {p.returncode}")
                times[i] = time.monotonic() - t0
        time.sleep(0.005)
    if spinner:
        spinner.kill()
        spinner.wait()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base-bin", help="the spin arm runs this build instead of GOMP_SPINCOUNT")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--prompt", default="a red circle")
    a = ap.parse_args()
    args = ["-p", a.prompt, "--seed", "1", "-i", str(a.steps)]
    res = {(s, arm): [] for s in SCENES for arm in ("auto", "spin")}
    with tempfile.TemporaryDirectory() as wd:
        for rep in range(a.reps):
            for scene in SCENES:
                arms = ("auto", "spin") if rep % 2 == 0 else ("spin", "auto")
                for arm in arms:
                    binary = a.base_bin if arm == "spin" and a.base_bin else a.bin
                    t = run_scene(scene, binary, arm, args, wd)
                    res[(scene, arm)].extend(t)
                    print(f"round {rep + 1}: {scene:4} {arm:4} " +
                          " ".join(f"{x:.2f}s" for x in t), file=sys.stderr, flush=True)
    lone = statistics.median(res[("lone", "auto")])
    spin_label = f"spin ({os.path.basename(a.base_bin)})" if a.base_bin else "spin"
    print(f"demo runs, {a.steps} steps, {a.reps} interleaved rounds, {os.cpu_count()} CPUs; "
          f"medians of whole-process wall time")
    print()
    print(f"| scene | auto s | auto / lone auto | {spin_label} s | {spin_label} / lone auto |")
    print("|---|---|---|---|---|")
    for scene in SCENES:
        au = statistics.median(res[(scene, "auto")])
        sp = statistics.median(res[(scene, "spin")])
        print(f"| {scene} | {au:.2f} | {au / lone:.2f}x | {sp:.2f} | {sp / lone:.2f}x |")


if __name__ == "__main__":
    main()

"""Helpers shared by the whole-process benchmarks (bench_upscale.py, bench_whole.py)."""
import json
import os
import subprocess
import sys
import time


def run(cmd, env=None, cwd=None):
    """Runs cmd to the end; returns (wall seconds, peak RSS MiB from the kernel's accounting of
    the finished child, stderr text). Exits with the command's output when it fails."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench: failed (%s): %s\n%s" % (status, " ".join(cmd), err[-3000:]))
    return wall, ru.ru_maxrss / 1024.0, err


def report(out_dir, stem, table, runs):
    """Prints the markdown table and writes it to OUT/STEM.md, every run to OUT/STEM.json."""
    print(table)
    with open(os.path.join(out_dir, stem + ".md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(runs, f, indent=1)

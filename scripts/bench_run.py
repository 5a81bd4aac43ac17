#!/usr/bin/python3
"""Runs the benchmark matrix for scripts/bench.sh (see there for the options).

For every size x cutn, `reps` times, vqclip and then the baseline (scripts/peer_baseline.py) run
back to back, each in a fresh process. Per run it records:

  startup   process start (just before exec) to the start of the first step.
            vqclip: the --json summary gives "seconds" (its generate call) and "startup_seconds"
            (the part before the first step), and the summary line is printed as the call
            returns, so the first step started at t(summary) - (seconds - startup_seconds).
            baseline: its "loop_start" event (a time.monotonic() stamp, the clock used here).
  first     the first step (warm-up: memory first touched, oneDNN kernels generated).
  step      median duration of steps 2..N, from the time each step ends: vqclip's progress
            line ("step k/N", printed when stderr is a terminal, so stderr is a pty here) and
            the baseline's "step" events.
  rss       peak resident set (ru_maxrss from wait4, what /usr/bin/time -f %M reports).
  load      the 1-minute load average before the run.

Each figure is the median over the repetitions. FLOPs per step come from bench_flops.py and
are divided by the step time to give the achieved rate.
"""
import argparse
import datetime
import json
import os
import platform
import pty
import re
import selectors
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STEP_RE = re.compile(rb"step (\d+)/(\d+)")


class GpuPeak(threading.Thread):
    """Polls nvidia-smi for the device memory a process uses; keeps the maximum (MiB)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop = pid, 0.0, threading.Event()

    def run(self):
        q = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
        while not self.stop.wait(0.2):
            try:
                out = subprocess.run(q, capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.TimeoutExpired):
                return
            for line in out.splitlines():
                f = [x.strip() for x in line.split(",")]
                if len(f) == 2 and f[0] == str(self.pid) and f[1].isdigit():
                    self.peak_mb = max(self.peak_mb, float(f[1]))


def run_timed(cmd, gpu=False):
    """Runs cmd with stdout on a pipe and stderr on a pty; returns timestamped output lines."""
    master, slave = pty.openpty()
    t_launch = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            close_fds=True)
    os.close(slave)
    poll = GpuPeak(proc.pid) if gpu else None
    if poll:
        poll.start()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(master, selectors.EVENT_READ, "err")
    out_lines, err_chunks, buf = [], [], b""
    open_streams = 2
    while open_streams:
        for key, _ in sel.select():
            try:
                data = os.read(key.fd, 65536)
            except OSError:  # the pty's slave side closed
                data = b""
            now = time.monotonic()
            if not data:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.data == "err":
                err_chunks.append((now, data))
            else:
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    out_lines.append((now, line.decode("utf-8", "replace")))
    _, status, ru = os.wait4(proc.pid, 0)
    os.close(master)
    if poll:
        poll.stop.set()
        poll.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"t_launch": t_launch, "t_end": time.monotonic(), "rc": proc.returncode,
            "maxrss_kb": ru.ru_maxrss, "gpu_peak_mb": poll.peak_mb if poll else None,
            "out": out_lines, "err": err_chunks}


def step_ends_from_progress(err_chunks):
    """First arrival time of each 'step k/N' in the progress output."""
    ends = {}
    for t, data in err_chunks:
        for m in STEP_RE.finditer(data):
            ends.setdefault(int(m.group(1)), t)
    return [ends[k] for k in sorted(ends)]


def metrics(r, loop_start, step_ends):
    steps = [b - a for a, b in zip(step_ends, step_ends[1:])]
    return {"startup_s": loop_start - r["t_launch"],
            "first_step_s": step_ends[0] - loop_start if step_ends else None,
            "step_s": statistics.median(steps) if steps else None,
            "steps_s": steps, "wall_s": r["t_end"] - r["t_launch"],
            "peak_rss_mb": r["maxrss_kb"] / 1024.0, "peak_gpu_mb": r["gpu_peak_mb"],
            "rc": r["rc"]}


def tail(r):
    text = b"".join(d for _, d in r["err"]).decode("utf-8", "replace")
    return text[-2000:]


def run_vqclip(a, size, cutn, out_png, extra=()):
    cmd = [a.bin, "-p", a.prompt, "--vqgan", a.vqgan, "--clip", a.clip, "--bpe", a.bpe,
           "-s", str(size), str(size), "--cutn", str(cutn), "-i", str(a.steps), "--seed", "1",
           "-o", out_png, "--json", "--device", a.device] + list(extra)
    r = run_timed(cmd, gpu=a.device != "cpu")
    done = None
    for t, line in r["out"]:
        if line.startswith("{"):
            ev = json.loads(line)
            if ev.get("event") == "done":
                done = (t, ev)
    if r["rc"] != 0 or not done:
        raise SystemExit("bench: vqclip failed (%s):\n%s" % (r["rc"], tail(r)))
    t_done, ev = done
    loop_start = t_done - (ev["seconds"] - ev["startup_seconds"])
    return metrics(r, loop_start, step_ends_from_progress(r["err"]))


def run_peer(a, size, cutn, out_png):
    cmd = [sys.executable, os.path.join(HERE, "peer_baseline.py"), "--vqgan", a.vqgan,
           "--clip", a.clip, "--bpe", a.bpe, "-p", a.prompt, "-s", str(size), str(size),
           "--cutn", str(cutn), "-i", str(a.steps), "-o", out_png, "--threads", str(a.threads),
           "--device", a.device]
    r = run_timed(cmd, gpu=a.device != "cpu")
    events = [json.loads(line) for _, line in r["out"] if line.startswith("{")]
    starts = [e["t"] for e in events if e["event"] == "loop_start"]
    ends = [e["t"] for e in events if e["event"] == "step"]
    if r["rc"] != 0 or not starts:
        raise SystemExit("bench: baseline failed (%s):\n%s" % (r["rc"], tail(r)))
    return metrics(r, starts[0], ends)


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gb": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def tools_of(a):
    """vqclip, the baseline, then vqclip with each --variant's extra arguments."""
    return ["vqclip", "baseline"] + ["vqclip " + v for v in a.variant]


def table(results, quoted):
    rows = ["| size | cutn | tool | start-up s | first step s | step s | peak RSS MB | "
            "GFLOP/s (% of peak mix) | load |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for res in results:
        for tool in res["tools"]:
            m = res.get(tool)
            if not m:
                continue
            rate = m.get("gflops")
            pct = m.get("peak_fraction")
            shown = "-" if rate is None else "%.1f" % rate
            if rate is not None and pct:
                shown += " (%.0f%%)" % (100 * pct)
            rows.append("| %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                res["size"], res["cutn"], tool, fmt(m["startup_s"], ".2f"),
                fmt(m["first_step_s"], ".2f"), fmt(m["step_s"], ".2f"),
                fmt(m["peak_rss_mb"], ".0f"),
                shown, fmt(m["load"], ".1f")))
        if res.get("ratio"):
            q = res["ratio"]
            rows.append("| %d | %d | **vqclip / baseline** | %s | %s | %s | %s | | |" % (
                res["size"], res["cutn"], fmt(q["startup_s"], ".2f"),
                fmt(q["first_step_s"], ".2f"), fmt(q["step_s"], ".2f"),
                fmt(q["peak_rss_mb"], ".2f")))
        if quoted and res["size"] == 128 and res["cutn"] == 8:
            rows.append("| 128 | 8 | peer generate.py (quoted in issue 6, not measured here) | "
                        "12.4 | | 2.6 | 2170 | | |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--vqgan", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--bpe", required=True)
    ap.add_argument("--sizes", default="128 256")
    ap.add_argument("--cutns", default="8 32")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prompt", default="a red fox")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-peak", action="store_true", help="skip the peak measurements")
    ap.add_argument("--variant", action="append", default=[],
                    help="also run vqclip with these extra arguments (e.g. --variant=--low-memory)")
    ap.add_argument("--out", default="bench-out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    peaks = []

    def measure_peak(size, cutn):
        if a.device != "cpu" or a.no_peak:
            return
        p = json.loads(subprocess.check_output(
            [sys.executable, os.path.join(HERE, "bench_flops.py"), "--peak", "--threads",
             str(a.threads), "--size", str(size), "--cutn", str(cutn)]))
        p["load"] = os.getloadavg()[0]
        peaks.append(p)
        print("peak: %(gemm_gflops).1f GFLOP/s GEMM (%(gemm)s), %(conv_gflops).1f GFLOP/s conv "
              "(%(conv)s)" % p, file=sys.stderr)

    results = []
    for size in [int(s) for s in a.sizes.split()]:
        for cutn in [int(c) for c in a.cutns.split()]:
            measure_peak(size, cutn)
            flops = json.loads(subprocess.check_output(
                [sys.executable, os.path.join(HERE, "bench_flops.py"), "--size", str(size),
                 "--cutn", str(cutn)]))
            runs = {t: [] for t in tools_of(a)}
            for rep in range(a.reps):
                for k, tool in enumerate(tools_of(a)):
                    if tool == "baseline" and a.no_baseline:
                        continue
                    load = os.getloadavg()[0]
                    png = os.path.join(a.out, "%s-%d-%d-%d.png" % (tool.split()[0], k, size, cutn))
                    if tool == "baseline":
                        m = run_peer(a, size, cutn, png)
                    else:
                        m = run_vqclip(a, size, cutn, png, tool.split()[1:])
                    m["load"] = load
                    runs[tool].append(m)
                    print("%dx%d cutn %d %s rep %d: start-up %.2f s, step %s s, rss %.0f MB, "
                          "load %.1f" % (size, size, cutn, tool, rep + 1, m["startup_s"],
                                         fmt(m["step_s"], ".2f"), m["peak_rss_mb"], load),
                          file=sys.stderr)
            res = {"size": size, "cutn": cutn, "tools": tools_of(a),
                   "flops_per_step": flops["total"],
                   "spatial_conv_flops": flops["spatial_conv"], "runs": runs}
            for tool, rs in runs.items():
                if not rs:
                    continue
                med = {k: median_of(rs, k) for k in ("startup_s", "first_step_s", "step_s",
                                                     "peak_rss_mb", "peak_gpu_mb", "load")}
                if med["step_s"]:
                    med["gflops"] = flops["total"] / med["step_s"] / 1e9
                res[tool] = med
            if res.get("vqclip") and res.get("baseline"):
                res["ratio"] = {k: (res["vqclip"][k] / res["baseline"][k]
                                    if res["vqclip"][k] and res["baseline"][k] else None)
                                for k in ("startup_s", "first_step_s", "step_s", "peak_rss_mb")}
            results.append(res)
    # The peak for a size and cutn: the best GEMM and the best 3x3 convolution rate at the
    # step's own shapes (bench_flops.py --peak), best over the session. A step's "peak mix"
    # time is its 3x3-convolution FLOPs at that convolution rate plus the rest at that GEMM
    # rate; peak_fraction is that time over the measured step time.
    def best(key, size, cutn):
        return max([p[key] for p in peaks if p["size"] == size and p["cutn"] == cutn] or [0])

    peak = {"runs": peaks}
    for res in results:
        g, c = best("gemm_gflops", res["size"], res["cutn"]), best("conv_gflops", res["size"],
                                                                   res["cutn"])
        res["peak"] = {"gemm_gflops": g, "conv_gflops": c}
        for tool in res["tools"]:
            m = res.get(tool)
            if m and m.get("gflops") and g and c:
                conv = res["spatial_conv_flops"]
                rest = res["flops_per_step"] - conv
                m["peak_mix_s"] = (conv / c + rest / g) / 1e9
                m["peak_fraction"] = m["peak_mix_s"] / m["step_s"]
                m["best_kernel_fraction"] = m["gflops"] / max(g, c)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "peak": peak, "steps": a.steps, "reps": a.reps,
              "device": a.device, "threads": a.threads, "bin": a.bin,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "results": results}
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = table(results, quoted=a.device == "cpu")
    peak_lines = ["%dx%d cutn %d: GEMM %.1f GFLOP/s, 3x3 convolution %.1f GFLOP/s"
                  % (r["size"], r["size"], r["cutn"], r["peak"]["gemm_gflops"],
                     r["peak"]["conv_gflops"]) for r in results if r["peak"]["gemm_gflops"]]
    if peak_lines:
        md += ("\n\nPeak (best rates at each step's own shapes, measured in this session; "
               "direct-convolution FLOPs, oneDNN may use Winograd): " + "; ".join(peak_lines) +
               ". % of peak mix: a step's time at those rates (its 3x3-convolution FLOPs at the "
               "convolution rate, the rest at the GEMM rate) over its measured time.")
    with open(os.path.join(a.out, "bench.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()

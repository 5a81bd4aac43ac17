#!/bin/bash
# Benchmarks vqclip against the Python baseline on full-size random-weight models.
#
#   scripts/bench.sh [--sizes "128 256"] [--cutns "8 32"] [--steps 6] [--reps 3]
#                    [--no-baseline] [--no-peak] [--variant=ARGS ...] [--out DIR]
#   scripts/bench.sh --contention [--reps 3] [--steps 50] [--base-bin OLD/vqclip]
#   scripts/bench.sh --upscale --realesrgan DIR --basicsr DIR [--sizes 64,128] [--tiles 0,64]
#
#   scripts/bench.sh --whole --peer-dir DIR [--size 128] [--cutn 8] [--steps 6] [--reps 3]
#
# --whole times whole processes of vqclip and of nerdyrodent's generate.py itself (DIR: a folder
# with generate.py and the packages it imports) at N and 2N steps, interleaved, and derives the
# steady step and the fixed cost of one picture from outside (scripts/bench_whole.py, where the
# method and its difference from the default mode's are explained).
#
# --upscale times `vqclip upscale` against the original Python (xinntao/Real-ESRGAN's
# RealESRGANer with XPixelGroup/BasicSR's RRDBNet, from checkouts of their sources given here;
# scripts/peer_esrgan.py) on the full-size random-weight RealESRGAN_x4plus of
# scripts/make-bench-models.py --esrgan, whole processes interleaved (scripts/bench_upscale.py).
#
# --contention times demo runs alone, two at once, and beside a busy-loop neighbour, with
# vqclip's own wait-policy choice against libgomp's default spinning (scripts/bench_contention.py;
# on the demo models, so it needs neither the benchmark models nor the peer).
#
# Builds nothing: runs $VQCLIP_BIN (default ./build/vqclip). Writes, once, the models of
# scripts/make-bench-models.py (VQGAN f16-16384 .ckpt ~1.1 GB, ViT-B/32 TorchScript ~0.3 GB)
# into $VQCLIP_BENCH_MODELS (default ~/.cache/vqclip-bench), using Debian's python3-torch.
# Then for each size x cutn, --reps times, vqclip and scripts/peer_baseline.py (the peer's
# loop in plain PyTorch, same libtorch) run back to back at the same settings; each run's
# start-up (process start to first step), first step, median later step and peak RSS are
# recorded (see scripts/bench_run.py), with the FLOPs of a step against this machine's measured
# GEMM / convolution peak (scripts/bench_flops.py). Each --variant=ARGS adds a vqclip row run
# with those extra arguments (e.g. --variant=--low-memory). Results: DIR/bench.md (the table, also
# printed) and DIR/bench.json (every run). DIR defaults to bench-out.
#
# Sizes default to 128 and 256 on the CPU (512 on 2 cores takes minutes per step) and add 512
# on CUDA. OMP_WAIT_POLICY defaults to PASSIVE for both programs (set it to override): on a
# machine shared with other work, libgomp's spinning idle threads otherwise dominate the
# figures (see docs/benchmarks.md). Other knobs: VQCLIP_BENCH_DEVICE (cpu or cuda; default
# cpu unless nvidia-smi sees a GPU), VQCLIP_BPE (the CLIP vocabulary file).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${VQCLIP_BIN:-$ROOT/build/vqclip}
MODELS=${VQCLIP_BENCH_MODELS:-$HOME/.cache/vqclip-bench}
PY=/usr/bin/python3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

die() {
    echo "bench.sh: $*" >&2
    exit 1
}

[ -x "$BIN" ] || die "no vqclip binary at $BIN (build first, or set VQCLIP_BIN)"
if [ "${1:-}" = --contention ]; then
    shift
    echo "bench.sh: contention, $("$BIN" --version), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    exec "$PY" "$ROOT/scripts/bench_contention.py" --bin "$BIN" "$@"
fi
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch: apt-get install python3-torch"
if [ "${1:-}" = --upscale ]; then
    shift
    "$PY" -c 'import cv2' 2>/dev/null || die "$PY cannot import cv2: apt-get install python3-opencv"
    [ -f "$MODELS/RealESRGAN_x4plus_random.pth" ] ||
        "$PY" "$ROOT/scripts/make-bench-models.py" "$MODELS" --esrgan >&2 || die "cannot write the models"
    echo "bench.sh: upscale, $("$BIN" --version), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    exec "$PY" "$ROOT/scripts/bench_upscale.py" --bin "$BIN" \
        --model "$MODELS/RealESRGAN_x4plus_random.pth" "$@"
fi

if [ -z "${VQCLIP_BENCH_DEVICE:-}" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        VQCLIP_BENCH_DEVICE=cuda
    else
        VQCLIP_BENCH_DEVICE=cpu
    fi
fi
SIZES="128 256"
[ "$VQCLIP_BENCH_DEVICE" = cpu ] || SIZES="128 256 512"

VQGAN=$MODELS/vqgan_f16_16384_random.ckpt
CLIP=$MODELS/ViT-B-32_random.pt
if [ ! -s "$VQGAN" ] || [ ! -s "$CLIP" ]; then
    echo "bench.sh: writing the benchmark models into $MODELS (once)" >&2
    mkdir -p "$MODELS"
    "$PY" "$ROOT/scripts/make-bench-models.py" "$MODELS" >&2
fi

BPE=${VQCLIP_BPE:-}
if [ -z "$BPE" ]; then
    for d in "${VQCLIP_MODELS:-}" "$HOME/.cache/vqclip" "$ROOT/../shared/fixtures/clip"; do
        if [ -n "$d" ] && [ -s "$d/bpe_simple_vocab_16e6.txt.gz" ]; then
            BPE=$d/bpe_simple_vocab_16e6.txt.gz
            break
        fi
    done
fi
[ -n "$BPE" ] || die "bpe_simple_vocab_16e6.txt.gz not found: set VQCLIP_BPE"
if [ "${1:-}" = --whole ]; then
    shift
    echo "bench.sh: whole processes, $("$BIN" --version), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    exec "$PY" "$ROOT/scripts/bench_whole.py" --bin "$BIN" --vqgan "$VQGAN" --clip "$CLIP" \
        --bpe "$BPE" "$@"
fi

echo "bench.sh: $("$BIN" --version), device $VQCLIP_BENCH_DEVICE, OMP_WAIT_POLICY=$OMP_WAIT_POLICY," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$PY" "$ROOT/scripts/bench_run.py" --bin "$BIN" --vqgan "$VQGAN" --clip "$CLIP" \
    --bpe "$BPE" --device "$VQCLIP_BENCH_DEVICE" --sizes "$SIZES" "$@"

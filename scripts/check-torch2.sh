#!/usr/bin/env bash
# Compiles the libtorch shim (src/torch/*.cpp, syntax only) against libtorch 2.x's headers, with
# its CUDA code paths on where CUDA's headers are here.
#
#   scripts/check-torch2.sh
#   scripts/check-torch2.sh --cuda-only   the same, or nothing (exit 0) where no CUDA headers are
#                                         found: CI's way, whose Debian 13 build
#                                         (scripts/run-torch2.sh) compiles the CPU paths anyway
#
# Why: this machine builds against Debian 12's libtorch 1.13, and the lent GPU machines build
# against a PyTorch 2.x install, which no machine without a GPU session sees. A shim that does
# not compile there costs a whole device call (docs/gpu.md). This check takes Debian's next
# release's libtorch-dev (2.x, headers only: downloaded with apt into a cache, never installed,
# never copied into the tree) and compiles every shim file against it, as the device build would:
# VQT_WITH_CUDA_HEADERS, VQT_WITH_CUDART and VQT_WITH_CUDA_GRAPHS defined when
# cuda_runtime_api.h is found ($CUDA_HOME/include or /usr/local/cuda/include), else the CPU
# build's paths only (said on stderr). Debian's CPU package lacks one generated CUDA header,
# c10/cuda/impl/cuda_cmake_macros.h; the check writes its one-line stand-in into the cache.
# The device build compiles shim_graph.cpp once at configure time and leaves CUDA graphs out if
# that fails (cmake/cuda.cmake); here any error fails.
#
# Environment: VQCLIP_TORCH2_SUITE (default trixie), VQCLIP_TORCH2_CACHE (default
# ~/.cache/vqclip-torch2). Exit 0: every file compiled; 1: a file did not; 2: no headers.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_ONLY=0
case "${1:-}" in
  "") ;;
  --cuda-only) CUDA_ONLY=1 ;;
  *) echo "usage: scripts/check-torch2.sh [--cuda-only]" >&2; exit 2 ;;
esac
CUDA_INC=""
for d in ${CUDA_HOME:+"$CUDA_HOME/include"} /usr/local/cuda/include; do
  if [ -f "$d/cuda_runtime_api.h" ]; then CUDA_INC=$d; break; fi
done
if [ "$CUDA_ONLY" = 1 ] && [ -z "$CUDA_INC" ]; then
  echo "check-torch2: no CUDA headers here; the CPU paths are left to the Debian 13 build" >&2
  exit 0
fi
SUITE=${VQCLIP_TORCH2_SUITE:-trixie}
CACHE=${VQCLIP_TORCH2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vqclip-torch2}
INC=$CACHE/root/usr/include

if [ ! -f "$INC/torch/csrc/api/include/torch/version.h" ]; then
  mkdir -p "$CACHE/lists/partial" "$CACHE/deb"
  echo "deb http://deb.debian.org/debian $SUITE main" >"$CACHE/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$CACHE/sources.list" -o "Dir::Etc::sourceparts=/dev/null"
            -o "Dir::State::Lists=$CACHE/lists" -o "Debug::NoLocking=1")
  echo "check-torch2: fetching libtorch-dev from Debian $SUITE into $CACHE" >&2
  if ! apt-get "${apt_opts[@]}" update >"$CACHE/apt.log" 2>&1 ||
     ! (cd "$CACHE/deb" && apt-get "${apt_opts[@]}" download libtorch-dev >>"$CACHE/apt.log" 2>&1); then
    echo "check-torch2: could not download libtorch-dev ($CACHE/apt.log)" >&2
    exit 2
  fi
  rm -rf "$CACHE/root"
  dpkg-deb -x "$CACHE"/deb/libtorch-dev_*.deb "$CACHE/root"
fi
version=$(printf '#include <torch/version.h>\nTORCH_VERSION_MAJOR.TORCH_VERSION_MINOR\n' |
          c++ -E -P -isystem "$INC/torch/csrc/api/include" -isystem "$INC" -x c++ - | tail -n 1 | tr -d ' ')
case $version in
  2.*|[3-9].*) ;;
  *) echo "check-torch2: $INC holds libtorch '$version', not 2.x" >&2; exit 2 ;;
esac

mkdir -p "$CACHE/extra/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' \
  >"$CACHE/extra/c10/cuda/impl/cuda_cmake_macros.h"

# C++17, as the build; libtorch 2.14 and later refuse it, and the build takes C++20 for them
# (cmake/cuda.cmake).
std=gnu++17
major=${version%%.*} minor=${version#*.}
if [ "$major" -gt 2 ] || { [ "$major" = 2 ] && [ "$minor" -ge 14 ]; }; then std=gnu++20; fi
flags=(-std=$std -fsyntax-only -D_GLIBCXX_USE_CXX11_ABI=1 -D_GNU_SOURCE -Iinclude -Isrc
       -isystem "$CACHE/extra" -isystem "$INC/torch/csrc/api/include" -isystem "$INC")
what="CPU paths only"
if [ -n "$CUDA_INC" ]; then
  flags+=(-DVQT_WITH_CUDA_HEADERS -DVQT_WITH_CUDART -DVQT_WITH_CUDA_GRAPHS -isystem "$CUDA_INC")
  what="CUDA paths on, CUDA headers from $CUDA_INC"
fi
echo "check-torch2: libtorch $version headers, $what, $std" >&2

logs=$CACHE/logs
rm -rf "$logs"
mkdir -p "$logs"
pids=()
files=(src/torch/*.cpp)
for f in "${files[@]}"; do
  c++ "${flags[@]}" "$f" >"$logs/$(basename "$f").log" 2>&1 &
  pids+=($!)
  # at most as many compilers at once as there are processors
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do sleep 0.2; done
done
bad=0
for i in "${!files[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "check-torch2: ${files[$i]} does not compile against libtorch $version:" >&2
    grep -m 10 -E 'error' "$logs/$(basename "${files[$i]}").log" >&2 || true
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "check-torch2: ${#files[@]} shim files compile against libtorch $version" >&2
exit "$bad"

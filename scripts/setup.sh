#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for vqclip and builds it: installs the build dependencies
# with apt (as root, or through sudo), then configures and builds into ./build.
#   scripts/setup.sh            install + build (Release with debug info)
#   VQCLIP_SANITIZE=1 scripts/setup.sh   build with AddressSanitizer + UBSan into ./build-asan
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config libtorch-dev libopenblas0-openmp libstb-dev
      libcjson-dev libutf8proc-dev zlib1g-dev libcurl4-openssl-dev)

scripts/apt-ensure.sh "${PKGS[@]}"

# Debian's libtorch falls back to the reference BLAS (~30x slower) unless OpenBLAS is the
# selected libblas alternative; libopenblas0-openmp registers itself, but say so if it is not.
if command -v update-alternatives >/dev/null; then
  sel=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
  case "$sel" in *openblas*) ;; *) echo "setup: warning: libblas.so.3 is '$sel', not OpenBLAS" >&2 ;; esac
fi

if [ "${VQCLIP_SANITIZE:-0}" = 1 ]; then
  # Line tables (-g1) are all that the sanitizers' reports need; full debug information made
  # the libtorch shim's files a quarter slower to compile.
  BUILD=build-asan
  EXTRA=(-DVQCLIP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG=-g1
         -DCMAKE_CXX_FLAGS_DEBUG=-g1)
else
  BUILD=build; EXTRA=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$BUILD" "${EXTRA[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
echo "setup: built $BUILD/vqclip" >&2

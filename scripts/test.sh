#!/usr/bin/env bash
# Runs the test suite (CPU labels: unit and parity) on the build in ./build, and fails when a
# test was skipped: a missing fixture folder must not pass silently.
#   scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${VQCLIP_BUILD:-build}
export VQCLIP_FIXTURES="${VQCLIP_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
# What the tests use beyond the build: a one-node Slurm cluster, man page rendering, a local
# HTTP server for the download script, ffmpeg for the videos.
scripts/apt-ensure.sh slurm-wlm munge groff-base man-db curl python3 ffmpeg
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ctest --test-dir "$BUILD" --output-on-failure -LE gpu -j"$(nproc)" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -q "Not Run\|\*\*\*Skipped" "$log"; then
  echo "test: some tests were skipped (fixtures in $VQCLIP_FIXTURES?): failing" >&2
  exit 1
fi
exit "$status"

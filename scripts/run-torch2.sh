#!/usr/bin/env bash
# Builds vqclip against Debian 13's libtorch 2.x and stb and runs its test suite there, on the
# CPU, in a Debian 13 chroot.
#
#   scripts/run-torch2.sh [ctest arguments]      as root (debootstrap, chroot, mount)
#   scripts/run-torch2.sh --prepare              only makes the chroot, if it is not made yet
#                                                (CI runs this in the background while it builds)
#
# Why: this machine builds against Debian 12's libtorch 1.13 and the lent GPU machines against a
# PyTorch 2.x install. scripts/check-torch2.sh compiles the shim against 2.x's headers; this
# runs it. The code written for the GPU (libtorch 2's scaled_dot_product_attention behind
# vqt_sdpa, the fused attention checks, the recorded graphs' emulation, the lean operators'
# autograd) then runs against a 2.x libtorch before any device call, and the rest of the suite
# meets the newer system libraries a Debian 13 user has (stb 2024: it read a JPEG cut inside its
# tables as a picture, which 2.27 refused; src/io/image.c).
#
# The chroot (debootstrap, minbase, with the build's packages) is made once into the cache and
# reused (while a run is in progress the host's /dev and the fixtures are mounted inside it: do
# not delete the cache then; the script unmounts them when it ends, or at its next start); the working tree as it is (uncommitted changes included) is copied into it with its
# timestamps, so that its build folder rebuilds only what changed. ../shared/fixtures (or
# $VQCLIP_FIXTURES) is mounted read-only. Left out: test-install (it checks the host's man page
# tools), test-slurm (a Slurm cluster) and test-download (a local HTTP server and curl's
# command); they exercise no libtorch. A test skipped for any other reason fails the run.
#
# Environment: VQCLIP_TORCH2_SUITE (default trixie), VQCLIP_TORCH2_CACHE (default
# ~/.cache/vqclip-torch2), VQCLIP_FIXTURES, VQCLIP_TORCH2_EXCLUDE (a regular expression of more
# tests to leave out, as CI does with its slowest command-line tests), VQCLIP_TORCH2_JOBS
# (tests at once, default 1). Exit 0: every test passed; 1: one did not; 2: the chroot could
# not be made.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${VQCLIP_TORCH2_SUITE:-trixie}
CACHE=${VQCLIP_TORCH2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vqclip-torch2}
R=$CACHE/$SUITE-root
FIX=${VQCLIP_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
PKGS=build-essential,cmake,pkg-config,libtorch-dev,libopenblas0-openmp,libstb-dev,libcjson-dev
PKGS=$PKGS,libutf8proc-dev,zlib1g-dev,libcurl4-openssl-dev,python3
SKIP='^test-(install|slurm|download)$'
[ -z "${VQCLIP_TORCH2_EXCLUDE:-}" ] || SKIP="$SKIP|$VQCLIP_TORCH2_EXCLUDE"
# One test at a time by default: two libtorch 2.6 test programs at once on two cores spin
# against each other's OpenMP workers (the test programs, unlike the command line, keep the
# active wait policy), and ran 5 to 14 times slower than alone.
JOBS=${VQCLIP_TORCH2_JOBS:-1}
PREPARE=0
[ "${1:-}" != --prepare ] || PREPARE=1

say() { echo "run-torch2: $*" >&2; }

# What is mounted under the chroot, deepest first: /dev and the fixtures are bind mounts of the
# host's own, so nothing may remove the chroot's files while they are there.
mounted_under() { awk -v r="$1/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r; }
unmount_all() {
  local m
  for m in $(mounted_under "$R"); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ -n "$(mounted_under "$R")" ]; then
    say "cannot unmount what is mounted under $R: $(mounted_under "$R" | tr '\n' ' ')"
    return 1
  fi
}
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot, mount)"; exit 2; }
[ -d "$FIX" ] || { say "no fixtures at $FIX (set VQCLIP_FIXTURES)"; exit 2; }
mkdir -p "$CACHE"
# Mounts left by a run that was killed (no trap runs on SIGKILL) go first.
unmount_all || exit 2

if [ ! -f "$R/.vqclip-ready" ]; then
  scripts/apt-ensure.sh debootstrap
  rm -rf "$R"
  say "making a Debian $SUITE chroot in $R"
  if ! debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$R" \
       http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1; then
    say "debootstrap failed ($CACHE/debootstrap.log)"
    exit 2
  fi
  touch "$R/.vqclip-ready"
fi
[ "$PREPARE" = 0 ] || { say "the chroot is ready in $R"; exit 0; }

trap unmount_all EXIT
bind() { # SOURCE TARGET [OPTIONS]
  mkdir -p "$2"
  mount --bind "$1" "$2" || { say "cannot mount $2"; exit 2; }
  [ -z "${3:-}" ] || mount -o "remount,bind,$3" "$2" || { say "cannot remount $2 $3"; exit 2; }
}
mkdir -p "$R/proc"
mount -t proc proc "$R/proc" || { say "cannot mount $R/proc"; exit 2; }
bind /dev "$R/dev"
bind "$FIX" "$R/fixtures" ro

# The working tree as it is, with its timestamps (files deleted here go there too). A file
# whose content differs from the last copy's is stamped now: the chroot's build was made from
# that copy, after the file's own time, and make would otherwise keep its stale objects.
rm -rf "$R/src.new"
mkdir -p "$R/src.new"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$R/src.new"
if [ -d "$R/src" ]; then
  git ls-files -co --exclude-standard -z |
    while IFS= read -r -d '' f; do
      if [ -f "$R/src.new/$f" ] && ! cmp -s "$R/src.new/$f" "$R/src/$f"; then
        touch "$R/src.new/$f"
      fi
    done
fi
rm -rf "$R/src"
mv "$R/src.new" "$R/src"

in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
            VQCLIP_FIXTURES=/fixtures bash -c "$1"; }
version=$(in_root "dpkg-query -W -f '\${Version}' libtorch-dev")
say "libtorch-dev $version, stb $(in_root "dpkg-query -W -f '\${Version}' libstb-dev")"
t=$(date +%s)
# Optimised as the host's build, without its debug information: this build only runs the
# tests, and -g took a quarter of its time.
if ! in_root "cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                -DCMAKE_C_FLAGS_RELWITHDEBINFO='-O2 -DNDEBUG' \
                -DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O2 -DNDEBUG' >/build.log 2>&1 &&
              cmake --build /build -j$(nproc) >>/build.log 2>&1"; then
  tail -n 30 "$R/build.log" >&2
  say "the build against libtorch $version failed"
  exit 1
fi
say "built in $(($(date +%s) - t)) s"

log=$CACHE/ctest.log
set +e
in_root "cd /build && ctest --output-on-failure -LE gpu -E '$SKIP' -j$JOBS --timeout 900 \
         $(printf '%q ' "$@")" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -q "Not Run\|\*\*\*Skipped" "$log"; then
  say "some tests were skipped: failing"
  exit 1
fi
[ "$status" = 0 ] && say "every test passed against libtorch $version" ||
  say "tests failed against libtorch $version"
[ "$status" = 0 ]

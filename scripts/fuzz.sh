#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz-*.c) with clang into build-fuzz and runs each for
# SECONDS (default 60), two at a time, then prints a summary table. Exits 1 if any target found a
# crash, leak, timeout or out-of-memory (the input is kept in build-fuzz/artifacts/; the previous
# run's are moved to artifacts.prev), 2 on a build or setup failure. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS]
#   FUZZ_TARGETS="pickle zip" scripts/fuzz.sh 600     # some targets only, 10 min each
#   FUZZ_JOBS=1 scripts/fuzz.sh                       # one at a time
#   FUZZ_CPU_SECONDS=1800 scripts/fuzz.sh 300           # a campaign: each target repeats 300 s
#                                                      # runs until it has had 30 CPU-minutes
#   scripts/fuzz.sh --minimise                         # merge the working corpora into fuzz/corpus
#
# The working corpus, build-fuzz/corpus/<target>, is kept between runs and grows; the seeds are
# regenerated each run from fuzz/corpus and the fixtures ($VQCLIP_FIXTURES, default
# ../shared/fixtures) by fuzz/make-corpus.py.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
MINIMISE=0
if [ "$SECONDS_EACH" = --minimise ]; then
  MINIMISE=1
  SECONDS_EACH=60
fi
CPU_GOAL="${FUZZ_CPU_SECONDS:-0}"
JOBS="${FUZZ_JOBS:-2}"
B="${FUZZ_BUILD:-build-fuzz}"
export VQCLIP_FIXTURES="${VQCLIP_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
case "$SECONDS_EACH$CPU_GOAL" in '' | *[!0-9]*)
  echo "usage: [FUZZ_CPU_SECONDS=N] scripts/fuzz.sh [SECONDS | --minimise]" >&2; exit 2 ;; esac

fail() { echo "fuzz: $*" >&2; exit 2; }

# clang, and libFuzzer's runtime (only recommended by clang, so named here)
scripts/apt-ensure.sh clang libclang-rt-14-dev python3 || fail "cannot install clang"
[ -d "$VQCLIP_FIXTURES" ] || fail "fixtures not found at $VQCLIP_FIXTURES"

echo "fuzz: building the targets in $B" >&2
mkdir -p "$B"
CC=clang CXX=clang++ cmake -S . -B "$B" -DVQCLIP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >"$B/configure.log" 2>&1 || { cat "$B/configure.log" >&2; fail "configure failed"; }
nice -n 10 cmake --build "$B" --target vqclip_fuzz -j "$JOBS" >"$B/build.log" 2>&1 ||
  { tail -40 "$B/build.log" >&2; fail "build failed"; }

rm -rf "$B/seeds"
python3 fuzz/make-corpus.py "$B/seeds" "$VQCLIP_FIXTURES" || fail "cannot write the seed corpora"
rm -rf "$B/artifacts.prev"
[ -d "$B/artifacts" ] && mv "$B/artifacts" "$B/artifacts.prev"
mkdir -p "$B/artifacts" "$B/logs"

targets="${FUZZ_TARGETS:-$(cd fuzz && ls fuzz-*.c | sed 's/^fuzz-//; s/\.c$//')}"

# Runs one target for SECONDS_EACH, or with FUZZ_CPU_SECONDS in runs of SECONDS_EACH until the
# target has used that much CPU time (user + system; a busy machine gives it less than the wall
# clock); its log goes to $B/logs/<target>.log, its CPU seconds to $B/logs/<target>.cpu.
run_one() {
  local t="$1" rc=0 cpu=0 used
  mkdir -p "$B/corpus/$t" "$B/seeds/$t"
  : >"$B/logs/$t.log"
  while :; do
    used=$( { TIMEFORMAT='%3U %3S'; time nice -n 10 "$B/fuzz-$t" -max_total_time="$SECONDS_EACH" \
      -timeout=25 -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$B/artifacts/$t-" "$B/corpus/$t" "$B/seeds/$t" >>"$B/logs/$t.log" 2>&1
      echo "rc=$?" >"$B/logs/$t.rc"; } 2>&1 )
    rc=$(sed 's/rc=//' "$B/logs/$t.rc")
    cpu=$(awk -v c="$cpu" -v u="$used" 'BEGIN { split(u, a, " "); printf "%.0f", c + a[1] + a[2] }')
    [ "$rc" = 0 ] && [ "$cpu" -lt "$CPU_GOAL" ] || break
  done
  echo "$cpu" >"$B/logs/$t.cpu"
  echo "$rc" >"$B/logs/$t.status"
}

# --minimise: the inputs of each working corpus that add coverage to the committed seeds are
# copied into fuzz/corpus/<target> (libFuzzer's -merge=1), so that later runs, CI's 60 s
# included, start from what a long campaign found.
if [ "$MINIMISE" = 1 ]; then
  for t in $targets; do
    [ -d "$B/corpus/$t" ] || continue
    mkdir -p "fuzz/corpus/$t"
    before=$(ls "fuzz/corpus/$t" | wc -l)
    "$B/fuzz-$t" -merge=1 -timeout=25 -rss_limit_mb=2560 -max_len=65536 "fuzz/corpus/$t" \
      "$B/corpus/$t" >"$B/logs/$t.merge.log" 2>&1 || fail "merging $t failed: $B/logs/$t.merge.log"
    echo "fuzz: fuzz/corpus/$t: $before -> $(ls "fuzz/corpus/$t" | wc -l) inputs" >&2
  done
  exit 0
fi

echo "fuzz: running $(echo $targets | wc -w) targets, ${SECONDS_EACH}s each, $JOBS at a time" >&2
running=0
for t in $targets; do
  [ -x "$B/fuzz-$t" ] || fail "no target fuzz-$t"
  rm -f "$B/logs/$t.status"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

# The summary: a line per target from libFuzzer's final stats.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
total() { sed -n "s/^stat::$1: *//p" "$2" | awk '{ s += $1 } END { print s + 0 }'; }
bad=0
printf '%-18s %10s %8s %8s %8s %8s  %s\n' target runs exec/s cpu-s corpus crashes status
for t in $targets; do
  log="$B/logs/$t.log"
  rc=$(cat "$B/logs/$t.status" 2>/dev/null || echo 99)
  crashes=$(ls "$B/artifacts/$t-"* 2>/dev/null | wc -l)
  status=ok
  if [ "$rc" != 0 ] || grep -q '^==[0-9]*==ERROR\|^SUMMARY: ' "$log"; then
    status="FAILED (exit $rc, see $log)"
    bad=1
    [ "$crashes" -gt 0 ] || crashes=1
  fi
  printf '%-18s %10s %8s %8s %8s %8s  %s\n' "$t" "$(total number_of_executed_units "$log")" \
    "$(stat average_exec_per_sec "$log")" "$(cat "$B/logs/$t.cpu" 2>/dev/null)" \
    "$(ls "$B/corpus/$t" | wc -l)" "$crashes" "$status"
done
if [ "$bad" != 0 ]; then
  echo "fuzz: failures; reproduce with $B/fuzz-TARGET $B/artifacts/TARGET-crash-..." >&2
  exit 1
fi
echo "fuzz: no crashes" >&2

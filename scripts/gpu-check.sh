#!/usr/bin/env bash
# The GPU check: one script, run on the lent H100/H200 (no apt, no network), that builds vqclip
# against the PyTorch install's CUDA libtorch, runs the tests, and prints the benchmark table.
#
#   scripts/gpu-check.sh                 on the device machine (see docs/gpu.md for the call)
#   scripts/gpu-check.sh --cpu-dry-run   here, without a GPU: the same stages with tiny sizes on
#                                        the CPU, building with ONLY the carried dependencies
#   options: --budget SECONDS (default 420; dry run 3600)  --steps N (timed steps, default 50)
#   environment: GPU_CHECK_SIZES ("256 512"), GPU_CHECK_CUTN (32), VQCLIP_GPU_INDEX (0),
#                GPU_CHECK_BUILD (build-gpu-check), GPU_CHECK_WORK (/tmp/vqclip-gpu-check)
#
# Needs scripts/gpu-carry.sh to have filled .carry/ (headers, libraries, .pc files, fixtures).
# Stages, each with its own time limit inside one overall budget (a stage that would start with
# under 10 s left is skipped), logs under $OUT (or <build>/out):
#   env        the machine: GPU, driver, torch, compilers          -> env.log
#   models     full-size random-weight VQGAN + ViT-B/32 written by scripts/make-bench-models.py
#              into $WORK/models, in the background from the start  -> models.log
#   configure  cmake against torch.utils.cmake_prefix_path and .carry -> build.log
#   build      all targets                                          -> build.log
#   gpu-tests  ctest -L gpu, once the models are written: test-gpu-agreement (fixtures),
#              test-gpu-precision (fast and mixed against exact on the full-size models) and
#              test-gpu-memory (a memory limit); all must pass, not skip -> tests.log
#   bench      vqclip at 256x256 and 512x512, cutn 32: steps/s, start-up, peak device memory
#              and the memory planner's estimate; the peer (scripts/peer_baseline.py) at both
#              sizes; then, time allowing, the rows in run_bench's order (docs/gpu.md lists
#              them): profiles with their stage, kernel and hardware tables (profile.txt),
#              each fast path off in turn, 1024, the other precisions, --deterministic twice,
#              frames, 2048                                        -> bench.log, bench.md
#   cpu-tests  ctest -LE gpu: the CPU unit + parity suite (no skips); skipped with
#              GPU_CHECK_CPU_TESTS=0 (CI runs it anyway)               -> tests.log
# It ends with the benchmark table and one PASS/FAIL line per stage; exit 0 only if all passed.
#
# For developing this script without a GPU: GPU_CHECK_MOCK=1 runs the GPU mode's control flow
# on the CPU, with stubs for nvidia-smi and python3 (written to $WORK/mockbin, first on PATH:
# they answer the torch questions with Debian's libtorch and copy the tiny fixtures as the
# "models"); the CUDA requirements are waived, the GPU test is expected to skip and is run as in
# the dry run, the benchmark runs on the CPU. Use small GPU_CHECK_SIZES ("32 64").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
T0=$(date +%s)

MODE=gpu
MOCK=${GPU_CHECK_MOCK:-0}
BUDGET=""
STEPS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry-run) MODE=dry; shift ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if [ "$MODE" = gpu ]; then
  BUILD=${GPU_CHECK_BUILD:-build-gpu-check}
  BUDGET=${BUDGET:-420}
  STEPS=${STEPS:-50}
  WARM=5
  SIZES=${GPU_CHECK_SIZES:-256 512}
  CUTN=${GPU_CHECK_CUTN:-32}
  GPU=${VQCLIP_GPU_INDEX:-0}
  DEVICE=cuda:$GPU
  [ "$MOCK" = 1 ] && DEVICE=cpu
else
  BUILD=${GPU_CHECK_BUILD:-build-gpu-dry}
  BUDGET=${BUDGET:-3600}
  STEPS=${STEPS:-3}
  WARM=2
  SIZES=${GPU_CHECK_SIZES:-32 64}
  CUTN=${GPU_CHECK_CUTN:-8}
  GPU=0
  DEVICE=cpu
fi
# Stage limits are the device's; a dry run on a small shared machine gets four times as long.
SCALE=1
[ "$MODE" = dry ] && SCALE=4
DEADLINE=$((T0 + BUDGET))
WORK=${GPU_CHECK_WORK:-/tmp/vqclip-gpu-check}
LOGS=${OUT:-$ROOT/$BUILD/out}
CARRY=$ROOT/.carry
JOBS=$(nproc 2>/dev/null || echo 4)
mkdir -p "$WORK" "$LOGS" "$BUILD"
: >"$LOGS/env.log"
: >"$LOGS/build.log"
: >"$LOGS/tests.log"
: >"$LOGS/bench.log"
: >"$LOGS/bench.md"
: >"$LOGS/profile.txt"

if [ -n "${VQCLIP_FIXTURES:-}" ]; then
  FIX=$VQCLIP_FIXTURES
elif [ -d "$CARRY/fixtures" ]; then
  FIX=$CARRY/fixtures
else
  FIX=$(cd .. && pwd)/shared/fixtures
fi
FIX=$(cd "$FIX" 2>/dev/null && pwd || echo "$FIX")

# gpu-carry.sh --gpu-fixtures-only carries the large fixtures xz-compressed: they are unpacked
# into a copy under $WORK (xz, or Python's lzma where the machine has no xz), so that .carry
# stays as it travels. Said in env.log; a failure fails the env stage.
UNPACK_FAILED=""
if [ -d "$FIX" ] && [ -n "$(find "$FIX" -name '*.xz' -print -quit 2>/dev/null)" ]; then
  mkdir -p "$WORK/fixtures"
  cp -a "$FIX/." "$WORK/fixtures/"
  FIX=$WORK/fixtures
  while IFS= read -r f; do
    if [ ! -s "${f%.xz}" ]; then
      echo "unpacking ${f#"$FIX"/}" >>"$LOGS/env.log"
      if command -v xz >/dev/null; then
        xz -dc "$f" >"${f%.xz}.part"
      else
        python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as i, open(sys.argv[2], "wb") as o:
    shutil.copyfileobj(i, o)' "$f" "${f%.xz}.part"
      fi && mv "${f%.xz}.part" "${f%.xz}" || UNPACK_FAILED="cannot unpack $f"
    fi
    rm -f "$f"
  done < <(find "$FIX" -name '*.xz')
fi
export VQCLIP_FIXTURES=$FIX PYTHONUNBUFFERED=1
export ROOT MODE MOCK BUILD WORK LOGS CARRY JOBS FIX GPU DEVICE UNPACK_FAILED

if [ "$MOCK" = 1 ]; then
  mkdir -p "$WORK/mockbin"
  cat >"$WORK/mockbin/nvidia-smi" <<'EOF'
#!/bin/bash
# gpu-check.sh's mock nvidia-smi
case " $* " in
  *" -lms "*) while true; do echo $((1000 + RANDOM % 500)); sleep 0.1; done ;;
  *"--query-gpu=name,memory.total"*) echo "Mock GPU, 81559 MiB, 0.0" ;;
  *) echo "Mock nvidia-smi: one mock GPU" ;;
esac
EOF
  cat >"$WORK/mockbin/python3" <<EOF
#!/bin/bash
# gpu-check.sh's mock python3: the torch questions answered, the rest to $(command -v python3)
if [ "\$1" = -c ]; then
  case "\$2" in
    *cmake_prefix_path*) echo /usr/lib/x86_64-linux-gnu/cmake; exit 0 ;;
    *__version__*) echo "mock"; exit 0 ;;
  esac
fi
if [[ "\$1" == *make-bench-models.py ]]; then
  sleep 15
  cp "\$VQCLIP_FIXTURES/vqgan/tiny_vq.ckpt" "\$2/vqgan_f16_16384_random.ckpt"
  cp "\$VQCLIP_FIXTURES/vqgan/tiny_vq.yaml" "\$2/vqgan_f16_16384_random.yaml"
  cp "\$VQCLIP_FIXTURES/clip/tiny_vit.pt" "\$2/ViT-B-32_random.pt"
  exit 0
fi
# bench_stages.py measures with torch: Debian's (python3-torch) where it is installed
if [[ "\$1" == *bench_stages.py ]] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  exec /usr/bin/python3 "\$@"
fi
if [ "\$1" = - ]; then
  src=\$(cat)
  case "\$src" in "import torch"*) echo "torch mock"; exit 0 ;; esac
  shift
  exec $(command -v python3) - "\$@" <<<"\$src"
fi
exec $(command -v python3) "\$@"
EOF
  chmod +x "$WORK/mockbin/nvidia-smi" "$WORK/mockbin/python3"
  export PATH="$WORK/mockbin:$PATH"
fi

# ---- bookkeeping ---------------------------------------------------------------------------

STAGES=()
RESULTS=()
NOTES=()
record() { # NAME RESULT NOTE
  STAGES+=("$1")
  RESULTS+=("$2")
  NOTES+=("$3")
  printf 'gpu-check: %-10s %-7s %s\n' "$1" "$2" "$3"
}
left() { echo $((DEADLINE - $(date +%s))); }

# Interrupted: stop the stage in flight (timeout passes the signal to its process group) and
# the model writer, then exit.
CURRENT=""
MODELS_PID=""
on_signal() {
  [ -n "$CURRENT" ] && kill -TERM "$CURRENT" 2>/dev/null
  [ -n "$MODELS_PID" ] && pkill -TERM -P "$MODELS_PID" 2>/dev/null
  echo "gpu-check: interrupted" >&2
  exit 143
}
trap on_signal INT TERM

# Runs the exported function FUNC under `timeout` (its whole process group is killed at the
# limit), appending its output to LOG. Records PASS / FAIL (status) / TIMEOUT / SKIP.
stage() { # NAME LIMIT LOG FUNC
  local name=$1 limit=$2 log=$3 fn=$4 rest t rc
  rest=$(left)
  if [ "$rest" -lt 10 ]; then
    record "$name" SKIP "no time left in the ${BUDGET}s budget"
    return 1
  fi
  limit=$((limit * SCALE))
  [ "$limit" -gt "$rest" ] && limit=$rest
  echo "==== $name (limit ${limit}s) $(date -u +%H:%M:%S)" >>"$log"
  t=$(date +%s)
  timeout -k 10 "$limit" bash -c "$fn" >>"$log" 2>&1 &
  CURRENT=$!
  wait "$CURRENT"
  rc=$?
  CURRENT=""
  t=$(($(date +%s) - t))
  case $rc in
    0) record "$name" PASS "${t}s" ;;
    124|137) record "$name" TIMEOUT "stopped after ${limit}s (see $(basename "$log"))" ;;
    *) record "$name" FAIL "status $rc after ${t}s (see $(basename "$log"))" ;;
  esac
  return $rc
}

# ---- stage bodies (run in child shells: exported) -------------------------------------------

st_env() {
  echo "mode $MODE, root $ROOT, build $BUILD, work $WORK, fixtures $FIX, jobs $JOBS"
  uname -a
  if [ "$MODE" = gpu ]; then
    nvidia-smi || return 1
    nvidia-smi --query-gpu=index,name,memory.total,driver_version,clocks.sm,clocks.mem \
      --format=csv || true
  fi
  python3 - <<'EOF' || [ "$MODE" = dry ]
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available",
      torch.cuda.is_available(), "devices", torch.cuda.device_count())
print("cmake_prefix_path", torch.utils.cmake_prefix_path)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device0", p.name, p.total_memory, "SMs", p.multi_processor_count)
EOF
  for tool in cmake ninja cc c++ nvcc pkg-config; do
    printf '%-10s ' "$tool"
    if command -v "$tool" >/dev/null; then "$tool" --version 2>&1 | head -1; else echo missing; fi
  done
  [ -f "$CARRY/MANIFEST" ] && head -12 "$CARRY/MANIFEST"
  [ -d "$FIX" ] || { echo "no fixtures at $FIX: run scripts/gpu-carry.sh here first"; return 1; }
  [ -z "$UNPACK_FAILED" ] || { echo "$UNPACK_FAILED"; return 1; }
}

st_configure() {
  local prefix="$CARRY" args=() gen=""
  if [ "$MODE" = gpu ]; then
    prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)');$CARRY" || return 1
    local nvcc
    nvcc=$(command -v nvcc ||
           ls /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc 2>/dev/null | head -1)
    if [ -n "$nvcc" ]; then
      export CUDACXX=$nvcc CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$nvcc")")}
      export PATH="$CUDA_HOME/bin:$PATH" CUDAToolkit_ROOT=$CUDA_HOME
    fi
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  fi
  command -v ninja >/dev/null && gen=Ninja
  # Always a fresh cache (no stale -D values or NOTFOUND results from an earlier run); the
  # objects of an earlier build in the same folder are still reused when nothing changed.
  if [ -f "$BUILD/CMakeCache.txt" ] &&
     ! grep -q "^CMAKE_GENERATOR:INTERNAL=${gen:-Unix Makefiles}$" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD/CMakeFiles"
  fi
  rm -f "$BUILD/CMakeCache.txt"
  # Without the precompiled header: on 16 cores the shim's files build at once instead of
  # waiting for it.
  args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$prefix"
        -DVQCLIP_PCH=OFF)
  [ -n "$gen" ] && args+=(-G "$gen")
  export PKG_CONFIG_PATH="$CARRY/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  if [ "$MODE" = dry ]; then
    # Prove the carried folder suffices: system .pc files hidden, the carried pkgconf, zlib's
    # headers from .carry and its library through the link made as on a machine without
    # zlib1g-dev; the checks below then require every dependency to come from there. (Hiding
    # /usr/include from CMake is not possible here: Debian's Caffe2 config finds protobuf in it.)
    export PKG_CONFIG_LIBDIR="$CARRY/lib/pkgconfig" PATH="$CARRY/pkgconf/bin:$PATH"
  elif ! command -v pkg-config >/dev/null; then
    export PATH="$CARRY/pkgconf/bin:$PATH"
  fi
  local cc=${CC:-cc} so target
  so=$($cc -print-file-name=libz.so 2>/dev/null)
  if [ "$MODE" = dry ] || [ "$so" = libz.so ] || [ ! -e "$so" ]; then
    target=$($cc -print-file-name=libz.so.1 2>/dev/null)
    [ -e "$target" ] || target=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
    [ -e "$target" ] || { echo "no libz.so.1 on this machine"; return 1; }
    mkdir -p "$WORK/zlib"
    ln -sf "$target" "$WORK/zlib/libz.so"
    args+=("-DZLIB_LIBRARY=$WORK/zlib/libz.so")
  fi
  if [ "$MODE" = dry ] || ! echo '#include <zlib.h>' | $cc -E -x c - >/dev/null 2>&1; then
    args+=("-DZLIB_INCLUDE_DIR=$CARRY/include")
  fi
  # URL inputs need libcurl's headers, which a device machine may lack: build without them.
  if ! pkg-config --exists libcurl 2>/dev/null; then
    echo "libcurl not found: configuring with -DVQCLIP_URLS=OFF"
    args+=(-DVQCLIP_URLS=OFF)
  fi
  echo "cmake ${args[*]}"
  cmake "${args[@]}" 2>&1 | tee "$WORK/configure.out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  # Where each dependency came from.
  local bad=0 v
  for v in STB_INCLUDE_DIR STB_LIBRARY pkgcfg_lib_CJSON_cjson pkgcfg_lib_UTF8PROC_utf8proc \
           ZLIB_INCLUDE_DIR ZLIB_LIBRARY ZLIB_LIBRARY_RELEASE Torch_DIR; do
    local val
    val=$(grep -E "^$v:[A-Z]+=" "$BUILD/CMakeCache.txt" | head -1 | cut -d= -f2-)
    [ -n "$val" ] || continue
    echo "dependency $v = $val"
    case $v in
      STB_*|pkgcfg_*|ZLIB_INCLUDE_DIR)
        if [ "$MODE" = dry ] && [ "${val#"$CARRY"/}" = "$val" ]; then
          echo "  not from .carry"; bad=1
        fi ;;
      ZLIB_LIBRARY)
        if [ "$MODE" = dry ] && [ "$val" != "$WORK/zlib/libz.so" ]; then
          echo "  not the link to the machine's libz.so.1"; bad=1
        fi ;;
    esac
  done
  if [ "$MODE" = gpu ] && [ "$MOCK" != 1 ] &&
     ! grep -q "vqclip: CUDA libtorch" "$WORK/configure.out"; then
    echo "the libtorch found has no CUDA (cmake/cuda.cmake said CPU build)"; bad=1
  fi
  return $bad
}

st_build() {
  cmake --build "$BUILD" -j"$JOBS" || return 1
  if [ "$MODE" = gpu ] && [ "$MOCK" != 1 ]; then
    echo "vqclip's torch libraries:"
    ldd "$BUILD/vqclip" | grep -E "torch|c10|cuda" || true
    if ! ldd "$BUILD/vqclip" | grep -q "libtorch_cuda"; then
      echo "libtorch_cuda.so is not linked"
      return 1
    fi
  fi
  ldd "$BUILD/vqclip" | grep -E "stb|cjson|utf8proc|libz" || true
  if ldd "$BUILD/vqclip" | grep -q "not found"; then
    echo "a library of vqclip is not found"
    return 1
  fi
  local lib
  for lib in libstb.so.0 libcjson.so.1 libutf8proc.so.2; do
    if ! ldd "$BUILD/vqclip" | grep -q "$lib => $CARRY/lib/"; then
      echo "$lib is not loaded from $CARRY/lib"
      [ "$MODE" = dry ] && return 1
    fi
  done
  return 0
}

st_gpu_tests() {
  export NVIDIA_TF32_OVERRIDE=0 VQCLIP_GPU_INDEX=$GPU VQCLIP_BENCH_MODELS=$WORK/models
  # What a user's `vqclip doctor` says of this machine: each CUDA device's precision and its
  # small computations (vqc_cuda_device_check); the summary repeats its device lines. Its exit
  # status is test-gpu-agreement's to judge (check_device_info), not this line's.
  echo "==== vqclip doctor --no-bench"
  "$BUILD/vqclip" doctor --no-bench || echo "doctor: exit status $?"
  # -V: the tests' own figures (differences, cosines, losses) go to the log even when they pass
  ctest --test-dir "$BUILD" -L gpu -V --timeout 240 | tee "$WORK/ctest-gpu.out"
  local rc=${PIPESTATUS[0]} t
  if [ "$MODE" = gpu ] && [ "$MOCK" != 1 ]; then
    [ "$rc" -eq 0 ] || return 1
    if grep -qE "Skipped|Not Run" "$WORK/ctest-gpu.out"; then
      echo "a gpu test was skipped: libtorch sees no CUDA device (libtorch_cuda not loaded?)"
      return 1
    fi
    for t in test-gpu-agreement test-gpu-precision test-gpu-memory; do
      grep -q "$t .*Passed" "$WORK/ctest-gpu.out" || return 1
    done
    # The default precision by the card's compute capability (a unit test: CI runs its CPU part)
    echo "==== test-precision on the device"
    "$BUILD/test-precision" || return 1
  else
    # Here the tests must skip (exit 77) under ctest, then pass on the CPU when asked to.
    for t in test-gpu-agreement test-gpu-precision test-gpu-memory; do
      grep -q "$t .*Skipped" "$WORK/ctest-gpu.out" || return 1
      echo "==== $t with VQCLIP_GPU_TEST_ON_CPU=1"
      VQCLIP_GPU_TEST_ON_CPU=1 VQCLIP_BIN="$ROOT/$BUILD/vqclip" VQCLIP_TMP="$WORK/testtmp" \
        "$BUILD/$t" || return 1
    done
  fi
}

st_cpu_tests() {
  local j=$((JOBS / 2)) # each test uses every core for libtorch; half as many tests at once
  [ "$j" -ge 1 ] || j=1
  ctest --test-dir "$BUILD" -LE gpu -j"$j" --output-on-failure --timeout 200 |
    tee "$WORK/ctest-cpu.out"
  local rc=${PIPESTATUS[0]}
  if grep -qE "\*\*\*Skipped|Not Run" "$WORK/ctest-cpu.out"; then
    echo "some CPU tests were skipped (fixtures in $FIX?)"
    return 1
  fi
  return "$rc"
}

export -f st_env st_configure st_build st_gpu_tests st_cpu_tests

# ---- benchmark ------------------------------------------------------------------------------

# Starts sampling nvidia-smi's memory.used every 100 ms into $WORK/TAG.smi (GPU mode) and
# prints the sampler's pid (empty when nothing was started); smi_stop ends it.
smi_start() { # TAG
  if [ "$MODE" = gpu ]; then
    nvidia-smi -i "$GPU" --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 \
      >"$WORK/$1.smi" 2>/dev/null &
    echo $!
  fi
}
smi_stop() { # PID (may be empty)
  [ -n "$1" ] && { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
  return 0
}

# The time limit for one run of a configuration: what is left of the budget, at most 150 s
# (x SCALE); under MIN seconds it writes a "skipped" row for LABEL instead and fails.
run_limit() { # LABEL MIN
  local lim
  lim=$(left)
  [ "$lim" -gt $((150 * SCALE)) ] && lim=$((150 * SCALE))
  if [ "$lim" -lt "$2" ]; then
    echo "| $1 | skipped: no time left |" >>"$WORK/bench.rows"
    return 1
  fi
  echo "$lim"
}

# One generation; its JSON summary line goes to $WORK/TAG.json. Samples nvidia-smi's memory.used
# meanwhile (smi_start).
gen_run() { # TAG SIZE ITERS LIMIT [extra vqclip args...]
  local tag=$1 size=$2 iters=$3 limit=$4 smi rc
  shift 4
  smi=$(smi_start "$tag")
  echo "==== $tag: ${size}x${size}, $iters steps, cutn $CUTN $*" >>"$LOGS/bench.log"
  local t0
  t0=$(date +%s.%N)
  timeout -k 5 "$limit" "$BUILD/vqclip" -p "a red fox in the snow, artstation" \
    --vqgan "$VQ" --clip "$CL" --bpe "$FIX/clip/bpe_simple_vocab_16e6.txt.gz" \
    -s "$size" "$size" -i "$iters" --cutn "$CUTN" --seed 1 -se 0 --device "$DEVICE" \
    --json -q -o "$WORK/$tag.png" "$@" >"$WORK/$tag.out" 2>>"$LOGS/bench.log"
  rc=$?
  echo "$t0 $(date +%s.%N)" >"$WORK/$tag.wall"
  smi_stop "$smi"
  cat "$WORK/$tag.out" >>"$LOGS/bench.log"
  grep '"event":"done"' "$WORK/$tag.out" | tail -1 >"$WORK/$tag.json"
  echo "exit status $rc" >>"$LOGS/bench.log"
  return $rc
}

# Two runs per configuration (WARM steps, then WARM + STEPS): the difference of their step
# times is the steady rate, free of start-up, first-step warm-up and the final PNG write.
bench_config() { # LABEL SIZE [extra vqclip args...]
  local label=$1 size=$2 lim
  shift 2
  lim=$(run_limit "$label" 20) || return 1
  gen_run "${label}-warm" "$size" "$WARM" "$lim" "$@" || return 1
  lim=$(run_limit "$label" 1) || return 1
  gen_run "${label}-long" "$size" $((WARM + STEPS)) "$lim" "$@" || return 1
  python3 - "$WORK" "$label" "$size" "$CUTN" "$WARM" "$STEPS" "$MODE" >>"$WORK/bench.rows" <<'EOF'
import json, sys
work, label, size, cutn, warm, steps, mode = sys.argv[1:]
warm, steps = int(warm), int(steps)
def load(tag):
    with open(f"{work}/{label}-{tag}.json") as f:
        return json.loads(f.read())
a, b = load("warm"), load("long")
assert a["status"] == "ok" and b["status"] == "ok", "a run did not finish"
# Step time: from the first step to the end of the run (the final PNG write included).
ta = a["seconds"] - a["startup_seconds"]
tb = b["seconds"] - b["startup_seconds"]
# Start-up: the process's wall-clock time less its step time (exec, libtorch and CUDA start,
# model loading, prompt encoding, the initial z; and the exit).
w0, w1 = (float(x) for x in open(f"{work}/{label}-long.wall").read().split())
startup = (w1 - w0) - tb
steady = steps / (tb - ta) if tb > ta else float("nan")
overall = b["steps"] / tb
smi = "n/a"
if mode == "gpu":
    try:
        vals = [int(x) for x in open(f"{work}/{label}-long.smi").read().split() if x.isdigit()]
        smi = f"{max(vals)}" if vals else "n/a"
    except OSError:
        pass
alloc = b.get("peak_device_bytes")
alloc = f"{alloc / 2**20:.0f}" if isinstance(alloc, (int, float)) and alloc > 0 else "n/a"
# The planner's peak: the models on the device when the run began plus its step estimate.
plan = b.get("base_device_bytes", 0) + b.get("planned_step_bytes", 0)
plan = f"{plan / 2**20:.0f}" if plan > 0 else "n/a"
# A run that took low memory itself (the size did not fit without: auto_low_memory) says so.
if b.get("low_memory") and "lowmem" not in label:
    label += " (low memory chosen)"
print(f"| {label} | {size}x{size} | {cutn} | {b['steps']} | {steady:.2f} | {overall:.2f} | "
      f"{startup:.1f} | {smi} | {alloc} | {plan} |")
EOF
}

# The peer's loop (scripts/peer_baseline.py: generate.py's loop in plain PyTorch, float16 CLIP
# on CUDA as clip.load does) at the same size and cutn, one run of WARM + STEPS steps: its
# steady rate from the time stamps of its step events, its peak from the same nvidia-smi
# sampling and from torch.cuda.max_memory_allocated.
peer_config() { # LABEL SIZE
  local label=$1 size=$2 lim smi rc
  if [ "$MODE" != gpu ] || [ "$MOCK" = 1 ]; then
    # The peer builds the full-size architectures only: not with the tiny fixture models.
    echo "| $label | not run: the peer needs the full-size models |" >>"$WORK/bench.rows"
    return 0
  fi
  lim=$(run_limit "$label" 30) || return 1
  smi=$(smi_start "$label")
  echo "==== $label: peer_baseline.py ${size}x${size}, $((WARM + STEPS)) steps, cutn $CUTN" \
    >>"$LOGS/bench.log"
  local t0
  t0=$(date +%s.%N)
  timeout -k 5 "$lim" python3 \
    "$ROOT/scripts/peer_baseline.py" --vqgan "$VQ" --clip "$CL" \
    --bpe "$FIX/clip/bpe_simple_vocab_16e6.txt.gz" -p "a red fox in the snow, artstation" \
    -s "$size" "$size" --cutn "$CUTN" -i $((WARM + STEPS)) --seed 1 --device "$DEVICE" \
    -o "$WORK/$label.png" >"$WORK/$label.out" 2>>"$LOGS/bench.log"
  rc=$?
  echo "$t0 $(date +%s.%N)" >"$WORK/$label.wall"
  smi_stop "$smi"
  tail -3 "$WORK/$label.out" >>"$LOGS/bench.log"
  echo "exit status $rc" >>"$LOGS/bench.log"
  [ "$rc" -eq 0 ] || return 1
  python3 - "$WORK" "$label" "$size" "$CUTN" "$WARM" "$STEPS" "$MODE" >>"$WORK/bench.rows" <<'EOF2'
import json, sys
work, label, size, cutn, warm, steps, mode = sys.argv[1:]
warm, steps = int(warm), int(steps)
ev = [json.loads(l) for l in open(f"{work}/{label}.out") if l.startswith("{")]
t = {e["i"]: e["t"] for e in ev if e["event"] == "step"}
start = next(e["t"] for e in ev if e["event"] == "loop_start")
done = next(e for e in ev if e["event"] == "done")
assert len(t) == warm + steps, "the peer did not finish"
steady = steps / (t[warm + steps] - t[warm])
overall = (warm + steps) / (done["t"] - start)
w0, w1 = (float(x) for x in open(f"{work}/{label}.wall").read().split())
startup = (w1 - w0) - (done["t"] - start)
smi = "n/a"
if mode == "gpu":
    vals = [int(x) for x in open(f"{work}/{label}.smi").read().split() if x.isdigit()]
    smi = f"{max(vals)}" if vals else "n/a"
alloc = done.get("peak_device_bytes")
alloc = f"{alloc / 2**20:.0f}" if alloc else "n/a"
print(f"| {label} | {size}x{size} | {cutn} | {warm + steps} | {steady:.2f} | {overall:.2f} | "
      f"{startup:.1f} | {smi} | {alloc} | |")
EOF2
}

# Waits for the models written in the background (GPU mode) and records the models stage;
# fails when they are not there in time.
MODELS_OK=""
wait_models() {
  [ "$MODE" = gpu ] || return 0
  [ -n "$MODELS_OK" ] && return "$MODELS_OK"
  MODELS_OK=1
  while kill -0 "$MODELS_PID" 2>/dev/null && [ "$(left)" -gt 30 ]; do sleep 1; done
  if kill -0 "$MODELS_PID" 2>/dev/null; then
    pkill -TERM -P "$MODELS_PID" 2>/dev/null
    record models TIMEOUT "not written in time (see models.log)"
    return 1
  fi
  wait "$MODELS_PID"
  local mrc=$? when
  if [ "$mrc" -ne 0 ] || [ ! -s "$VQ" ] || [ ! -s "$CL" ]; then
    record models FAIL "status $mrc (see models.log)"
    return 1
  fi
  when=$(grep -o '[0-9]*s after the start' "$LOGS/models.log" || echo 'made earlier')
  record models PASS "$(du -sh "$WORK/models" | cut -f1); $when"
  MODELS_OK=0
}

# One --profile run of $PROFILE_STEPS steps (default 30): the stage table from its log goes to
# $LOGS/profile.txt.
profile_config() { # LABEL SIZE [extra vqclip args...]
  local label=$1 size=$2 lim steps=${PROFILE_STEPS:-30}
  shift 2
  lim=$(run_limit "$label" 20) || return 1
  gen_run "$label" "$size" "$steps" "$lim" --profile "$@" || return 1
  { echo "== $label: ${size}x${size}, cutn $CUTN, $steps steps $*"
    sed -n "/^==== $label:/,\$p" "$LOGS/bench.log" | grep "^vqclip: profile"; } >>"$LOGS/profile.txt"
}

# The profile's stages against the card's measured bfloat16 matrix rate and memory bandwidth,
# with each stage's FLOPs and least traffic (scripts/bench_stages.py): appended to profile.txt.
stage_table() { # SIZE
  local size=$1 dev=cuda lim
  [ "$MOCK" = 1 ] && dev=cpu
  lim=$(left)
  [ "$lim" -gt 60 ] && lim=60
  echo "==== stage table: rates and work at ${size}x${size} on $dev" >>"$LOGS/bench.log"
  timeout "$lim" python3 scripts/bench_stages.py rates --device "$dev" >"$WORK/rates.json" \
      2>>"$LOGS/bench.log" &&
    timeout "$lim" python3 scripts/bench_stages.py work --size "$size" --cutn "$CUTN" \
      --device "$dev" >"$WORK/work.json" 2>>"$LOGS/bench.log" &&
    { echo; python3 scripts/bench_stages.py table --profile "$LOGS/profile.txt" \
      --work "$WORK/work.json" --rates "$WORK/rates.json"; } >>"$LOGS/profile.txt" \
      2>>"$LOGS/bench.log"
}

# Two --deterministic runs of the same settings: are their PNGs byte-identical?
det_twice() { # LABEL SIZE
  local label=$1 size=$2 lim same=no
  lim=$(run_limit "$label" 30) || return 1
  gen_run "${label}-a" "$size" 20 "$lim" --deterministic || return 1
  lim=$(run_limit "$label" 1) || return 1
  gen_run "${label}-b" "$size" 20 "$lim" --deterministic || return 1
  cmp -s "$WORK/${label}-a.png" "$WORK/${label}-b.png" && same=yes
  echo "| $label | ${size}x${size} | $CUTN | 20 | two --deterministic runs, PNGs identical: $same |" \
    >>"$WORK/bench.rows"
  echo "deterministic PNGs identical: $same" >>"$LOGS/bench.log"
}

run_bench() {
  local t ok=0 big small=${SIZES%% *}
  t=$(date +%s)
  : >"$WORK/bench.rows"
  if ! wait_models; then
    record bench SKIP "no models"
    return 1
  fi
  for s in $SIZES; do
    bench_config "$s" "$s" || ok=1
  done
  # The peer at the largest size and the smallest (the ratios issue 17 asks for), then, time
  # allowing, in the order of what the issue needs most.
  peer_config "${s}-peer" "$s" || ok=1
  if [ "$small" != "$s" ]; then
    peer_config "${small}-peer" "$small" || ok=1
  fi
  if [ "$MODE" = gpu ]; then
    big=1024
    [ "$MOCK" = 1 ] && big=$((s * 2))
    if [ "$(left)" -gt 40 ]; then profile_config "${s}-profile" "$s" || ok=1; fi
    if [ "$(left)" -gt 60 ] && [ -s "$LOGS/profile.txt" ]; then
      stage_table "$s" || echo "stage table: failed (see above)" >>"$LOGS/bench.log"
    fi
    # Why the stages take what they take: the kernels and host operators of the default step
    # (VQCLIP_PROFILE_KERNELS, libtorch's profiler: shim_kernels.cpp), into profile.txt only
    if [ "$(left)" -gt 50 ]; then
      PROFILE_STEPS=12 VQCLIP_PROFILE_KERNELS=25 profile_config "${s}-kernels" "$s" || ok=1
    fi
    # The recorded CUDA graphs (the default) against plain launches (shim_graph.cpp)
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_CUDA_GRAPH=0 STEPS=30 bench_config "${s}-nograph" "$s" || ok=1
    fi
    # CLIP's attention as the reference's operators, not one fused kernel (attention.c)
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_SDPA=0 STEPS=30 bench_config "${s}-nosdpa" "$s" || ok=1
    fi
    # The decoder channels last (GroupNorm then composed; vqgan.c, lean_ops.h), its profile,
    # and GroupNorm's CUDA implementations on the NCHW decoder (the default is saved)
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_CHANNELS_LAST=1 STEPS=30 bench_config "${s}-cl" "$s" || ok=1
    fi
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_GROUPNORM=composed STEPS=30 bench_config "${s}-gn-composed" "$s" || ok=1
    fi
    if [ "$(left)" -gt 60 ]; then
      VQCLIP_CHANNELS_LAST=1 profile_config "${s}-cl-profile" "$s" || ok=1
    fi
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_GROUPNORM=reduce STEPS=30 bench_config "${s}-gn-reduce" "$s" || ok=1
    fi
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_GROUPNORM=native STEPS=30 bench_config "${s}-gn-native" "$s" || ok=1
    fi
    if [ "$(left)" -gt 60 ]; then STEPS=20 bench_config "$big" "$big" || ok=1; fi
    if [ "$(left)" -gt 50 ]; then
      STEPS=30 bench_config "${s}-mixed" "$s" --precision mixed || ok=1
    fi
    if [ "$(left)" -gt 50 ]; then
      STEPS=30 bench_config "${s}-exact" "$s" --precision exact || ok=1
    fi
    if [ "$(left)" -gt 40 ]; then det_twice "${s}-det" "$s" || ok=1; fi
    # A frame every step (-vid's load): written off the loop's thread (the CUDA default) and
    # in place (src/gen/writer.c)
    if [ "$(left)" -gt 60 ]; then
      STEPS=30 bench_config "${s}-frames" "$s" --save-frames "$WORK/frames-a" || ok=1
    fi
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_ASYNC_WRITES=0 STEPS=30 bench_config "${s}-frames-inplace" "$s" \
        --save-frames "$WORK/frames-b" || ok=1
    fi
    if [ "$(left)" -gt 60 ]; then
      WARM=2 STEPS=3 bench_config "$((big * 2))-lowmem" $((big * 2)) --low-memory || ok=1
    fi
    if [ "$(left)" -gt 60 ]; then
      WARM=2 STEPS=3 bench_config "$((big * 2))" $((big * 2)) || ok=1
    fi
    if [ "$(left)" -gt 50 ]; then
      STEPS=20 bench_config "${big}-lowmem" "$big" --low-memory || ok=1
    fi
    if [ "$(left)" -gt 40 ]; then
      STEPS=30 bench_config "${s}-lowmem" "$s" --low-memory || ok=1
    fi
    # The decoder's attention fused at this size too, below its default threshold (vqgan.h):
    # whether the threshold may come down
    if [ "$(left)" -gt 50 ]; then
      VQCLIP_SDPA=all STEPS=30 bench_config "${s}-sdpa-all" "$s" || ok=1
    fi
  fi
  t=$(($(date +%s) - t))
  if [ "$ok" -eq 0 ] && [ -s "$WORK/$s-long.png" ]; then
    record bench PASS "${t}s"
  else
    record bench FAIL "after ${t}s (see bench.log)"
  fi
  return $ok
}

# ---- run ------------------------------------------------------------------------------------

echo "gpu-check: $MODE mode, budget ${BUDGET}s, logs in $LOGS"
stage env 60 "$LOGS/env.log" st_env

if [ "$MODE" = gpu ]; then
  VQ=$WORK/models/vqgan_f16_16384_random.ckpt
  CL=$WORK/models/ViT-B-32_random.pt
  if [ -s "$VQ" ] && [ -s "$CL" ]; then
    echo "models already in $WORK/models" >"$LOGS/models.log"
    true &
    MODELS_PID=$!
  else
    mkdir -p "$WORK/models"
    (
      timeout -k 5 240 python3 scripts/make-bench-models.py "$WORK/models"
      rc=$?
      echo "models: status $rc, $(($(date +%s) - T0))s after the start"
      exit $rc
    ) >"$LOGS/models.log" 2>&1 &
    MODELS_PID=$!
  fi
else
  VQ=$FIX/vqgan/tiny_vq.ckpt
  CL=$FIX/clip/tiny_vit.pt
fi

if stage configure 150 "$LOGS/build.log" st_configure &&
   stage build 300 "$LOGS/build.log" st_build; then
  # The figures before the CPU suite: it only gets the time that is left.
  if wait_models; then
    stage gpu-tests 240 "$LOGS/tests.log" st_gpu_tests
  else
    record gpu-tests SKIP "no models"
  fi
  run_bench
  if [ "${GPU_CHECK_CPU_TESTS:-1}" = 1 ]; then
    stage cpu-tests 200 "$LOGS/tests.log" st_cpu_tests
  fi
else
  record gpu-tests SKIP "no build"
  record bench SKIP "no build"
  record cpu-tests SKIP "no build"
fi
if [ "$MODE" = gpu ] && kill -0 "$MODELS_PID" 2>/dev/null; then
  pkill -TERM -P "$MODELS_PID" 2>/dev/null
fi

# ---- report ---------------------------------------------------------------------------------

{
  echo "## vqclip benchmark, $(date -u +%Y-%m-%d)"
  echo
  if [ "$MODE" = gpu ]; then
    echo "Card: $(nvidia-smi -i "$GPU" --query-gpu=name,memory.total,driver_version \
                  --format=csv,noheader 2>/dev/null)."
    echo "libtorch: $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)."
    echo "Models: full-size random weights (vqgan_imagenet_f16_16384 architecture, ViT-B/32)."
    graphs=$(grep -ho 'vqclip: CUDA graphs: [^(]*\|built without CUDA graphs' "$LOGS/build.log" \
             2>/dev/null | head -1)
    tables=$(grep -ho 'operator and kernel tables (VQCLIP_PROFILE_KERNELS): [a-z]*' \
             "$LOGS/build.log" 2>/dev/null | head -1)
    echo "Build: ${graphs:-CUDA graphs not checked (not a CUDA build?)};" \
         "${tables:-kernel tables not checked}."
  else
    echo "DRY RUN on the CPU with the tiny fixtures: these numbers are not benchmarks."
  fi
  echo "- steps/s steady: $STEPS steps / (step time of a $((WARM + STEPS))-step run - that of a" \
       "$WARM-step run)"
  echo "- steps/s overall: steps / step time of the long run (first step and final write included)"
  echo "- start-up: the long run's wall-clock time less its step time (process start, model"
  echo "  loading, prompt encoding, initial z, exit)"
  echo "- peak: the largest nvidia-smi memory.used during the long run (MiB, the whole process with"
  echo "  its CUDA context); the caching allocator's peak where the JSON summary reports it"
  echo
  echo "- planned: the memory planner's peak (models on the device + its step estimate)"
  echo "- the default precision is fast (bfloat16 decoder, float16 CLIP)"
  echo
  printf '| run | size | cutn | steps | steps/s steady | steps/s overall | start-up s |'
  printf ' peak MiB (nvidia-smi) | peak MiB (allocator) | planned MiB |\n'
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  cat "$WORK/bench.rows" 2>/dev/null
  if [ -s "$LOGS/profile.txt" ]; then
    echo
    echo '```'
    grep -v "profile: kernels: " "$LOGS/profile.txt"
    echo '```'
    if grep -q "profile: kernels: " "$LOGS/profile.txt"; then
      echo "(the kernel tables of the ${SIZES##* }-kernels run: profile.txt)"
    fi
  fi
} >"$LOGS/bench.md"

status=0
for i in "${!STAGES[@]}"; do
  [ "${RESULTS[$i]}" = PASS ] && continue
  status=1
  case ${STAGES[$i]} in
    env) f=env.log ;; configure|build) f=build.log ;; gpu-tests|cpu-tests) f=tests.log ;;
    models) f=models.log ;; *) f=bench.log ;;
  esac
  echo
  echo "---- last lines of $f (${STAGES[$i]} ${RESULTS[$i]})"
  tail -n 25 "$LOGS/$f"
done

{
  echo
  cat "$LOGS/bench.md"
  echo
  echo "==== gpu-check summary ($MODE mode, $(($(date +%s) - T0))s of ${BUDGET}s)"
  for i in "${!STAGES[@]}"; do
    printf '%-10s %-7s %s\n' "${STAGES[$i]}" "${RESULTS[$i]}" "${NOTES[$i]}"
  done
  # The fail-safes (fused attention's checks, the recorded graphs) fall back with a warning and
  # the run goes on: the figures would then measure the slower path without saying so here. So
  # does a developer switch whose value it does not know: that row measures the default.
  fallbacks=$(cat "$LOGS/tests.log" "$LOGS/bench.log" 2>/dev/null |
    grep -E "runs unfused|runs without CUDA graphs|is not one of .*: ignored|is not a whole number from" |
    sort | uniq -c | head -8)
  if [ -n "$fallbacks" ]; then
    echo "fallbacks (count, warning):"
    echo "$fallbacks"
  else
    echo "fallbacks: none (fused attention, recorded graphs and switches as asked)"
  fi
  # Operators without a deterministic version that --deterministic left on the device (libtorch
  # names them in warn-only mode): what keeps two runs' pictures from being identical.
  nondet=$(cat "$LOGS/tests.log" "$LOGS/bench.log" 2>/dev/null |
    sed -n 's/.*libtorch: \([A-Za-z0-9_]*\) does not have a deterministic implementation.*/\1/p' |
    sort -u | tr '\n' ' ')
  if [ -n "$nondet" ]; then echo "nondeterministic operators left: $nondet"; fi
  # The doctor's CUDA device lines (from the gpu-tests stage)
  sed -n '/^==== vqclip doctor/,/^vqclip can\|^vqclip cannot/p' "$LOGS/tests.log" 2>/dev/null |
    grep -E "cuda:[0-9]+: |CUDA graphs: |cannot run" | sed 's/^ *\(devices\)\? */doctor: /'
  # How busy the device was in the kernel-table run (host-bound when far below the span)
  grep -h "profile: kernels: device:" "$LOGS/profile.txt" 2>/dev/null | head -1 |
    sed 's/^vqclip: profile: kernels: /kernel table: /'
  if [ "$status" -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
} | tee "$LOGS/summary.txt"
exit "$status"

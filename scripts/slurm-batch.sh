#!/usr/bin/env bash
# slurm-batch.sh: runs a vqclip batch file as a Slurm job array, one shard per array task.
#
#   scripts/slurm-batch.sh [options] PROMPTS_FILE [vqclip options...]
#
# Task I of N runs `vqclip --batch PROMPTS_FILE --shard I/N [vqclip options...]`, so that the N
# tasks together make every job of the file exactly once, each loading the models once. Pass
# vqclip's options after the file, e.g. -o 'out/{index:04}-{slug}-{seed}.png' --skip-existing
# (re-submitting with --skip-existing finishes a cancelled array). Prints the job id on stdout.
#
# Contract: nothing is submitted unless the file, the vqclip binary and sbatch are there; the
# task command line is quoted so that any option value survives; each task runs with --threads
# set to the CPUs Slurm gave it (unless you pass --threads). Exit status: 0 submitted (with
# --wait: every task succeeded), 1 bad usage, 2 the submission failed, else with --wait the
# highest exit status of the tasks (vqclip's: 1 usage, 2 input, 3 runtime, ...).
set -euo pipefail

prog=slurm-batch

usage() {
  cat <<'EOF'
usage: slurm-batch.sh [options] PROMPTS_FILE [vqclip options...]

Submits a Slurm job array whose task I of N runs
  vqclip --batch PROMPTS_FILE --shard I/N [vqclip options...]
and prints the job id.

  --tasks N          array size (default: the number of jobs in the file, at most 4)
  --partition P      Slurm partition
  --time T           time limit of each task (sbatch --time, e.g. 2:00:00)
  --gpus N           GPUs per task (--gres=gpu:N)
  --cpus N           CPUs per task (--cpus-per-task)
  --mem M            memory per task (sbatch --mem, e.g. 16G)
  --max-running M    at most M tasks at once (--array=0-N%M)
  --job-name NAME    default: vqclip
  --log-dir DIR      task logs DIR/vqclip-JOBID_TASK.log (default: the current folder)
  --vqclip PATH      the vqclip binary (default: $VQCLIP_BIN, vqclip in PATH, ./build/vqclip)
  --sbatch-arg ARG   pass ARG to sbatch (repeatable), e.g. --sbatch-arg=--account=proj
  --wait             wait until the array ends; exit with its highest task exit status
  --dry-run          print the sbatch command and the task script; submit nothing
  -h, --help         this help

Example:
  slurm-batch.sh --tasks 8 --partition gpu --gpus 1 prompts.txt \
      -o 'out/{index:04}-{slug}-{seed}.png' --skip-existing
EOF
}

die() { echo "$prog: error: $2" >&2; exit "$1"; }

posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die 1 "$1 needs a positive integer, not '$2'"; }

tasks='' partition='' time_limit='' gpus='' cpus='' mem='' max_running='' job_name=vqclip log_dir=''
vqclip=${VQCLIP_BIN:-} wait=0 dry_run=0
sbatch_args=()

# Options of this script come first; the first other word is PROMPTS_FILE.
while [ $# -gt 0 ]; do
  opt=$1 val=''
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
  esac
  case $opt in
    --tasks | --partition | --time | --gpus | --cpus | --mem | --max-running | --job-name | \
      --log-dir | --vqclip | --sbatch-arg)
      if [ -z "$val" ]; then
        [ $# -ge 2 ] || die 1 "$opt needs a value"
        val=$2
        shift
      fi ;;
  esac
  case $opt in
    -h | --help) usage; exit 0 ;;
    --tasks) posint "$opt" "$val"; tasks=$val ;;
    --partition) partition=$val ;;
    --time) time_limit=$val ;;
    --gpus) posint "$opt" "$val"; gpus=$val ;;
    --cpus) posint "$opt" "$val"; cpus=$val ;;
    --mem) mem=$val ;;
    --max-running) posint "$opt" "$val"; max_running=$val ;;
    --job-name) job_name=$val ;;
    --log-dir) log_dir=$val ;;
    --vqclip) vqclip=$val ;;
    --sbatch-arg) sbatch_args+=("$val") ;;
    --wait) wait=1 ;;
    --dry-run) dry_run=1 ;;
    --) shift; break ;;
    -*) die 1 "unknown option '$1' (options of vqclip go after PROMPTS_FILE; see --help)" ;;
    *) break ;;
  esac
  shift
done
[ $# -ge 1 ] || { usage >&2; exit 1; }
prompts=$1
shift
vqclip_args=("$@")

# ---- checks, before anything is submitted ----------------------------------------------------

[ "$prompts" != - ] || die 1 "the prompts must be a file that every node can read, not stdin"
if [ ! -f "$prompts" ] || [ ! -r "$prompts" ]; then
  die 1 "cannot read prompts file '$prompts'"
fi
prompts=$(cd "$(dirname "$prompts")" && pwd)/$(basename "$prompts")
jobs=$(grep -cv '^[[:space:]]*\(#\|$\)' "$prompts" || true)
[ "$jobs" -gt 0 ] || die 1 "$prompts holds no jobs (only blank or # lines)"
for a in "${vqclip_args[@]}"; do
  case $a in
    --batch | --batch=* | -batch | --shard | --shard=* | -shard)
      die 1 "do not pass $a: the script sets --batch and --shard for each task" ;;
  esac
done

if [ -z "$tasks" ]; then
  tasks=$((jobs < 4 ? jobs : 4))
elif [ "$tasks" -gt "$jobs" ]; then
  echo "$prog: note: $jobs jobs: using $jobs tasks, not $tasks" >&2
  tasks=$jobs
fi

if [ -z "$vqclip" ]; then
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  vqclip=$(command -v vqclip || true)
  [ -n "$vqclip" ] || [ ! -x "$here/../build/vqclip" ] || vqclip=$here/../build/vqclip
fi
[ -n "$vqclip" ] || die 1 "vqclip not found: pass --vqclip PATH or set VQCLIP_BIN"
[ -x "$vqclip" ] || die 1 "'$vqclip' is not an executable"
vqclip=$(cd "$(dirname "$vqclip")" && pwd)/$(basename "$vqclip")

if [ -n "$log_dir" ]; then
  mkdir -p -- "$log_dir" || die 2 "cannot create $log_dir"
  log_dir=$(cd "$log_dir" && pwd)
else
  log_dir=$PWD
fi

# ---- the task script ---------------------------------------------------------------------------

threads_given=0
for a in "${vqclip_args[@]}"; do
  case $a in --threads | --threads=* | -threads) threads_given=1 ;; esac
done

# printf %q quotes each word for bash, so values with spaces or quotes arrive intact.
script="#!/bin/bash
# vqclip job array task, written by $prog
set -u
shard=\"\${SLURM_ARRAY_TASK_ID:?not a job array task}/\${SLURM_ARRAY_TASK_COUNT:-$tasks}\"
"
if [ "$threads_given" = 0 ]; then
  script+="threads=\${SLURM_CPUS_PER_TASK:-\$(nproc)}
"
  # shellcheck disable=SC2016 # "$threads" is expanded by the task, not here
  threads_arg=' --threads "$threads"'
else
  threads_arg=
fi
script+="exec $(printf '%q' "$vqclip") --batch $(printf '%q' "$prompts") --shard \"\$shard\"$threads_arg"
for a in "${vqclip_args[@]}"; do
  script+=" $(printf '%q' "$a")"
done
script+="
"

array="0-$((tasks - 1))"
[ -z "$max_running" ] || array+="%$max_running"
cmd=(sbatch --parsable --array="$array" --job-name="$job_name" --chdir="$PWD"
  --output="$log_dir/vqclip-%A_%a.log")
[ -z "$partition" ] || cmd+=(--partition="$partition")
[ -z "$time_limit" ] || cmd+=(--time="$time_limit")
[ -z "$gpus" ] || cmd+=(--gres="gpu:$gpus")
[ -z "$cpus" ] || cmd+=(--cpus-per-task="$cpus")
[ -z "$mem" ] || cmd+=(--mem="$mem")
[ "$wait" = 0 ] || cmd+=(--wait)
cmd+=("${sbatch_args[@]}")

if [ "$dry_run" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  printf '<<EOF\n%sEOF\n' "$script"
  exit 0
fi

command -v sbatch >/dev/null || die 2 "sbatch not found: is this a Slurm login node?"
echo "$prog: $jobs jobs from $prompts over $tasks tasks; logs in $log_dir" >&2
# The id goes to stdout as soon as sbatch prints it (with --wait, long before sbatch returns).
exec 3>&1
status=0
jobid=$(printf '%s' "$script" | "${cmd[@]}" | {
  IFS= read -r line || true
  id=${line%%;*}
  if [[ $id =~ ^[0-9]+$ ]]; then echo "$id" >&3; fi
  echo "$line"
  cat
}) || status=$?
[[ ${jobid%%;*} =~ ^[0-9]+$ ]] || die 2 "sbatch failed (exit $status)${jobid:+: $jobid}"
exit "$status"

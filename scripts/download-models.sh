#!/usr/bin/env bash
# download-models.sh: fetches the VQGAN and CLIP files vqclip uses from their original hosts.
#
#   scripts/download-models.sh [--dir DIR] NAME...     download (resumable, verified)
#   scripts/download-models.sh --list [--dir DIR]      every known name, size, what is there
#
# NAME is a model name from the table (vqgan_imagenet_f16_16384, ViT-B/32, bpe, ...), or one of
# its file names with or without extension (ViT-B-32, vqgan_imagenet_f16_16384.yaml).
# The table is models/urls.tsv beside this script (or $VQCLIP_URLS): name, file, url, sha256,
# size, TAB-separated, '-' for an unknown checksum or size.
#
# Contract:
#   - files go to DIR (default $VQCLIP_MODELS, else ~/.cache/vqclip), created when missing;
#   - each file is downloaded to FILE.part and renamed to FILE only after its size and SHA-256
#     (where the table knows them) match, so FILE is never a truncated or wrong download;
#   - an interrupted download resumes from FILE.part (curl -C -); a FILE.part that fails the
#     checks is deleted, so the next run starts over instead of resuming garbage;
#   - a FILE already in DIR that passes the checks is kept; one that fails them is reported,
#     not overwritten;
#   - downloads into one DIR are serialised (flock), so parallel jobs can call this safely.
# Exit status: 0 all files present and verified, 1 bad usage or unknown name, 2 a download or
# a check failed (the other names are still fetched).
set -euo pipefail

prog=download-models
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<EOF
usage: $prog [--dir DIR] NAME...
       $prog --list [--dir DIR]

Downloads vqclip's model files (VQGAN checkpoints and configs, OpenAI CLIP models, the BPE
vocabulary) from their original hosts into DIR, resuming partial downloads and checking sizes
and SHA-256 checksums where they are known.

  --dir DIR    destination (default: \$VQCLIP_MODELS, else ~/.cache/vqclip)
  --list       list the known names with sizes and what DIR already holds
  -h, --help   this help

Environment: VQCLIP_MODELS (default DIR), VQCLIP_URLS (URL table; default models/urls.tsv).
Exit status: 0 ok, 1 bad usage or unknown name, 2 a download or check failed.
EOF
}

die() { # die STATUS MESSAGE: one clear line on stderr, then exit
  echo "$prog: error: $2" >&2
  exit "$1"
}
err() { echo "$prog: error: $*" >&2; }
note() { echo "$prog: $*" >&2; }

# ---- the URL table ---------------------------------------------------------------------------

table=${VQCLIP_URLS:-}
if [ -z "$table" ]; then
  for t in "$here/../models/urls.tsv" "$here/urls.tsv" "$here/../share/vqclip/models/urls.tsv"; do
    [ -f "$t" ] && table=$t && break
  done
fi
if [ -z "$table" ] || [ ! -r "$table" ]; then
  die 2 "URL table ${table:-models/urls.tsv} not found or unreadable (set VQCLIP_URLS)"
fi

names=() files=() urls=() shas=() sizes=()
load_table() {
  local line n=0 name file url sha size extra
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in '#'* | '') continue ;; esac
    IFS=$'\t' read -r name file url sha size extra <<<"$line"
    if [ -z "$size" ] || [ -n "$extra" ] || [[ $file == */* ]] || [[ $file == .* ]] ||
      ! [[ $sha == - || $sha =~ ^[0-9a-f]{64}$ ]] || ! [[ $size == - || $size =~ ^[0-9]+$ ]]; then
      die 2 "$table:$n: expected 'name<TAB>file<TAB>url<TAB>sha256|-<TAB>size|-'"
    fi
    names+=("$name") files+=("$file") urls+=("$url") shas+=("$sha") sizes+=("$size")
  done <"$table"
}

# matches NAME INDEX: does command-line NAME select table row INDEX?
matches() {
  local arg=$1 i=$2 file=${files[$2]}
  local stem=${file%.txt.gz}
  stem=${stem%.*}
  [ "$arg" = "${names[$i]}" ] || [ "$arg" = "$file" ] || [ "$arg" = "$stem" ] ||
    [ "$arg" = "${names[$i]//\//-}" ]
}

# ---- checks ----------------------------------------------------------------------------------

file_size() { stat -c %s -- "$1" 2>/dev/null || wc -c <"$1"; }

sha256_of() {
  if command -v sha256sum >/dev/null; then
    sha256sum -- "$1" | cut -d' ' -f1
  else
    shasum -a 256 -- "$1" | cut -d' ' -f1
  fi
}

human() { # bytes -> "980.1 MB" (decimal units, as hosts quote them); "-" -> "?"
  case $1 in
    -) echo "?" ;;
    *) awk -v b="$1" 'BEGIN { split("B kB MB GB TB", u); i = 1;
         while (b >= 1000 && i < 5) { b /= 1000; i++ } printf(i == 1 ? "%d %s" : "%.1f %s", b, u[i]) }' ;;
  esac
}

# verify PATH INDEX: 0 when PATH has the table's size and checksum (those known); else prints
# why on stderr and returns 1.
verify() {
  local path=$1 i=$2 got
  got=$(file_size "$path")
  if [ "$got" -eq 0 ]; then
    err "${files[$i]}: the download is empty"
    return 1
  fi
  if [ "${sizes[$i]}" != - ] && [ "$got" != "${sizes[$i]}" ]; then
    err "${files[$i]}: size $got bytes, expected ${sizes[$i]}"
    return 1
  fi
  if head -c 256 -- "$path" | LC_ALL=C tr -d '\000\r\n\t ' | LC_ALL=C grep -qiE '^<(!doctype|html)'; then
    err "${files[$i]}: the host sent an HTML page, not the file (moved or rate-limited? see ${urls[$i]})"
    return 1
  fi
  if [ "${shas[$i]}" != - ]; then
    got=$(sha256_of "$path")
    if [ "$got" != "${shas[$i]}" ]; then
      err "${files[$i]}: SHA-256 mismatch: got $got, expected ${shas[$i]}"
      return 1
    fi
  fi
  return 0
}

# ---- download --------------------------------------------------------------------------------

# curl_to PART URL RESUME: downloads URL into PART (appending when RESUME=1); prints the HTTP
# status on stdout; returns curl's exit status.
curl_to() {
  local part=$1 url=$2 resume=$3 progress=(--silent --show-error) opts=()
  [ -t 2 ] && progress=(--progress-bar)
  [ "$resume" = 1 ] && opts=(--continue-at -)
  curl --fail --location --connect-timeout "${VQCLIP_CONNECT_TIMEOUT:-30}" --retry 3 \
    --retry-delay 2 --speed-limit 1024 --speed-time 120 "${progress[@]}" "${opts[@]}" \
    --write-out '%{http_code}' --output "$part" -- "$url"
}

# fetch INDEX: makes DIR/FILE of table row INDEX present and verified. Returns 0 or 1.
fetch() {
  local i=$1 file=${files[$1]} url=${urls[$1]} size=${sizes[$1]}
  local dest="$dir/$file" part="$dir/$file.part" code rc=0 have
  if [ -e "$dest" ]; then
    if verify "$dest" "$i"; then
      note "$file: already in $dir"
      return 0
    fi
    err "$dest does not match the table (see above); remove it and run again"
    return 1
  fi
  have=0
  [ -f "$part" ] && have=$(file_size "$part")
  if [ "$size" != - ] && [ "$have" -gt "$size" ]; then
    rm -f -- "$part" && have=0
  fi
  if [ "$size" = - ] || [ "$have" -lt "$size" ]; then
    if [ "$have" -gt 0 ]; then
      note "$file: resuming at $(human "$have") of $(human "$size") from $url"
    else
      note "$file: downloading $(human "$size") from $url"
    fi
    code=$(curl_to "$part" "$url" 1) || rc=$?
    if [ "$rc" -eq 33 ] || [ "$rc" -eq 36 ]; then # the server cannot resume: start over
      note "$file: the server cannot resume; downloading from the start"
      rm -f -- "$part"
      rc=0
      code=$(curl_to "$part" "$url" 0) || rc=$?
    fi
    if [ "$rc" -ne 0 ] && ! { [ "$code" = 416 ] && [ "$have" -gt 0 ]; }; then
      # 416 on resume: PART already holds the whole file; the checks below decide.
      err "$file: download failed (curl exit $rc, HTTP ${code:-none}) from $url;" \
        "$( [ -s "$part" ] && echo "run again to resume" || echo "is the host up?")"
      return 1
    fi
  fi
  if ! verify "$part" "$i"; then
    rm -f -- "$part"
    err "$file: removed the bad download; nothing was installed"
    return 1
  fi
  mv -f -- "$part" "$dest"
  note "$file: ok ($(human "$(file_size "$dest")"))"
}

# ---- commands --------------------------------------------------------------------------------

list() {
  local i status check
  printf '%-26s %-31s %10s  %-6s %s\n' NAME FILE SIZE CHECK "IN $dir"
  for i in "${!names[@]}"; do
    status=
    if [ -f "$dir/${files[$i]}" ]; then
      status=present
    elif [ -f "$dir/${files[$i]}.part" ]; then
      status="partial ($(human "$(file_size "$dir/${files[$i]}.part")"))"
    fi
    check=none
    [ "${sizes[$i]}" = - ] || check=size
    [ "${shas[$i]}" = - ] || check=sha256
    printf '%-26s %-31s %10s  %-6s %s\n' "${names[$i]}" "${files[$i]}" "$(human "${sizes[$i]}")" \
      "$check" "$status"
  done
}

dir=${VQCLIP_MODELS:-${HOME:-}/.cache/vqclip}
do_list=0
wanted=()
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --list) do_list=1 ;;
    --dir) [ $# -ge 2 ] || die 1 "--dir needs a value"; dir=$2; shift ;;
    --dir=*) dir=${1#--dir=} ;;
    --) shift; wanted+=("$@"); break ;;
    -*) die 1 "unknown option '$1' (see $prog --help)" ;;
    *) wanted+=("$1") ;;
  esac
  shift
done
[ -n "$dir" ] || die 1 "no destination: pass --dir DIR or set VQCLIP_MODELS"

load_table
if [ "$do_list" = 1 ]; then
  list
  exit 0
fi
[ ${#wanted[@]} -gt 0 ] || { usage >&2; exit 1; }

# Resolve every name before downloading anything, so a typo costs nothing.
rows=()
for w in "${wanted[@]}"; do
  found=0
  for i in "${!names[@]}"; do
    if matches "$w" "$i"; then
      found=1
      [[ " ${rows[*]-} " == *" $i "* ]] || rows+=("$i")
    fi
  done
  [ "$found" = 1 ] || die 1 "unknown model '$w' (see $prog --list)"
done

command -v curl >/dev/null || die 2 "curl is needed (apt-get install curl)"
mkdir -p -- "$dir" 2>/dev/null || die 2 "cannot create $dir"
[ -w "$dir" ] || die 2 "$dir is not writable"

# One download at a time per directory: parallel callers wait here.
if command -v flock >/dev/null; then
  exec 9>>"$dir/.download.lock"
  if ! flock -n 9; then
    note "waiting for another download into $dir"
    flock 9
  fi
fi

failed=0
for i in "${rows[@]}"; do
  fetch "$i" || failed=1
done
[ "$failed" = 0 ] || exit 2

#!/usr/bin/env bash
# Prepares .carry/: what the lent GPU machine (no apt, no network) lacks to build and test
# vqclip, copied from this machine's Debian packages, for the device tool's `carry`.
#
#   scripts/gpu-carry.sh [--fixtures DIR | --no-fixtures | --gpu-fixtures-only] [--download]
#
# Layout (relocatable: the .pc files find their prefix through ${pcfiledir}):
#   .carry/include/   stb/stb_image.h and stb_image_write.h, cjson/cJSON.h, utf8proc.h, zlib.h,
#                     zconf.h
#   .carry/lib/       libstb.so(.0), libcjson.so(.1), libutf8proc.so(.2), pkgconfig/*.pc
#   .carry/pkgconf/   pkgconf and libpkgconf.so.3, used only where the machine has no
#                     pkg-config (bin/pkg-config there is a wrapper)
#   .carry/fixtures/  the reference fixtures (../shared does not travel to the device); with
#                     --gpu-fixtures-only those the GPU tests read, files over 1 MiB as .xz
#                     (gpu-check.sh unpacks them)
#   .carry/MANIFEST   package versions, file list and sizes
# zlib's library is NOT carried: gpu-check.sh links the machine's own libz.so.1 (a Debian 12
# libz beside Ubuntu's could shadow a newer one that other libraries need).
#
# Packages are taken from this machine when installed, else (or with --download) fetched with
# `apt-get download` and unpacked in a temporary folder.
# Exits non-zero when a package cannot be had or the tree that would travel exceeds 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.carry
FIXTURES="${VQCLIP_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
FIXMODE=all
DOWNLOAD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fixtures) FIXTURES="$2"; shift 2 ;;
    --no-fixtures) FIXMODE=none; shift ;;
    --gpu-fixtures-only) FIXMODE=gpu; shift ;;
    --download) DOWNLOAD=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu-carry: unknown argument '$1'" >&2; exit 1 ;;
  esac
done

PKGS=(libstb-dev libstb0 libcjson-dev libcjson1 libutf8proc-dev libutf8proc2 zlib1g-dev
      pkgconf-bin libpkgconf3)
STAGE=$(mktemp -d)
chmod 0777 "$STAGE" # apt-get download drops to the _apt user
trap 'rm -rf "$STAGE"' EXIT

# ---- gather: one root per package (/ when installed, an extracted .deb otherwise) ---------

declare -A ROOT
for p in "${PKGS[@]}"; do
  if [ "$DOWNLOAD" = 0 ] &&
     dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    ROOT[$p]=/
  else
    echo "gpu-carry: fetching $p with apt-get download" >&2
    (cd "$STAGE" && apt-get download -q "$p" >/dev/null) ||
      { echo "gpu-carry: cannot get $p (run apt-get update, or scripts/setup.sh)" >&2; exit 1; }
    mkdir -p "$STAGE/$p"
    dpkg-deb -x "$STAGE"/"${p}"_*.deb "$STAGE/$p"
    ROOT[$p]="$STAGE/$p"
  fi
done

# A package's file (path as installed) inside its root, links followed.
pkgfile() { # PKG PATH
  local f="${ROOT[$1]%/}$2"
  [ -e "$f" ] || { echo "gpu-carry: $1 has no $2" >&2; exit 1; }
  printf '%s\n' "$f"
}

# The one file of PKG whose installed path matches the glob-free suffix pattern PAT (grep -E).
pkgfind() { # PKG PATTERN
  local hit
  if [ "${ROOT[$1]}" = / ]; then
    hit=$(dpkg -L "$1" | grep -E "$2" | head -1)
  else
    hit=$(cd "${ROOT[$1]}" && find . \( -type f -o -type l \) | sed 's|^\.||' |
          grep -E "$2" | head -1)
  fi
  [ -n "$hit" ] || { echo "gpu-carry: $1 has no file matching $2" >&2; exit 1; }
  pkgfile "$1" "$hit"
}

rm -rf "$DEST"
mkdir -p "$DEST/include/stb" "$DEST/include/cjson" "$DEST/lib/pkgconfig" "$DEST/pkgconf/bin" \
         "$DEST/pkgconf/lib"

# ---- headers -----------------------------------------------------------------------------

stb_h=$(pkgfind libstb-dev '/include/stb/stb_image\.h$')
# the two the build includes (the others are 1.4 MiB the 64 MiB limit needs)
cp -L "$stb_h" "$(dirname "$stb_h")/stb_image_write.h" "$DEST/include/stb/"
cp -L "$(pkgfind libcjson-dev '/include/cjson/cJSON\.h$')" "$DEST/include/cjson/"
cp -L "$(pkgfind libutf8proc-dev '/include/utf8proc\.h$')" "$DEST/include/"
cp -L "$(pkgfind zlib1g-dev '/include/zlib\.h$')" "$DEST/include/"
cp -L "$(pkgfind zlib1g-dev '/include/zconf\.h$')" "$DEST/include/"

# ---- shared libraries: the real file under the link name and the soname ------------------

carry_lib() { # RUNTIME_PKG SONAME
  local so
  so=$(pkgfind "$1" "/$2(\\.[0-9.]+)?\$")
  cp -L "$so" "$DEST/lib/$2"
  cp -L "$so" "$DEST/lib/${2%%.so*}.so"
}
carry_lib libstb0 libstb.so.0
carry_lib libcjson1 libcjson.so.1
carry_lib libutf8proc2 libutf8proc.so.2

# ---- pkg-config files, prefix rewritten to the folder they sit in -----------------------

rewrite_pc() { # DEV_PKG NAME.pc [SUBDIR_OF_INCLUDE]
  local src out="$DEST/lib/pkgconfig/$2"
  src=$(pkgfind "$1" "/pkgconfig/$2\$")
  {
    printf 'prefix=${pcfiledir}/../..\nexec_prefix=${prefix}\nlibdir=${prefix}/lib\n'
    printf 'sharedlibdir=${prefix}/lib\nincludedir=${prefix}/include%s\n' "${3:+/$3}"
    grep -vE '^(prefix|exec_prefix|libdir|sharedlibdir|includedir)=' "$src"
  } >"$out"
}
rewrite_pc libcjson-dev libcjson.pc
rewrite_pc libutf8proc-dev libutf8proc.pc
rewrite_pc libstb-dev stb.pc stb

# ---- pkgconf, for a machine without pkg-config -------------------------------------------

cp -L "$(pkgfind pkgconf-bin '/bin/pkgconf$')" "$DEST/pkgconf/bin/pkgconf"
cp -L "$(pkgfind libpkgconf3 '/libpkgconf\.so\.3(\.[0-9.]+)?$')" "$DEST/pkgconf/lib/libpkgconf.so.3"
cat >"$DEST/pkgconf/bin/pkg-config" <<'EOF'
#!/bin/sh
# pkg-config for a machine without one: the carried pkgconf with its carried library.
here=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$here/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/pkgconf" "$@"
EOF
chmod +x "$DEST/pkgconf/bin/pkg-config" "$DEST/pkgconf/bin/pkgconf"

# ---- fixtures ----------------------------------------------------------------------------

# What the GPU tests read (test-gpu-agreement: every fixture model kind; test-gpu-esrgan: esrgan/;
# test-gpu-precision and test-gpu-memory: tiny_vq, tiny_vit and the vocabulary).
GPU_FIXTURES=(clip/bpe_simple_vocab_16e6.txt.gz clip/tiny_vit.pt clip/tiny_vit_ref.safetensors
              clip/tiny_rn.pt clip/tiny_rn_ref.safetensors vqgan/tiny_vq.ckpt vqgan/tiny_vq.yaml
              vqgan/tiny_vq_ref.safetensors vqgan/tiny_gumbel.ckpt vqgan/tiny_gumbel.yaml
              vqgan/tiny_gumbel_ref.safetensors vqgan/tiny_vq_legacy.ckpt
              vqgan/tiny_vq_legacy.yaml vqgan/tiny_vq_legacy_ref.safetensors
              vqgan/tiny_transformer.ckpt vqgan/tiny_transformer.yaml
              vqgan/tiny_transformer_ref.safetensors loop/loop_pooling.safetensors)
if [ "$FIXMODE" != none ]; then
  [ -d "$FIXTURES" ] || { echo "gpu-carry: no fixtures at $FIXTURES (--fixtures DIR)" >&2; exit 1; }
  if [ "$FIXMODE" = all ]; then
    mkdir -p "$DEST/fixtures"
    cp -rL "$FIXTURES"/. "$DEST/fixtures/"
  else
    for f in "${GPU_FIXTURES[@]}" $(cd "$FIXTURES" && echo esrgan/*); do
      mkdir -p "$DEST/fixtures/$(dirname "$f")"
      cp -L "$FIXTURES/$f" "$DEST/fixtures/$f"
    done
  fi
  chmod -R u+w "$DEST/fixtures"
  if [ "$FIXMODE" = gpu ]; then
    # The checkpoints travel xz-compressed (about a tenth smaller: 5 MiB that the 64 MiB limit
    # needs); gpu-check.sh unpacks them into its work folder before anything reads them.
    find "$DEST/fixtures" -type f -size +1M ! -name '*.xz' ! -name '*.gz' -exec xz -6 -f {} +
  fi
fi

# ---- manifest and the size of what travels -----------------------------------------------

{
  echo "# .carry made by scripts/gpu-carry.sh on $(date -u +%Y-%m-%dT%H:%MZ) ($(uname -m))"
  for p in "${PKGS[@]}"; do
    if [ "${ROOT[$p]}" = / ]; then
      echo "package $p $(dpkg-query -W -f='${Version}' "$p") (installed)"
    else
      echo "package $p $(dpkg-deb -f "$STAGE"/"${p}"_*.deb Version) (downloaded)"
    fi
  done
  echo "fixtures $FIXMODE"
  (cd "$DEST" && find . -type f ! -name MANIFEST | sort | xargs stat -c '%s %n')
} >"$DEST/MANIFEST"

carry_bytes=$(du -sb "$DEST" | cut -f1)
tree_bytes=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null |
             awk '{s += $1} END {print s + 0}')
total=$((carry_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "gpu-carry: $DEST is $(mib "$carry_bytes") MiB; with the working tree $(mib "$total") MiB" \
     "travels (limit 64 MiB)" >&2
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "gpu-carry: too large for the device tool: use --gpu-fixtures-only" >&2
  exit 1
fi

#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet (as root, or through sudo).
#   scripts/apt-ensure.sh PKG...
# A fresh VM often runs unattended-upgrades at boot: while another apt or dpkg holds the locks,
# this waits (up to APT_LOCK_TIMEOUT seconds, 300 by default) instead of failing at once.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
WAIT=${APT_LOCK_TIMEOUT:-300}

# Runs an apt command, again every 5 s while it fails for a lock held by another process.
apt_waiting() {
  local deadline=$((SECONDS + WAIT)) out
  while :; do
    if out=$("$@" 2>&1); then
      [ -n "$out" ] && printf '%s\n' "$out" >&2
      return 0
    fi
    case $out in
      *"Could not get lock"*|*"Unable to lock"*|*"Unable to acquire the dpkg frontend lock"*)
        if [ "$SECONDS" -lt "$deadline" ]; then
          echo "vqclip: another apt or dpkg is running; waiting for its lock" >&2
          sleep 5
          continue
        fi ;;
    esac
    printf '%s\n' "$out" >&2
    return 1
  done
}

echo "vqclip: installing ${missing[*]}" >&2
apt_waiting $SUDO apt-get -o DPkg::Lock::Timeout="$WAIT" update -qq
apt_waiting $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$WAIT" \
  install -y -qq --no-install-recommends "${missing[@]}"

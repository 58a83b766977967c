#!/usr/bin/env bash
# Installs the Debian packages the tests need, only those that are missing:
#   mosquitto                  the MQTT integration tests run a real broker
#   gcc-aarch64-linux-gnu      cgo cross-compiler for linux/arm64 (firmware, firmware/crossbuild)
#   libc6-dev-arm64-cross      its C library, also the sysroot qemu-aarch64 runs binaries in
#   libstdc++6-arm64-cross     libonnxruntime.so (arm64) needs libstdc++ and libgcc_s in that sysroot
#   qemu-user                  qemu-aarch64: runs the arm64 test binaries on an x86-64 host
# On an arm64 host the cross packages and qemu are not needed and not installed.
#
# A second run only asks dpkg and returns. Installing needs root: as another user the script
# prints the apt-get command to run and exits 0, so that `make test` goes on (the tests that
# need a missing package then fail where CI=true or OODGUARD_REQUIRE_ORT=1, as under
# `make test`, and skip under a plain `go test`).
#
# Usage: scripts/install-debs.sh [extra packages...]
#   OODGUARD_SKIP_DEBS=1   do nothing (e.g. on a machine that is not Debian-based)
set -euo pipefail

if [ "${OODGUARD_SKIP_DEBS:-}" = 1 ]; then
  echo "install-debs: OODGUARD_SKIP_DEBS=1, not checking Debian packages"
  exit 0
fi

want=(mosquitto)
case "$(uname -m)" in
  aarch64|arm64) ;;
  *) want+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross libstdc++6-arm64-cross qemu-user) ;;
esac
want+=("$@")

if ! command -v dpkg-query >/dev/null; then
  echo "install-debs: no dpkg here (not Debian or Ubuntu); install the equivalents of: ${want[*]}" >&2
  exit 0
fi

missing=()
for p in "${want[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-debs: all present (${want[*]})"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "install-debs: missing Debian packages: ${missing[*]}" >&2
  echo "install-debs: not root, so not installing them; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "install-debs: continuing; the tests that need them fail under 'make test' and CI" >&2
  echo "  (OODGUARD_REQUIRE_ORT=1, CI=true) and skip under a plain 'go test'" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -y -q -o DPkg::Lock::Timeout=300)
echo "install-debs: installing ${missing[*]}"
# Try with the package lists already here; fetch them only when that fails (a fresh container
# has none, an old one may name versions that are gone).
if ! "${apt[@]}" install --no-install-recommends "${missing[@]}"; then
  "${apt[@]}" update
  "${apt[@]}" install --no-install-recommends "${missing[@]}"
fi
# Daemons that the packages start on install (mosquitto on a systemd host) are left alone: the
# tests start their own broker on a free port.
echo "install-debs: installed ${missing[*]}"

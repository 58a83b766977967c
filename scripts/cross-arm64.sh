#!/usr/bin/env bash
# Builds the device firmware tarball: cmd/oodguardd cross-compiled with cgo for linux/arm64 (and,
# when asked, linux/amd64), the ONNX Runtime library it loads, the systemd unit and an example
# configuration, packed as dist/oodguardd-<version>-linux-<arch>.tar.gz (+ .sha256).
#
# The tarball is a root filesystem overlay: unpack it at / on the device (tar -xzf ... -C /) or
# into an image's rootfs.
#
#   opt/oodguard/oodguardd                    the daemon
#   opt/oodguard/lib/libonnxruntime.so        ONNX Runtime 1.24.1 (CPU), private to oodguard
#   usr/bin/oodguardd -> ../../opt/oodguard/oodguardd
#   usr/lib/systemd/system/oodguardd.service
#   etc/oodguard/oodguardd.example.yaml       copy to etc/oodguard/oodguardd.yaml and edit
#
# The library sits where runtime.FindLibrary looks without any setting: <executable dir>/lib/
# (the executable's path is the resolved one, /opt/oodguard, also when started as
# /usr/bin/oodguardd).
#
# Usage: scripts/cross-arm64.sh [ARCH...]     ARCH: arm64 (default) or amd64
# Environment:
#   VERSION            version stamped into the binary (-X main.Version) and the file name
#                      (default: git describe --tags --always --dirty, or "dev")
#   DIST               output folder (default: dist)
#   CC_ARM64 CC_AMD64  C compilers (default: gcc for the host's own arch, else
#                      aarch64-linux-gnu-gcc / x86_64-linux-gnu-gcc; `make debs` installs the first)
#   SOURCE_DATE_EPOCH  file times in the tarball (default: the last commit's time)
#   GO                 the go command (default: go)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DIST=${DIST:-dist}
ORT_VERSION=1.24.1
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
hostarch=$($GO env GOHOSTARCH)
[ $# -gt 0 ] || set -- arm64

mkdir -p "$DIST"
for arch in "$@"; do
  case "$arch" in
    arm64|aarch64) arch=arm64; cc=${CC_ARM64:-}; cross=aarch64-linux-gnu-gcc ;;
    amd64|x86_64)  arch=amd64; cc=${CC_AMD64:-}; cross=x86_64-linux-gnu-gcc ;;
    *) echo "cross-arm64: unsupported architecture '$arch' (want arm64 or amd64)" >&2; exit 2 ;;
  esac
  if [ -z "$cc" ]; then
    if [ "$arch" = "$hostarch" ]; then cc=${CC:-gcc}; else cc=$cross; fi
  fi
  if ! command -v "$cc" >/dev/null; then
    echo "cross-arm64: C compiler '$cc' for linux/$arch not found; run 'make debs' (Debian: gcc-aarch64-linux-gnu libc6-dev-arm64-cross)" >&2
    exit 1
  fi

  scripts/fetch-onnxruntime.sh "$arch" >&2
  lib=.cache/onnxruntime/$ORT_VERSION/linux-$arch/libonnxruntime.so

  name=oodguardd-${VERSION//\//-}-linux-$arch
  stage=$(mktemp -d "$DIST/.stage.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  install -d "$stage/opt/oodguard/lib" "$stage/usr/bin" "$stage/usr/lib/systemd/system" "$stage/etc/oodguard"

  echo "cross-arm64: building cmd/oodguardd $VERSION for linux/$arch with CC=$cc" >&2
  start=$(date +%s)
  GOOS=linux GOARCH=$arch CGO_ENABLED=1 CC=$cc \
    $GO build -trimpath -ldflags "-s -w -X main.Version=$VERSION" -o "$stage/opt/oodguard/oodguardd" ./cmd/oodguardd
  echo "cross-arm64: built in $(( $(date +%s) - start ))s" >&2

  install -m 0644 "$lib" "$stage/opt/oodguard/lib/libonnxruntime.so"
  ln -s ../../opt/oodguard/oodguardd "$stage/usr/bin/oodguardd"
  install -m 0644 firmware/systemd/oodguardd.service "$stage/usr/lib/systemd/system/oodguardd.service"
  install -m 0644 firmware/systemd/oodguardd.example.yaml "$stage/etc/oodguard/oodguardd.example.yaml"
  chmod 0755 "$stage/opt/oodguard/oodguardd"

  out=$DIST/$name.tar.gz
  # Reproducible: sorted names, root-owned, fixed times, no gzip timestamp.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=gnu \
    -C "$stage" -cf - opt usr etc | gzip -n -9 > "$out.tmp"
  mv -f "$out.tmp" "$out"
  (cd "$DIST" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
  rm -rf "$stage"
  trap - EXIT
  echo "$out"
done

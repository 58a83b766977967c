#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library that github.com/yalue/onnxruntime_go v1.27.0 is built
# against (ORT 1.24.1, CPU build) into .cache/onnxruntime/<version>/linux-<arch>/, verified by
# sha256. A second run with a verified library in place does nothing.
#
# Sources, in order:
#   1. the npm package onnxruntime-node@1.24.1, which carries the linux x64 and arm64 CPU builds
#      (downloaded with curl from the npm registry, or with `npm pack` where npm has a proxy set);
#   2. the official release tarball from the ONNX Runtime GitHub releases, when ORT_RELEASE_SHA256
#      names its sha256 (the script will not install an unverified file).
#
# Usage: scripts/fetch-onnxruntime.sh [amd64|arm64]   (default: the host's Go architecture)
set -euo pipefail

VERSION=1.24.1
NPM_TGZ_SHA256=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
NPM_URL="https://registry.npmjs.org/onnxruntime-node/-/onnxruntime-node-${VERSION}.tgz"

arch=${1:-$(go env GOARCH 2>/dev/null || uname -m)}
case "$arch" in
  amd64|x86_64) arch=amd64; npm_dir=x64; rel_arch=x64
    SO_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4 ;;
  arm64|aarch64) arch=arm64; npm_dir=arm64; rel_arch=aarch64
    SO_SHA256=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab ;;
  *) echo "fetch-onnxruntime: unsupported architecture '$arch' (want amd64 or arm64)" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/.cache/onnxruntime
dest=$cache/$VERSION/linux-$arch
lib=$dest/libonnxruntime.so

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if sha_ok "$lib" "$SO_SHA256"; then
  echo "onnxruntime $VERSION linux/$arch: $lib (verified, not fetched again)"
  exit 0
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

tgz=$cache/onnxruntime-node-$VERSION.tgz
if ! sha_ok "$tgz" "$NPM_TGZ_SHA256"; then
  rm -f "$tgz"
  echo "fetching onnxruntime-node@$VERSION from the npm registry" >&2
  if command -v curl >/dev/null && curl -fsSL --retry 3 -o "$tmp/node.tgz" "$NPM_URL"; then
    :
  elif command -v npm >/dev/null && (cd "$tmp" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null); then
    mv "$tmp/onnxruntime-node-$VERSION.tgz" "$tmp/node.tgz"
  fi
  if sha_ok "$tmp/node.tgz" "$NPM_TGZ_SHA256"; then
    mv "$tmp/node.tgz" "$tgz"
  else
    rm -f "$tmp/node.tgz"
  fi
fi

if sha_ok "$tgz" "$NPM_TGZ_SHA256"; then
  tar -xzf "$tgz" -C "$tmp" "package/bin/napi-v6/linux/$npm_dir/libonnxruntime.so.1"
  cand=$tmp/package/bin/napi-v6/linux/$npm_dir/libonnxruntime.so.1
elif [ -n "${ORT_RELEASE_SHA256:-}" ]; then
  name=onnxruntime-linux-$rel_arch-$VERSION
  url="https://github.com/microsoft/onnxruntime/releases/download/v$VERSION/$name.tgz"
  echo "npm registry unreachable; fetching the official release $url" >&2
  curl -fsSL --retry 3 -o "$tmp/rel.tgz" "$url"
  if ! sha_ok "$tmp/rel.tgz" "$ORT_RELEASE_SHA256"; then
    echo "fetch-onnxruntime: $url does not match ORT_RELEASE_SHA256" >&2; exit 1
  fi
  tar -xzf "$tmp/rel.tgz" -C "$tmp" "$name/lib/libonnxruntime.so.$VERSION"
  cand=$tmp/$name/lib/libonnxruntime.so.$VERSION
  SO_SHA256=$(sha256sum "$cand" | cut -d' ' -f1) # the release tarball itself was verified
else
  echo "fetch-onnxruntime: could not fetch onnxruntime-node@$VERSION (sha256 $NPM_TGZ_SHA256)." >&2
  echo "  Set ONNXRUNTIME_LIB to an existing libonnxruntime.so $VERSION, or set ORT_RELEASE_SHA256" >&2
  echo "  to the sha256 of the official $VERSION release tarball for linux-$rel_arch." >&2
  exit 1
fi

if ! sha_ok "$cand" "$SO_SHA256"; then
  echo "fetch-onnxruntime: extracted library does not match its pinned sha256 $SO_SHA256" >&2
  exit 1
fi
chmod 0644 "$cand"
mv -f "$cand" "$lib.tmp"
mv -f "$lib.tmp" "$lib"
echo "onnxruntime $VERSION linux/$arch: $lib"

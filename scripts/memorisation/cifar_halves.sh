#!/bin/bash
# The CIFAR-10 and Tiny ImageNet halves of docs/memorisation-cifar.md (issue #14), under
# $RUNS/data: cifar-val-5000 (CIFAR-10 test images 0000-0499 of each class: ID validation),
# cifar-test-5000 (0500-0999: ID test), tin-val-5000 (Tiny ImageNet val_0..4999: the OOD
# validation family), tin-test-5000 (val_5000..9999). cifar_splits.py makes the noise set and
# the training-subset folders. Files are moved by name patterns (a few mv calls, not one cp per
# image: the same files as the per-image loop of the 2026-12-06 runs, in seconds).
set -eu
SRC=${SRC:-../shared/data}
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
out=$RUNS/data
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xf "$SRC/cifar10/test.tar" -C "$tmp"
tar xf "$SRC/tiny-imagenet/val.tar" -C "$tmp"
for d in "$tmp/test"/*/; do
  c=$(basename "$d")
  mkdir -p "$out/cifar-val-5000/$c" "$out/cifar-test-5000/$c"
  mv "$d"/0[0-4][0-9][0-9].jpg "$out/cifar-val-5000/$c/"   # 0000..0499
  mv "$d"/*.jpg "$out/cifar-test-5000/$c/"                  # 0500..0999
done
mkdir -p "$out/tin-val-5000/images" "$out/tin-test-5000/images"
v=$tmp/val/images
# val_0..val_4999 (no zero padding): one to three digits, or four digits starting 0-4
mv "$v"/val_[0-9].JPEG "$v"/val_[0-9][0-9].JPEG "$v"/val_[0-9][0-9][0-9].JPEG "$v"/val_[0-4][0-9][0-9][0-9].JPEG "$out/tin-val-5000/images/"
mv "$v"/val_*.JPEG "$out/tin-test-5000/images/"
for d in cifar-val-5000 cifar-test-5000 tin-val-5000 tin-test-5000; do
  n=$(find "$out/$d" -type f | wc -l)
  [ "$n" = 5000 ] || { echo "cifar_halves.sh: $out/$d has $n images, want 5000" >&2; exit 1; }
done

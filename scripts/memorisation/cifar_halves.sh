#!/bin/bash
# The CIFAR-10 and Tiny ImageNet halves of docs/memorisation-cifar.md (issue #14), under
# $RUNS/data: cifar-val-5000 (CIFAR-10 test images 0000-0499 of each class: ID validation),
# cifar-test-5000 (0500-0999: ID test), tin-val-5000 (Tiny ImageNet val_0..4999: the OOD
# validation family), tin-test-5000 (val_5000..9999). cifar_splits.py makes the noise set and
# the training-subset folders.
set -eu
SRC=${SRC:-../shared/data}
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
out=$RUNS/data
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xf "$SRC/cifar10/test.tar" -C "$tmp"
tar xf "$SRC/tiny-imagenet/val.tar" -C "$tmp"
for c in $(ls "$tmp/test"); do
  mkdir -p "$out/cifar-val-5000/$c" "$out/cifar-test-5000/$c"
  for f in "$tmp/test/$c"/*.jpg; do
    n=$(basename "$f" .jpg)
    if [ $((10#$n)) -lt 500 ]; then cp "$f" "$out/cifar-val-5000/$c/"; else cp "$f" "$out/cifar-test-5000/$c/"; fi
  done
done
mkdir -p "$out/tin-val-5000/images" "$out/tin-test-5000/images"
for f in "$tmp/val/images"/*; do
  n=$(basename "$f" .JPEG); n=${n#val_}
  if [ "$n" -lt 5000 ]; then cp "$f" "$out/tin-val-5000/images/"; else cp "$f" "$out/tin-test-5000/images/"; fi
done

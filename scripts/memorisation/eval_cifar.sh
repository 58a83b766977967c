#!/bin/bash
# Evaluates ONNX models of docs/memorisation-cifar.md (energy score, T=1), like eval_models.sh
# does for Fashion-MNIST. Test run: ID = CIFAR-10 test images 0500..0999 of each class
# (cifar-test-5000); OOD = Tiny ImageNet val_5000..9999 (the validation family's test half),
# MNIST test and Fashion-MNIST test (gray copied to RGB, 32x32 by the model's spec), uniform RGB
# noise. Every set is a seeded random subset of LIMIT (default 2000) images (-limit, -seed 1:
# the same images for every model).
# Usage: eval_cifar.sh MODEL.onnx... ; the report goes to <dir of MODEL>/../eval/<name>/
# (skipped when its report.csv exists). VAL=1: the validation pair (ID = cifar-val-5000, OOD =
# tin-val-5000, LIMIT each) into ../val/<name>/; TRAINACC=S: the accuracy on seed S's own 5,000
# training images (all of them; the OOD set is a dummy) into ../trainacc/<name>/.
set -u
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
BIN=${BIN:-/tmp/h1/oodguard}
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-/work/main/.cache/onnxruntime/1.24.1/linux-amd64/libonnxruntime.so}
D=$RUNS/data
SH=${SRC:-/work/shared/data}

LIMIT=${LIMIT:-2000}
failed=0
for m in "$@"; do
  name=$(basename "$m" .onnx)
  lim=(-limit "$LIMIT" -seed 1)
  if [ -n "${TRAINACC:-}" ]; then
    out=$(dirname "$m")/../trainacc/$name
    sets=(-id "$D/train-subset-$TRAINACC" -ood "$D/noise-rgb-5000")
    lim=(-limit 0)
  elif [ "${VAL:-0}" = 1 ]; then
    out=$(dirname "$m")/../val/$name
    sets=(-id "$D/cifar-val-5000" -ood "$D/tin-val-5000")
  else
    out=$(dirname "$m")/../eval/$name
    sets=(-id "$D/cifar-test-5000" -ood "$D/tin-test-5000" -ood "$SH/mnist/t10k-images-idx3-ubyte.gz"
          -ood "$SH/fashion-mnist/t10k-images-idx3-ubyte.gz" -ood "$D/noise-rgb-5000")
  fi
  [ -f "$out/report.csv" ] && continue
  tmp=$out.tmp.$$   # per process: two streams may evaluate the same model at once
  rm -rf "$tmp"; mkdir -p "$(dirname "$out")"
  t0=$(date +%s.%N)
  if nice -n 10 "$BIN" eval -threads "${THREADS:-1}" -model "$m" -scores energy "${lim[@]}" "${sets[@]}" -out "$tmp" > "$out.log.$$" 2>&1; then
    mv "$out.log.$$" "$out.log"; [ -f "$out/report.csv" ] && rm -rf "$tmp" || { rm -rf "$out"; mv "$tmp" "$out"; }
    echo "$m $(echo "$(date +%s.%N) - $t0" | bc)s" >> "$RUNS/eval-times.txt"
  else
    mv "$out.log.$$" "$out.log"; echo "FAILED $m (see $out.log)" >&2
    failed=1
  fi
done
exit $failed

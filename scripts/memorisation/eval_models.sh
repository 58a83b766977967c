#!/bin/bash
# Evaluates ONNX models of docs/memorisation.md on the test sets (energy score, T=1):
# ID = Fashion-MNIST t10k; OOD = MNIST test 5000..9999, CIFAR-10 test (gray 28x28 by the
# model's spec), Tiny ImageNet val_5000..9999 (gray 28x28), uniform noise.
# Usage: eval_models.sh MODEL.onnx... ; the report goes to <dir of MODEL>/../eval/<name>/
# (skipped when its report.csv exists). With VAL=1 it runs the validation pair instead
# (ID = Fashion-MNIST train 55000..59999, OOD = MNIST test 0..4999) into ../val/<name>/; with
# TRAINACC=S the accuracy on seed S's 10k training images into ../trainacc/<name>/.
# SRC: the shared data (default /work/shared/data); LIMIT=N: a seeded random N of each test
# and validation set (default 0: all; the docs' runs used all).
set -u
SRC=${SRC:-/work/shared/data}
RUNS=${RUNS:-/root/oodguard-runs/fmnist-mem}
BIN=${BIN:-/root/oodguard-runs/bin/oodguard}
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-/root/oodguard-runs/bin/libonnxruntime.so}
D=$RUNS/data
failed=0
for m in "$@"; do
  name=$(basename "$m" .onnx)
  if [ -n "${TRAINACC:-}" ]; then
    # accuracy on the seed's own 10k training images (eval mode); the OOD set is a dummy
    out=$(dirname "$m")/../trainacc/$name
    sets=(-id "$D/train-subset-$TRAINACC/train-images-idx3-ubyte.gz" -ood "$D/noise-5000/noise-images-idx3-ubyte.gz")
  elif [ "${VAL:-0}" = 1 ]; then
    out=$(dirname "$m")/../val/$name
    sets=(-id "$D/fmnist-val-5000/train-images-idx3-ubyte.gz" -ood "$D/mnist-val-5000/t10k-images-idx3-ubyte.gz")
  else
    out=$(dirname "$m")/../eval/$name
    sets=(-id "$SRC/fashion-mnist/t10k-images-idx3-ubyte.gz"
          -ood "$D/mnist-test-5000/t10k-images-idx3-ubyte.gz" -ood "$SRC/cifar10/test.tar#test"
          -ood "$D/tin-test-5000" -ood "$D/noise-5000/noise-images-idx3-ubyte.gz")
  fi
  [ -f "$out/report.csv" ] && continue
  rm -rf "$out.tmp"; mkdir -p "$(dirname "$out")"
  t0=$(date +%s.%N)
  lim=(-limit "${LIMIT:-0}" -seed 1)
  [ -n "${TRAINACC:-}" ] && lim=(-limit 0)
  if nice -n 10 "$BIN" eval -threads "${THREADS:-1}" -model "$m" -scores energy "${lim[@]}" "${sets[@]}" -out "$out.tmp" > "$out.log" 2>&1; then

    rm -rf "$out"; mv "$out.tmp" "$out"
    echo "$m $(echo "$(date +%s.%N) - $t0" | bc)s" >> "$RUNS/eval-times.txt"
  else
    echo "FAILED $m (see $out.log)" >&2
    failed=1
  fi
done
exit $failed

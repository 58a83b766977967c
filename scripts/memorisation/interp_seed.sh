#!/bin/bash
# Weight interpolation between the final epoch and the best validation epoch of one seed
# (docs/memorisation.md): builds naive-aA.onnx (all initializers interpolated, BatchNorm
# running statistics too) and bn-aA.onnx (the same, then BatchNorm statistics estimated again
# on the seed's 10k training images) for A in ALPHAS, runs each on the validation pair, picks A
# on validation only (summarise.py pick) and runs the picks, then every candidate, on the test
# sets. Usage: interp_seed.sh SEED
set -u
S=$1
RUNS=${RUNS:-/root/oodguard-runs/fmnist-mem}
H=$(cd "$(dirname "$0")" && pwd)
ALPHAS=${ALPHAS:-"0.00 0.10 0.20 0.30 0.40 0.50 0.60 0.70 0.80 0.90 1.00"}
T=$RUNS/seed-$S/train
final=$(ls "$T"/epoch-*.onnx | sort | tail -1)
best=$T/$(/usr/bin/python3 "$H/summarise.py" best "$S").onnx
I=$RUNS/seed-$S/interp
mkdir -p "$I"
echo "seed $S: final $final best $best" | tee "$I/choice.txt"
t0=$(date +%s)
for a in $ALPHAS; do
  [ -f "$I/naive-a$a.onnx" ] || nice -n 5 /usr/bin/python3 "$H/interpolate.py" -final "$final" -best "$best" -alpha "$a" -out "$I/naive-a$a.onnx"
  [ -f "$I/bn-a$a.onnx" ] || nice -n 5 /usr/bin/python3 "$H/interpolate.py" -final "$final" -best "$best" -alpha "$a" -out "$I/bn-a$a.onnx" \
      -bn-data "$RUNS/data/train-subset-$S/train-images-idx3-ubyte.gz" -bn-images "${TRAIN_LIMIT:-10000}"


done
echo "build: $(( $(date +%s) - t0 ))s" | tee -a "$I/choice.txt"
VAL=1 "$H/eval_models.sh" "$I"/*.onnx
for p in naive-a bn-a; do
  nm=$(/usr/bin/python3 "$H/summarise.py" pick "$S" "$p")
  echo "$p: picked $nm" | tee -a "$I/choice.txt"
  "$H/eval_models.sh" "$I/$nm.onnx"
  TRAINACC=$S "$H/eval_models.sh" "$I/$nm.onnx"
done
TRAINACC=$S "$H/eval_models.sh" "$final" "$best"
"$H/eval_models.sh" "$I"/*.onnx
echo "seed $S interp done: $(( $(date +%s) - t0 ))s" | tee -a "$I/choice.txt"

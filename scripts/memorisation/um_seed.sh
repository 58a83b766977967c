#!/bin/bash
# UM from the final epoch of one seed (docs/memorisation.md): the official recipe's lr (0.1,
# cosine per epoch, SGD momentum 0.9, wd 1e-4) at a shortened length, on the seed's own 10k
# training images, no augmentation (as the model was trained), the constraint chosen on the
# validation pair by `-constraint grid` (f x estimate and f x dense loss, f in FACTORS), every
# candidate trained the full length (-grid-epochs = -epochs: the winner is the output as
# trained). The "no change" candidate (the final epoch itself) is added by summarise.py, which
# keeps the input unless the winner is better on validation within the accuracy floor.
# An interrupted run continues from its last epoch's state (-resume) when started again (the
# runs of 2026-12-06 used the older spelling -pad 0 -no-flip, same meaning, and no -resume).
# -keep-worse: the run is written as trained (the 2026-12-06 runs' binary had no validation
# guard yet); summarise.py applies the guard's rule ("or input (val rule)" rows).
# Usage: [CONSTRAINT=c] um_seed.sh SEED [MODE]   (MODE: um, umap (magnitude init) or umap-kaiming;
# CONSTRAINT: a number, or estimate for the official estimate; EPOCHS=100: the official length)



set -u
S=$1; MODE=${2:-um}
RUNS=${RUNS:-/root/oodguard-runs/fmnist-mem}
BIN=${BIN:-/root/oodguard-runs/bin/oodguard}
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-/root/oodguard-runs/bin/libonnxruntime.so}
H=$(cd "$(dirname "$0")" && pwd)
EPOCHS=${EPOCHS:-10}; FACTORS=${FACTORS:-0.5,1}
D=$RUNS/data
final=$(ls "$RUNS/seed-$S/train"/epoch-*.onnx | sort | tail -1)
U=$RUNS/seed-$S/$MODE
mkdir -p "$U"
# CONSTRAINT=NUMBER: one run at that constraint instead of the grid (0: plain cross-entropy)
if [ -n "${CONSTRAINT:-}" ]; then name=$MODE-c$CONSTRAINT-e$EPOCHS; cflags=(-constraint "$CONSTRAINT")   # a number or estimate
else name=$MODE-grid-e$EPOCHS; cflags=(-constraint grid -grid-factors "$FACTORS" -grid-epochs "$EPOCHS"); fi
if [ ! -f "$U/$name.onnx" ]; then
  extra=(); m=$MODE
  [ "$MODE" = umap ] && extra=(-score-init magnitude)
  [ "$MODE" = umap-kaiming ] && { m=umap; extra=(-score-init kaiming); }   # the official random score init
  oodval=(-ood-val "$D/mnist-val-5000/t10k-images-idx3-ubyte.gz" -val-limit 0)
  [ -n "${CONSTRAINT:-}" ] && oodval=()   # a fixed-c control: no grid, no validation pair

  cmd=(nice -n 5 "$BIN" unleash -mode "$m" -model "$final" -data "$D/train-subset-$S/train-images-idx3-ubyte.gz"
       -out "$U/$name.onnx" "${cflags[@]}" -epochs "$EPOCHS"
       -lr 0.1 -batch 128 -crop 0 -flip=false -seed "$S" -resume -id-val "$D/fmnist-val-5000/train-images-idx3-ubyte.gz"
       "${oodval[@]}" "${extra[@]}" -keep-worse)
  echo "${cmd[*]}" > "$U/$name.cmd"
  t0=$(date +%s)
  "${cmd[@]}" >> "$U/$name.log" 2>&1
  rc=$?
  echo "rc=$rc wall=$(( $(date +%s) - t0 ))s" | tee "$U/$name.wall"
  [ $rc = 0 ] || { echo "unleash failed (rc=$rc): see $U/$name.log" >&2; exit $rc; }
fi

VAL=1 "$H/eval_models.sh" "$U/$name.onnx"
"$H/eval_models.sh" "$U/$name.onnx"
TRAINACC=$S "$H/eval_models.sh" "$U/$name.onnx"

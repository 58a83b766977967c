#!/bin/bash
# UM or UMAP from the final epoch (epoch-080) of one CIFAR-10 seed (docs/memorisation-cifar.md):
# the official lr 0.1 with per-epoch cosine decay, SGD momentum 0.9, wd 1e-4, batch 128 (the
# model's own training batch), EPOCHS epochs (default 20; the official length is 100), on the
# seed's own 5,000 training images, no augmentation (as the model was trained). One constraint
# candidate per call; the choice among the candidates and "no change" (the final epoch itself)
# is made on the validation pair by summarise_cifar.py, so every candidate is written
# (-keep-worse) and evaluated: VAL=1 (CIFAR-10 val vs Tiny ImageNet val), test, training accuracy.
# An interrupted run continues from its last epoch's state (-resume) when started again.
# Usage: um_cifar.sh SEED MODE CAND
#   MODE: um | umap (magnitude score init) | umap-kaiming (the official random score init)
#   CAND: estimate (the official estimate, computed by unleash) | bestloss (the best epoch's
#         logged training loss, from train.json) | a number
set -u
S=$1; MODE=$2; CAND=$3
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
BIN=${BIN:-/tmp/h1/oodguard}
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-/work/main/.cache/onnxruntime/1.24.1/linux-amd64/libonnxruntime.so}
H=$(cd "$(dirname "$0")" && pwd)
EPOCHS=${EPOCHS:-20}
D=$RUNS/data
final=$(ls "$RUNS/seed-$S/train"/epoch-*.onnx 2>/dev/null | sort | tail -1)   # the final epoch (080 in the docs' runs)
final=${final:-$RUNS/seed-$S/train/epoch-080.onnx}

[ -f "$final" ] || { echo "no $final" >&2; exit 1; }
case $CAND in
  estimate) c=estimate ;;
  bestloss) c=$(RUNS=$RUNS /usr/bin/python3 "$H/summarise_cifar.py" bestloss "$S") || exit 1 ;;
  *) c=$CAND ;;
esac
extra=()
case $MODE in
  um) m=um ;;
  umap) m=umap; extra=(-score-init magnitude) ;;
  umap-kaiming) m=umap; extra=(-score-init kaiming) ;;
  *) echo "mode $MODE?" >&2; exit 2 ;;
esac
U=$RUNS/seed-$S/$MODE
name=$MODE-$CAND-e$EPOCHS
mkdir -p "$U"
if [ ! -f "$U/$name.onnx" ]; then
  cmd=(nice -n 5 "$BIN" unleash -mode "$m" -model "$final" -data "$D/train-subset-$S" -out "$U/$name.onnx"
       -constraint "$c" -epochs "$EPOCHS" -lr 0.1 -batch 128 -crop 0 -flip=false -seed "$S" -keep-worse -resume "${extra[@]}")
  echo "${cmd[*]}" > "$U/$name.cmd"
  t0=$(date +%s)
  "${cmd[@]}" >> "$U/$name.log" 2>&1
  rc=$?
  echo "rc=$rc wall=$(( $(date +%s) - t0 ))s end $(date -u +%FT%TZ)" | tee "$U/$name.wall"
  [ $rc = 0 ] || { echo "unleash failed (rc=$rc): see $U/$name.log" >&2; exit $rc; }
fi

VAL=1 "$H/eval_cifar.sh" "$U/$name.onnx"
"$H/eval_cifar.sh" "$U/$name.onnx"
TRAINACC=$S "$H/eval_cifar.sh" "$U/$name.onnx"

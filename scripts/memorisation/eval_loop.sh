#!/bin/bash
# Evaluates every epoch checkpoint of every seed as it appears, until every seed's train.json
# ended (train.wall) and every checkpoint has a report. Usage: eval_loop.sh 1 2 3
# EVAL=script: the evaluation script (default eval_models.sh, Fashion-MNIST; eval_cifar.sh for
# RUNS=/root/oodguard-runs/cifar-mem).
RUNS=${RUNS:-/root/oodguard-runs/fmnist-mem}
H=$(dirname "$0")
EVAL=${EVAL:-$H/eval_models.sh}
while :; do
  pending=0
  for S in "$@"; do
    t=$RUNS/seed-$S/train
    # train.json is rewritten after every epoch; train.wall is written when the run ends
    [ -f "$RUNS/seed-$S/train.wall" ] || pending=1
    for m in "$t"/epoch-*.onnx; do
      [ -f "$m" ] || continue
      n=$(basename "$m" .onnx)
      [ -f "$RUNS/seed-$S/eval/$n/report.csv" ] && continue
      # a checkpoint is complete once the next one or train.json exists
      e=$((10#${n#epoch-})); nx=$(printf '%s/epoch-%03d.onnx' "$t" $((e+1)))
      # EVERY=N: only every Nth epoch and the last (the per-epoch curve of a slow model)
      if [ "${EVERY:-1}" -gt 1 ] && [ $((e % EVERY)) != 0 ] && { [ -f "$nx" ] || ! grep -q "rc=0" "$RUNS/seed-$S/train.wall" 2>/dev/null; }; then continue; fi

      [ -f "$nx" ] || [ -f "$RUNS/seed-$S/train.wall" ] || continue
      # eval writes into seed-S/eval/ (the model's folder is train/)
      "$EVAL" "$m"
    done
  done
  [ $pending = 0 ] && break
  sleep 30
done
echo "eval loop done $(date -u +%FT%TZ)"

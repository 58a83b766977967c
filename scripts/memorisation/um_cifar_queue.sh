#!/bin/bash
# One stream of docs/memorisation-cifar.md's unleash runs: for each seed in turn, waits until
# its training ended (train.wall rc=0), evaluates the final and the best epoch (validation pair
# and training accuracy; their test reports come from eval_loop.sh), then runs um_cifar.sh for
# MODE and every candidate. Start one stream per mode to use both cores:
#   um_cifar_queue.sh um "1 2 3" & um_cifar_queue.sh umap "1 2 3" &
# CANDS (default "estimate bestloss") and EPOCHS pass through.
set -u
# not SEEDS: regime.sh exports that (comma-separated) to the Python scripts this one calls
MODE=$1; QUEUE_SEEDS=$2
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
H=$(cd "$(dirname "$0")" && pwd)
for S in $QUEUE_SEEDS; do
  until grep -q "rc=0" "$RUNS/seed-$S/train.wall" 2>/dev/null; do sleep 30; done
  best=$(RUNS=$RUNS /usr/bin/python3 "$H/summarise_cifar.py" best "$S") && [ -n "$best" ] ||
    { echo "um_cifar_queue.sh: no best epoch for seed $S" >&2; exit 1; }
  final=$(basename "$(ls "$RUNS/seed-$S/train"/epoch-*.onnx | sort | tail -1)" .onnx)   # epoch-080 in the docs' runs
  for m in "$final" "$best"; do
    "$H/eval_cifar.sh" "$RUNS/seed-$S/train/$m.onnx" || exit   # done already unless eval_loop.sh skipped it (EVERY)
    VAL=1 "$H/eval_cifar.sh" "$RUNS/seed-$S/train/$m.onnx" || exit
    TRAINACC=$S "$H/eval_cifar.sh" "$RUNS/seed-$S/train/$m.onnx" || exit
  done
  for c in ${CANDS:-estimate bestloss}; do
    echo "seed $S $MODE $c start $(date -u +%FT%TZ)"
    "$H/um_cifar.sh" "$S" "$MODE" "$c" || exit

  done
done
echo "queue $MODE done $(date -u +%FT%TZ)"

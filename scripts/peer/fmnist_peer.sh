#!/bin/bash
# The PyTorch peer (um_peer.py) of last session's oodguard UM/UMAP runs on the memorised
# Fashion-MNIST cnn28 (docs/memorisation.md, docs/peer.md): for seed S, from the same start model
# (seed-S/train/epoch-060.onnx), on the same 10k training images, with the recipe of
# scripts/memorisation/um_seed.sh (10 epochs, lr 0.1 cosine, batch 128, no augmentation,
# momentum 0.9, wd 1e-4) and the constraint oodguard's run used (read from its run record):
#   um      UM at the grid's chosen c  (peer of seed-S/um/um-grid-e10)
#   um-c0   UM at c = 0                 (peer of seed-S/um/um-c0-e10)
#   umap    UMAP, magnitude init, keep 0.8, at the UMAP grid's chosen c (peer of seed-S/umap/umap-grid-e10)
#   um-estimate-e100  the official recipe: UM for 100 epochs at the official constraint estimate
#           oodguard's run computed (peer of seed-S/um/um-cestimate-e100)
#   oodguard-um  not the peer: oodguard unleash itself, um_seed.sh's command at the grid's c with
#           -seed PEER_SEED (another shuffling order), to measure how far the data order alone
#           moves oodguard's result; written as oodguard-um-e10-shuffleN
#   oodguard-um-estimate-e100  the same for the official recipe (the estimate of seed-S's run,
#           100 epochs): oodguard-um-estimate-e100-shuffleN
# Then the same evaluation as the oodguard models (scripts/memorisation/eval_models.sh: test sets,
# validation pair, accuracy on the training images). Skips what exists.
# Usage: fmnist_peer.sh SEED KIND...   (PEER_SEED=N: the peer's shuffling seed, default SEED)
set -u
S=$1; shift
RUNS=${RUNS:-/root/oodguard-runs/fmnist-mem}
OUT=${OUT:-/root/oodguard-runs/peer/fmnist}
BIN=${BIN:-/root/oodguard-runs/bin/oodguard}
H=$(cd "$(dirname "$0")" && pwd)
PS=${PEER_SEED:-$S}
D=$RUNS/data
chosen() { /usr/bin/python3 -c "import json;print(repr(json.load(open('$1'))['constraint']['value']))"; }
for kind in "$@"; do
  extra=() ep=10
  case $kind in
    um|oodguard-um) c=$(chosen "$RUNS/seed-$S/um/um-grid-e10.run.json"); mode=um ;;
    oodguard-um-estimate-e100) c=$(chosen "$RUNS/seed-$S/um/um-cestimate-e100.run.json"); mode=um; ep=100 ;;
    um-estimate-e100) c=$(chosen "$RUNS/seed-$S/um/um-cestimate-e100.run.json"); mode=um; ep=100 ;;
    um-c0) c=0; mode=um ;;
    umap) c=$(chosen "$RUNS/seed-$S/umap/umap-grid-e10.run.json"); mode=umap; extra=(-score-init magnitude -keep 0.8) ;;
    *) echo "unknown kind $kind" >&2; exit 2 ;;
  esac
  name=peer-$kind; [ "$ep" = 10 ] && name=$name-e10
  [ "$PS" != "$S" ] && name=$name-shuffle$PS
  # ORDER=1: the peer takes oodguard's own data order (scripts/peer/order) instead of torch's
  oflag=()
  if [ "${ORDER:-}" = 1 ]; then
    name=$name-oodguardorder; of=$OUT/../data/order-$S$([ "$ep" != 10 ] && echo "-e$ep").txt
    [ -f "$of" ] || (cd "$H/../.." && go run ./scripts/peer/order -seed "$S" -n 10000 -epochs "$ep" > "$of.tmp" && mv "$of.tmp" "$of") || exit 1
    oflag=(-order "$of")
  fi
  U=$OUT/seed-$S/$mode
  mkdir -p "$U"
  og=; [ "$kind" = oodguard-um ] && og=oodguard-um-e10-shuffle$PS
  [ "$kind" = oodguard-um-estimate-e100 ] && og=oodguard-um-estimate-e100-shuffle$PS
  if [ -n "$og" ] && [ ! -f "$U/$og.onnx" ]; then
    name=$og
    cmd=(nice -n 5 "$BIN" unleash -mode um -model "$RUNS/seed-$S/train/epoch-060.onnx"
         -data "$D/train-subset-$S/train-images-idx3-ubyte.gz" -out "$U/$name.onnx" -constraint "$c"
         -epochs "$ep" -lr 0.1 -batch 128 -pad 0 -no-flip -seed "$PS" -resume -id-val "$D/fmnist-val-5000/train-images-idx3-ubyte.gz" -keep-worse)
    echo "${cmd[*]}" > "$U/$name.cmd"
    t0=$(date +%s)
    ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(dirname "$BIN")/libonnxruntime.so} "${cmd[@]}" > "$U/$name.log" 2>&1
    echo "rc=$? wall=$(( $(date +%s) - t0 ))s" | tee "$U/$name.wall"
  fi
  [ -n "$og" ] && name=$og
  if [ -z "$og" ] && [ ! -f "$U/$name.onnx" ]; then
    cmd=(nice -n 5 /usr/bin/python3 "$H/um_peer.py" -mode "$mode" -model "$RUNS/seed-$S/train/epoch-060.onnx"
         -data "$D/train-subset-$S/train-images-idx3-ubyte.gz" -id-val "$D/fmnist-val-5000/train-images-idx3-ubyte.gz"
         -constraint "$c" -epochs "$ep" -lr 0.1 -batch 128 -seed "$PS" "${extra[@]}" "${oflag[@]}" -check-ort "$BIN" -out "$U/$name.onnx")
    echo "${cmd[*]}" > "$U/$name.cmd"
    t0=$(date +%s)
    "${cmd[@]}" > "$U/$name.log" 2>&1
    echo "rc=$? wall=$(( $(date +%s) - t0 ))s" | tee "$U/$name.wall"
  fi
  [ -f "$U/$name.onnx" ] || continue
  RUNS=$RUNS VAL=1 "$H/../memorisation/eval_models.sh" "$U/$name.onnx"
  RUNS=$RUNS "$H/../memorisation/eval_models.sh" "$U/$name.onnx"
  RUNS=$RUNS TRAINACC=$S "$H/../memorisation/eval_models.sh" "$U/$name.onnx"
done

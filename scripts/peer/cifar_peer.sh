#!/bin/bash
# The PyTorch peer (um_peer.py) of a CIFAR-10 unleash run of docs/memorisation-cifar.md
# (scripts/memorisation/um_cifar.sh): from the same start model (seed-S/train/epoch-080.onnx,
# ResNet -blocks 1,1,1 -width 16), on the same 5,000 training images as oodguard holds them in
# memory (scripts/peer/dumpdata: JPEG decoding and normalisation by oodguard itself), with the
# same recipe (EPOCHS, default 20; lr 0.1 cosine per epoch, batch 128, no augmentation,
# momentum 0.9, wd 1e-4) and constraint CAND: bestloss (the best epoch's logged training loss,
# as um_cifar.sh computes it), estimate (the official estimate's value from oodguard's run of
# the same mode and length, MODE-estimate-eEPOCHS.run.json) or a number. Evaluated by
# scripts/memorisation/eval_cifar.sh like

# the oodguard model. Usage: cifar_peer.sh SEED MODE CAND   (MODE: um | umap, magnitude init)
set -u
S=$1; MODE=$2; CAND=$3
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
OUT=${OUT:-/root/oodguard-runs/peer/cifar}
CHECKBIN=${CHECKBIN:-/root/oodguard-runs/bin/oodguard}   # the logit check; eval_cifar.sh picks its own BIN
EPOCHS=${EPOCHS:-20}
H=$(cd "$(dirname "$0")" && pwd)
final=$RUNS/seed-$S/train/epoch-080.onnx
[ -f "$final" ] || { echo "no $final" >&2; exit 1; }
case $CAND in
  bestloss) c=$(RUNS=$RUNS /usr/bin/python3 "$H/../memorisation/summarise_cifar.py" bestloss "$S") || exit 1 ;;
  estimate) # the value oodguard's run of the same length estimated (um_cifar.sh S MODE estimate)
    rj=$RUNS/seed-$S/$MODE/$MODE-estimate-e$EPOCHS.run.json
    c=$(/usr/bin/python3 -c "import json, sys; print(repr(json.load(open(sys.argv[1]))['constraint']['value']))" "$rj") || { echo "no $rj" >&2; exit 1; } ;;
  *) c=$CAND ;;
esac
extra=(); m=um
[ "$MODE" = umap ] && { m=umap; extra=(-score-init magnitude -keep 0.8); }
data=$OUT/data/train-subset-$S
mkdir -p "$OUT/data"
if [ ! -f "$data.json" ]; then
  (cd "$H/../.." && go build -o "$OUT/dumpdata" ./scripts/peer/dumpdata) || exit 1
  nice -n 5 "$OUT/dumpdata" -data "$RUNS/data/train-subset-$S" -preprocess "${final%.onnx}.preprocess.json" -out "$data" || exit 1
fi
U=$OUT/seed-$S/$MODE
name=peer-$MODE-$CAND-e$EPOCHS
# ORDER=1: the peer takes oodguard's own data order (scripts/peer/order) instead of torch's
oflag=()
if [ "${ORDER:-}" = 1 ]; then
  name=$name-oodguardorder; of=$OUT/data/order-$S-e$EPOCHS.txt
  n=$(/usr/bin/python3 -c "import json, sys; print(len(json.load(open(sys.argv[1]))['labels']))" "$data.json" 2>/dev/null || echo 5000)
  [ -f "$of" ] || (cd "$H/../.." && go run ./scripts/peer/order -seed "$S" -n "$n" -epochs "$EPOCHS" > "$of.tmp" && mv "$of.tmp" "$of") || exit 1
  oflag=(-order "$of")
fi
mkdir -p "$U"
if [ ! -f "$U/$name.onnx" ]; then
  cmd=(nice -n 5 /usr/bin/python3 "$H/um_peer.py" -mode "$m" -model "$final" -data "$data.f32"
       -constraint "$c" -epochs "$EPOCHS" -lr 0.1 -batch 128 -seed "$S" "${extra[@]}" "${oflag[@]}" -check-ort "$CHECKBIN" -out "$U/$name.onnx")

  echo "${cmd[*]}" > "$U/$name.cmd"
  t0=$(date +%s)
  "${cmd[@]}" > "$U/$name.log" 2>&1
  echo "rc=$? wall=$(( $(date +%s) - t0 ))s" | tee "$U/$name.wall"
fi
[ -f "$U/$name.onnx" ] || exit 1
RUNS=$RUNS VAL=1 "$H/../memorisation/eval_cifar.sh" "$U/$name.onnx"
RUNS=$RUNS "$H/../memorisation/eval_cifar.sh" "$U/$name.onnx"
RUNS=$RUNS TRAINACC=$S "$H/../memorisation/eval_cifar.sh" "$U/$name.onnx"

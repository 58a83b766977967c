#!/bin/bash
# `make reproduce` (REPRODUCE=memorisation, the default): issue #14's memorisation regime end to
# end, from the shared data to the tables of docs/memorisation.md and docs/memorisation-cifar.md,
# with oodguard's own commands (train, eval, unleash) and the committed scripts beside this one.
#
#   Fashion-MNIST: cnn28 (width 32) on a seeded 10,000-image subset, no augmentation, 60 epochs;
#     every epoch evaluated on MNIST-test, CIFAR-10, Tiny ImageNet (gray) and noise; best epoch
#     chosen on MNIST-val; UM and UMAP (10 epochs, official lr, grid constraint), the c = 0
#     control, weight interpolation final <-> best epoch.
#   CIFAR-10: ResNet-8 (width 16) on a seeded 5,000-image subset, no augmentation, 80 epochs;
#     every epoch evaluated on Tiny ImageNet, MNIST, Fashion-MNIST (colour) and noise; best epoch
#     chosen on Tiny ImageNet-val; UM, UMAP (magnitude init) and UMAP (the official random init),
#     10 epochs at the official lr, at the official estimate and at the best epoch's loss.
#
# Seeds 1, 2, 3 (REPRODUCE_SEEDS). Everything goes under OUT (.cache/reproduce/memorisation or
# REPRODUCE_OUT): per dataset the data splits, every checkpoint and report, and summary/ (tables.md,
# CSVs, the per-epoch plot); OUT/results.md gathers both tables and OUT/times.tsv the wall time of
# every phase, summed over interrupted and resumed runs. Interrupted, it resumes: a finished step (a checkpoint's report, a trained seed,
# an unleashed model) is not run again, and `oodguard train`/`unleash` continue inside a run from
# their last epoch's state (-resume).
#
# Usage: scripts/memorisation/regime.sh [full|smoke|densenet]
#   smoke: one seed, 3 training epochs on a few hundred images, 1 unleash epoch, 200 images per
#          evaluation set: checks that every step runs, in minutes (its numbers mean nothing).
#   densenet: the CIFAR-10 half with the paper's architecture reduced to fit 2 cores
#          (DenseNet-BC-22 on 2,000 images; make reproduce REPRODUCE=memorisation-densenet).
# Needs bin/oodguard (make build), ONNXRUNTIME_LIB, Go, and Debian's python3 with numpy, PIL,
# matplotlib, onnx and torch at /usr/bin/python3 (make reproduce installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
H=$ROOT/scripts/memorisation
SIZE=${1:-full}
case $SIZE in
  full) FM_EPOCHS=60 FM_LIMIT=10000 CF_EPOCHS=80 CF_LIMIT=5000 CF_VAL_LIMIT=2000 UM_EPOCHS=10
        FM_EVAL_LIMIT=0 CF_EVAL_LIMIT=2000 ALPHAS="0.00 0.10 0.20 0.30 0.40 0.50 0.60 0.70 0.80 0.90 1.00"
        seeds_default=1,2,3 ;;
  smoke) FM_EPOCHS=3 FM_LIMIT=600 CF_EPOCHS=3 CF_LIMIT=300 CF_VAL_LIMIT=200 UM_EPOCHS=1
         FM_EVAL_LIMIT=200 CF_EVAL_LIMIT=200 ALPHAS="0.00 1.00" seeds_default=1 ;;
  # the paper's architecture, reduced until it memorises on 2 cores: DenseNet-BC depth 22 (k = 12)
  # on 2,000 CIFAR-10 images; every 5th epoch evaluated on the test sets (1,000 images a set)
  densenet) CF_ARCH="-arch densenet -depth 22" CF_EPOCHS=80 CF_LIMIT=2000 CF_VAL_LIMIT=1000 UM_EPOCHS=10
            CF_EVAL_LIMIT=1000 CF_EVERY=5 seeds_default=1,2,3 REPRODUCE_ONLY=${REPRODUCE_ONLY:-cifar10} ;;
  *) echo "regime.sh: unknown size $SIZE (want full, smoke or densenet)" >&2; exit 2 ;;
esac
OUT=$(realpath -m "${REPRODUCE_OUT:-.cache/reproduce/memorisation$([ "$SIZE" != full ] && echo "-$SIZE")}")
SRC=$(realpath -m "${REPRODUCE_DATA:-../shared/data}")
SEEDS=${REPRODUCE_SEEDS:-$seeds_default}
ONLY=${REPRODUCE_ONLY:-fashion-mnist,cifar10}
seeds=${SEEDS//,/ }
for sub in fashion-mnist mnist cifar10 tiny-imagenet; do
  [ -e "$SRC/$sub" ] || { echo "regime.sh: the shared data folder $SRC lacks $sub (set REPRODUCE_DATA)" >&2; exit 2; }
done
[ -x bin/oodguard ] || { echo "regime.sh: bin/oodguard missing (make build)" >&2; exit 2; }
[ -f "${ONNXRUNTIME_LIB:-}" ] || { echo "regime.sh: ONNXRUNTIME_LIB does not name the ONNX Runtime library (make ort)" >&2; exit 2; }
PY=/usr/bin/python3
$PY -c 'import numpy, PIL, matplotlib, onnx, torch' || { echo "regime.sh: $PY lacks numpy, PIL, matplotlib, onnx or torch (Debian: python3-numpy python3-pil python3-matplotlib python3-onnx python3-torch)" >&2; exit 2; }
export SRC SEEDS ONNXRUNTIME_LIB BIN=$ROOT/bin/oodguard
mkdir -p "$OUT"
times=$OUT/times.tsv
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
say() { local e=$(( $(date +%s) - start )); printf '[%d:%02d:%02d] %s\n' $((e/3600)) $((e/60%60)) $((e%60)) "$*"; }
# times.tsv holds one line per phase: its wall seconds summed over every run that worked on it
# (an interrupted run's share is kept to within 30 s by a ticker), and whether it finished. A
# phase that finished before is checked again (it finds its work done) without adding time.
record() { # NAME SECONDS STATE
  local tmp=$times.tmp.$BASHPID
  { printf 'phase\tseconds\tstate\tcommit\n'; [ -f "$times" ] && awk -F'\t' -v n="$1" 'NR > 1 && $1 != n' "$times"
    printf '%s\t%d\t%s\t%s\n' "$1" "$2" "$3" "$commit"; } > "$tmp"
  mv "$tmp" "$times"
}
phase() { # NAME CMD...
  local name=$1; shift
  local prev=0 state=new
  if [ -f "$times" ]; then
    prev=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$times"); prev=${prev:-0}
    state=$(awk -F'\t' -v n="$name" '$1 == n {print $3}' "$times"); state=${state:-new}
  fi
  say "$name: start$([ "$state" = running ] && echo " (resumed after ${prev}s)")$([ "$state" = done ] && echo " (done before: checking)")"
  local t0=$(date +%s) ticker=
  if [ "$state" != done ]; then
    ( while sleep 30; do record "$name" $(( prev + $(date +%s) - t0 )) running; done ) &
    ticker=$!
  fi
  "$@" || { local rc=$?; [ -n "$ticker" ] && kill $ticker; say "$name: FAILED (exit $rc)"; exit $rc; }
  local dt=$(( $(date +%s) - t0 ))
  if [ -n "$ticker" ]; then
    kill $ticker; wait $ticker 2>/dev/null || true
    record "$name" $(( prev + dt )) done
  fi
  say "$name: done in ${dt}s"
}
go build -o "$OUT/subset" ./scripts/memorisation/subset

# train_and_eval TRAINSCRIPT EVALSCRIPT: trains the seeds one after another while eval_loop.sh
# evaluates each checkpoint as it appears (the two share the 2 cores).
train_and_eval() {
  EVAL=$2 "$H/eval_loop.sh" $seeds > "$RUNS/eval-loop.log" 2>&1 &
  local ev=$! rc=0
  "$1" $seeds || rc=$?
  wait $ev || rc=$?
  return $rc
}

fashion() {
  export RUNS=$OUT/fashion-mnist LIMIT=$FM_EVAL_LIMIT TRAIN_LIMIT=$FM_LIMIT
  local D=$RUNS/data
  mkdir -p "$D"
  fm_data() {
    for S in $seeds; do
      [ -s "$D/subset-$S.txt" ] && continue
      "$OUT/subset" -len 55000 -n "$FM_LIMIT" -seed "$S" > "$D/subset-$S.txt.tmp" || return
      mv "$D/subset-$S.txt.tmp" "$D/subset-$S.txt"
    done
    $PY "$H/splits.py" "$SRC" "$D"
  }
  phase "fashion-mnist data" fm_data
  fm_train() ( export EPOCHS=$FM_EPOCHS; train_and_eval "$H/train_seeds.sh" "$H/eval_models.sh" )
  phase "fashion-mnist train+eval" fm_train
  for S in $seeds; do
    local T=$RUNS/seed-$S/train final best
    final=$(printf '%s/epoch-%03d.onnx' "$T" "$FM_EPOCHS")
    best=$T/$($PY "$H/summarise.py" best "$S").onnx
    phase "fashion-mnist seed $S final/best val+trainacc" bash -c "VAL=1 '$H/eval_models.sh' '$final' '$best' && TRAINACC=$S '$H/eval_models.sh' '$final' '$best'"
    phase "fashion-mnist seed $S um grid" env EPOCHS=$UM_EPOCHS "$H/um_seed.sh" "$S" um
    phase "fashion-mnist seed $S um c=0 control" env EPOCHS=$UM_EPOCHS CONSTRAINT=0 "$H/um_seed.sh" "$S" um
    phase "fashion-mnist seed $S umap grid" env EPOCHS=$UM_EPOCHS "$H/um_seed.sh" "$S" umap
    phase "fashion-mnist seed $S interpolation" env ALPHAS="$ALPHAS" "$H/interp_seed.sh" "$S"
  done
  phase "fashion-mnist summary" $PY "$H/summarise.py" report "$RUNS/summary"
}

cifar() {
  export RUNS=$OUT/cifar10 LIMIT=$CF_EVAL_LIMIT TRAIN_LIMIT=$CF_LIMIT
  local D=$RUNS/data
  mkdir -p "$D"
  cf_data() {
    if [ ! -f "$D/.halves-complete" ]; then
      rm -rf "$D/cifar-val-5000" "$D/cifar-test-5000" "$D/tin-val-5000" "$D/tin-test-5000"
      "$H/cifar_halves.sh" || return
      touch "$D/.halves-complete"
    fi
    for S in $seeds; do
      [ -s "$D/subset-$S.txt" ] && continue
      "$OUT/subset" -data "$SRC/cifar10/train.tar#train" -n "$CF_LIMIT" -seed "$S" > "$D/subset-$S.txt.tmp" || return
      mv "$D/subset-$S.txt.tmp" "$D/subset-$S.txt"
    done
    $PY "$H/cifar_splits.py" "$SRC" "$D"
  }
  phase "cifar10 data" cf_data
  cf_train() ( export EPOCHS=$CF_EPOCHS VAL_LIMIT=$CF_VAL_LIMIT ARCH_FLAGS=${CF_ARCH:-} EVERY=${CF_EVERY:-1}; train_and_eval "$H/cifar_train_seeds.sh" "$H/eval_cifar.sh" )
  phase "cifar10 train+eval" cf_train
  # two unleash streams at once (um_cifar_queue.sh evaluates final and best first), then the third
  cf_unleash() (
    export EPOCHS=$UM_EPOCHS
    "$H/um_cifar_queue.sh" um "$seeds" > "$RUNS/queue-um.log" 2>&1 &
    local a=$! rc=0
    "$H/um_cifar_queue.sh" umap "$seeds" > "$RUNS/queue-umap.log" 2>&1 || rc=$?
    wait $a || rc=$?
    return $rc
  )
  phase "cifar10 um + umap" cf_unleash
  phase "cifar10 umap-kaiming" env EPOCHS=$UM_EPOCHS "$H/um_cifar_queue.sh" umap-kaiming "$seeds"
  phase "cifar10 summary" $PY "$H/summarise_cifar.py" report "$RUNS/summary"
}

say "memorisation regime ($SIZE): seeds $seeds; datasets $ONLY; output in $OUT; commit $commit"
case ",$ONLY," in *,fashion-mnist,*) fashion ;; esac
case ",$ONLY," in *,cifar10,*) cifar ;; esac

{
  echo "# The memorisation regime ($SIZE), commit $commit"
  echo
  echo "Written by scripts/memorisation/regime.sh on $(date -u +%FT%TZ), $(nproc) CPUs; this run took $(( $(date +%s) - start )) s."
  echo
  echo "Wall time of each phase, summed over the runs that worked on it (times.tsv):"
  echo
  echo "| phase | seconds | state |"
  echo "|---|---|---|"
  awk -F'\t' 'NR > 1 {printf "| %s | %d | %s |\n", $1, $2, $3; t += $2} END {printf "| total | %d (%.1f h) | |\n", t, t / 3600}' "$times"
  for ds in fashion-mnist cifar10; do
    [ -f "$OUT/$ds/summary/tables.md" ] || continue
    echo; echo "## $ds"; echo
    cat "$OUT/$ds/summary/tables.md"
  done
} > "$OUT/results.md"
say "done: $OUT/results.md, $OUT/times.tsv"

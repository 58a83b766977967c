#!/bin/bash
# Trains the memorising cnn28 of docs/memorisation.md, one seed after another (never two at once).
# Usage: scripts/memorisation/train_seeds.sh 1 2 3
# A seed whose train.wall says rc=0 is skipped; an interrupted seed continues from its last
# epoch (train -resume; the runs of 2026-12-06 predate it and were not interrupted).
# EPOCHS (60), TRAIN_LIMIT (10000: the seeded training subset), SRC (../shared/data) pass through.
set -u
RUNS=${RUNS:-/root/oodguard-runs/fmnist-mem}
BIN=${BIN:-/root/oodguard-runs/bin/oodguard}
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-/root/oodguard-runs/bin/libonnxruntime.so}
D=$RUNS/data
H=$(cd "$(dirname "$0")" && pwd)
. "$H/train_loop.sh"
train_cmd() { # SEED OUT
  local S=$1 out=$2
  cmd=(nice -n 5 "$BIN" train -arch cnn28 -width 32 -data "$D/fmnist-train-55000/train-images-idx3-ubyte.gz"
       -limit "${TRAIN_LIMIT:-10000}" -seed "$S" -crop 0 -flip=false -epochs "${EPOCHS:-60}" -lr 0.1 -batch 128
       -id-val "$D/fmnist-val-5000/train-images-idx3-ubyte.gz" -ood-val "$D/mnist-val-5000/t10k-images-idx3-ubyte.gz"
       -resume -out "$out")
}
train_seeds "$@"

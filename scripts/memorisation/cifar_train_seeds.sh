#!/bin/bash
# CIFAR-10 memorisation regime (#14, docs/memorisation-cifar.md): ResNet-8 (w16) on a seeded
# random 5,000 of CIFAR-10 train, no augmentation, 80 epochs, one seed after another.
# Usage: scripts/memorisation/cifar_train_seeds.sh 1 2 3 (after cifar_halves.sh). An interrupted
# seed continues from its last epoch (train -resume; the runs of 2026-12-06 predate it and
# were not interrupted). EPOCHS (80), TRAIN_LIMIT (5000), VAL_LIMIT (2000: validation images of each
# set per epoch), SRC (../shared/data) and ARCH_FLAGS (default "-arch resnet -width 16 -blocks
# 1,1,1"; "-arch densenet -depth 22" for the DenseNet-BC regime) pass through.

set -u
RUNS=${RUNS:-/root/oodguard-runs/cifar-mem}
BIN=${BIN:-$PWD/bin/oodguard}
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$PWD/.cache/onnxruntime/1.24.1/linux-amd64/libonnxruntime.so}
D=$RUNS/data
H=$(cd "$(dirname "$0")" && pwd)
. "$H/train_loop.sh"
train_cmd() { # SEED OUT
  local S=$1 out=$2
  # shellcheck disable=SC2206 # ARCH_FLAGS is a list of flags
  arch=(${ARCH_FLAGS:--arch resnet -width 16 -blocks 1,1,1})
  cmd=(nice -n 5 "$BIN" train "${arch[@]}" -data "${SRC:-../shared/data}/cifar10/train.tar#train"
       -limit "${TRAIN_LIMIT:-5000}" -seed "$S" -crop 0 -flip=false -epochs "${EPOCHS:-80}" -lr 0.1 -batch 128 -threads 2
       -id-val "$D/cifar-val-5000" -ood-val "$D/tin-val-5000" -val-limit "${VAL_LIMIT:-2000}"
       -resume -out "$out")
}
train_seeds "$@"

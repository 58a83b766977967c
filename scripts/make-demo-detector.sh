#!/usr/bin/env bash
# Remakes testdata/demo/cnn28-mds.{onnx,calibration.json,candidates.csv}: the detector that
# `oodguard choose` picks for the test CNN, which `make demo` compares with the plain energy
# score. Needs ../shared/data, bin/oodguard (make build) and Debian's python3-numpy.
#   fit:     a seeded random 10,000 of Fashion-MNIST train images 0..54999
#   id-val:  Fashion-MNIST train images 55000..59999 (held out; the threshold is fitted here)
#   ood-val: MNIST test images 0..4999 (the one family the choice sees)
#   test:    Tiny ImageNet val_5000..9999 and CIFAR-10 test (reported, never used to choose)
# 2,000 images of each validation and test set (-limit, seed 1). About 2-3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
splits=${SPLITS:-.cache/demo-detector/data}
[ -d "$splits/fmnist-val-5000" ] || /usr/bin/python3 scripts/memorisation/splits.py "$data" "$splits"
out=.cache/demo-detector/out
rm -rf "$out"
bin/oodguard choose -model testdata/models/cnn28.onnx \
  -fit "$splits/fmnist-train-55000/train-images-idx3-ubyte.gz" -fit-limit 10000 \
  -id-val "$splits/fmnist-val-5000/train-images-idx3-ubyte.gz" \
  -ood-val "$splits/mnist-val-5000/t10k-images-idx3-ubyte.gz" \
  -test "$splits/tin-test-5000" -test "$data/cifar10/test.tar#test" \
  -limit 2000 -threads 1 -out "$out"
cp "$out/model.onnx" testdata/demo/cnn28-mds.onnx
cp "$out/candidates.csv" testdata/demo/cnn28-mds.candidates.csv
/usr/bin/python3 - "$out/calibration.json" testdata/demo/cnn28-mds.calibration.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["model_file"] = "cnn28-mds.onnx"
with open(sys.argv[2], "w") as f:
    json.dump(c, f, indent=2)
    f.write("\n")
PY
echo "wrote testdata/demo/cnn28-mds.onnx, .calibration.json and .candidates.csv"

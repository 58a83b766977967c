#!/usr/bin/env bash
# make demo's second part: the sample frames scored by the plain model (energy) and by the
# detector `oodguard choose` picked for it (testdata/demo/cnn28-mds.*, made by
# scripts/make-demo-detector.sh), each at its calibrated threshold (95% ID TPR on
# Fashion-MNIST), with how many in- and out-of-distribution frames each flags.
set -euo pipefail
cd "$(dirname "$0")/.."
count() { # score's table: decision is the next-to-last column, the file the last
  awk 'NR > 1 && $(NF-1) == "ood" { n = $NF; sub(/.*\//, "", n); split(n, p, "-")
         if (p[1] == "id") id++; else if (p[2] == "mnist") mn++; else tin++ }
       END { printf "flags %d of 10 OOD frames (MNIST %d/5, Tiny ImageNet %d/5) and %d of 10 ID frames\n", mn + tin, mn, tin, id }'
}
echo "== the same 20 frames, scored two ways, each thresholded at 95% ID true-positive rate on Fashion-MNIST"
echo "   (energy: the committed calibration, 10,000 training images; the detector: 2,000 held-out images):"
printf "   plain energy score (testdata/models/cnn28.onnx):        "
bin/oodguard score -model testdata/models/cnn28.onnx -calibration testdata/models/cnn28.calibration.json testdata/frames 2>/dev/null | count
printf "   chosen detector, Mahalanobis in the graph (cnn28-mds): "
bin/oodguard score -model testdata/demo/cnn28-mds.onnx -calibration testdata/demo/cnn28-mds.calibration.json testdata/frames 2>/dev/null | count
echo "   (oodguard choose picked it on MNIST validation images; the Tiny ImageNet frames are of a family no choice saw."
echo "    testdata/demo/cnn28-mds.candidates.csv has every candidate; bundle it like any model: oodguard bundle -model testdata/demo/cnn28-mds.onnx ...)"

// Package unleash runs Unleashing Mask (Zhu et al., ICML 2023) on ONNX image classifiers, with
// training on GoMLX: UMAP learns a per-layer pruning mask over frozen weights, UM fine-tunes the
// dense weights, both under the flooding loss |CE - c| + c whose level c EstimateConstraint
// estimates. The result is written back into the ONNX file (Trainer.Export), which the edge
// daemon runs with ONNX Runtime; the daemon never links this package or GoMLX.
//
// # Pieces
//
//   - unleash/onnxgraph imports the classifier into a GoMLX graph (Conv, BatchNormalization in
//     inference and training mode, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm,
//     MatMul, Add/Sub/Mul/Div, Reshape, Pad, Identity, Dropout, Constant; any other op is an
//     error naming the op and the node) and writes initializers back, byte for byte identical
//     to the input file except the replaced values.
//   - unleash/mask is plain Go: the per-layer top-k mask (quickselect over (|score|, index)
//     keys), the keep-count rule and the score initialisations.
//   - Trainer (New, Step, TrainEpoch, Gradients, Logits, MeanCE, Export) runs UMAP or UM;
//     EstimateConstraint estimates c; CosineLR is the schedule; Slices batches in-memory data.
//   - unleash/arch builds freshly initialised classifiers (the small CNN and a CIFAR-style
//     ResNet) as ONNX files, and unleash/train trains them from scratch with the Trainer (UM,
//     constraint 0), writing an ONNX checkpoint per epoch with its accuracy and FPR95
//     (oodguard train).
//
// # What follows the official code (tmlr-group/Unleashing-Mask at 1640ce6)
//
//   - Masked layers: every Conv, Gemm and MatMul weight, including the first conv and the
//     classifier; biases and BatchNorm are not masked (method doc §2.1).
//   - Options.Keep is the fraction KEPT (prune_rate): a layer of n weights keeps exactly
//     n - int((1-Keep)*n), the int() truncation done in float64 as Python does (§2.2, §8.2).
//     Ties in |score| are broken by position (the earlier entry is pruned first), so masks are
//     deterministic; the official argsort leaves ties unspecified.
//   - The mask is recomputed from the current scores before every forward pass (train and
//     eval). It is computed in Go between steps, not in the graph.
//   - Straight-through estimator: dL/ds = sign(s) * (dL/dw_eff * w), sign(0) = 0 (§2.2).
//   - UMAP freezes weights and biases (the CIFAR-10 config); only scores train. Weight decay
//     applies to the scores too. BatchNorm runs in train mode and its running stats update
//     (§8.10), and Export writes the updated stats.
//   - UM fine-tunes every float initializer the graph uses as a weight, bias or BatchNorm
//     affine parameter; BatchNorm stats update as above. Non-affine BatchNorm, which PyTorch
//     exports with Constant nodes, stays non-affine.
//   - Loss: flooding on the batch-mean cross-entropy, |CE - c| + c (§3.1); c = 0 is plain CE.
//   - SGD: momentum 0.9, coupled weight decay 1e-4, no dampening, no Nesterov (the code's
//     default, not the paper's "Nesterov", §8.6); lr 0.1 with per-epoch cosine decay (§4.1):
//     Step takes the rate, Trainer.LR(epoch) gives the schedule's.
//   - Score initialisation: kaiming-uniform U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (§2.2), seeded
//     (PCG, one stream per layer; the official code sets no seed). mask.Magnitude (|w|) is an
//     option the official code lacks: on small networks a random 20% pruning ruins accuracy
//     before the first step (field notes).
//   - EstimateConstraint: a random per-layer mask keeping 0.965, eval mode, the image-weighted
//     mean CE over the given batches (§3.2). Feed it the augmented training set to match the
//     code; augmentation is the caller's.
//
// # What differs, and what is not here
//
//   - Dropout: ONNX models exported in eval mode have none, so training runs without the
//     official dropout 0.3 (§4.1). A model exported in training mode (TrainingMode.PRESERVE after
//     model.train()) trains too, its Dropout passed through as well; Export writes it in
//     inference mode (onnxgraph.Model.MarshalInference: BatchNorm on the running statistics as
//     training updated them, Dropout off).
//   - Models whose BatchNorm was folded into the convolutions (testdata/models) train with
//     fixed normalisation: there are no batch statistics left. Export with
//     training=TrainingMode.PRESERVE to keep BatchNorm (testdata/unleash/make_reference.py).
//   - The CIFAR-100 UMAP config trains weights and scores together (freeze_weights: False);
//     that variant is not offered. Global (model-wise) top-k is not offered either (unused by
//     the official configs).
//   - Options.BatchNormEval keeps BatchNorm in inference mode while training (not official).
//
// # Backends
//
// NewBackend("") is GoMLX's pure-Go backend ("go", github.com/gomlx/compute) with op scheduling
// set to sequential: with its default parallel scheduling it deadlocks on 2 cores (every
// worker of the 2-slot pool runs an op that waits in workerspool.WaitToStart for a free slot;
// seen with compute v0.1.6). It needs no
// native library but is slow (tens of images/s for cnn28 at batch 64). Training graphs build
// BatchNorm from plain ops, so the backend's missing BatchNormForTraining does not matter and
// gradients flow through the batch statistics.
//
// NewBackend("onnx") runs the same graphs on ONNX Runtime (github.com/gomlx/compute-onnx) with
// the library the rest of oodguard uses; it never downloads one. ONNX Runtime runs GoMLX's
// kernel gradient of a convolution (a convolution with the batch as channels and the output
// gradient as an image-sized kernel) three to six times slower than the forward convolution,
// and has neither the input-dilated convolution nor the interior padding that the usual gradients
// of strided convolutions and strided average pooling need. With ConvGradientAuto the training
// graphs there give convolutions explicit gradients (matrix products per kernel tap, per
// kernel row or over the input's im2col matrix, whichever moves fewer bytes, for the kernel; for
// the input of a strided convolution, one stride-1 convolution per phase of the
// stride; see onnxgraph/convgrad.go), give max pools that tile their input a gradient of
// products (onnxgraph/poolgrad.go) and BatchNorm its closed-form gradient
// (onnxgraph/bngrad.go), and compute a strided average pool by a reshape,
// all exact. ONNX Runtime prints "The requested API version [26] is not available" to stderr
// while the backend negotiates the API version of ORT 1.24 (with fprintf, before any logger
// exists); NewBackend passes stderr through a filter that drops those lines while it loads the
// library (ortnoise_linux.go).
//
// NewBackend("xla:...") exists only in builds with the "xla" tag, and needs the PJRT plugin
// installed beforehand.
//
// Graphs are compiled once per batch size: keep the batch size fixed (drop or pad the last
// batch) to avoid recompiling.
//
// # Measured (2-core machine, shared with other jobs, so ranges are wide)
//
// Agreement with PyTorch 1.13 on the three reference models (testdata/unleash/*.ref.json): logits,
// flooded loss, score and weight gradients, and parameters, BatchNorm running stats and masks
// after 3 SGD steps of UMAP and of UM within 4e-6 relative on the go and onnx backends (tests
// ask 1e-4). Imported logits vs ONNX Runtime: within 3e-7 relative.
//
// BenchmarkUMAPStep (batch 64, UMAP step), three make bench runs on the quiet machine at
// 014c8f0: onnx backend 3.3-3.6k img/s on cnn28 and 666-718 img/s on the CIFAR ResNet w16,
// PyTorch 1.13 with 2 threads (testdata/unleash/bench_torch.py, the same workload with BatchNorm
// kept) 4.0-4.5k and 1,032-1,181 img/s in the same runs: 0.74-0.89 and 0.61-0.65. Earlier, on the
// shared machine, the go backend was 20-40x slower than the onnx one.
package unleash

// Package runtime runs ONNX image classifiers with ONNX Runtime through
// github.com/yalue/onnxruntime_go.
//
// It finds and loads the ONNX Runtime shared library (FindLibrary, Init), opens a model and
// checks that it is an image classifier (one float32 NCHW input, one [N,K] float32 logits
// output, and optionally one [N] float32 score output that the graph computes next to the
// logits, such as a post-hoc detector's), and runs fixed-size batches through tensors that are
// allocated once and reused, so that a running Runner makes no allocation per call.
//
// The package name clashes with the standard library's runtime; importers alias one of them,
// e.g. ort "github.com/oodguard/oodguard/runtime".
//
// The ONNX Runtime environment is process-wide: Init loads one library once, and every
// Classifier shares it.
package runtime

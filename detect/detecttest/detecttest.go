// Package detecttest writes post-hoc detectors into the repository's test models, for the tests
// of the packages that run or score such models (runtime, calibrate, guard, cmd). It fits on the
// PyTorch features of testdata/detect, so a test needs no dataset; the host-side reference
// scores come from the detector's own float64 Score on features that ONNX Runtime extracted.
package detecttest

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/detect"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// Written is a detector written into a copy of a test model.
type Written struct {
	Path     string          // the written model, in a test's temporary folder
	Base     *detect.Model   // the test model it was written into
	Detector detect.Detector // the fitted detector
	Score    score.Spec      // the score that reads it: graph for a feature method, energy for a shaping one
}

// Write fits method on cnn28's ID features (600 training images, their labels) and writes it
// into a copy of testdata/models/cnn28.onnx in a temporary folder. Methods: "knn" (k = 5),
// "vim" (dimension 32 of 64), "mds", "react" (p = 90), and "knn10k" (k = 50 in a bank of
// detect.DefaultBankSize vectors, the fit features passed over repeatedly to fill it: the size
// choose writes by default, for benchmarks).
func Write(tb testing.TB, method string) Written {
	tb.Helper()
	root := runtimetest.RepoRoot(tb)
	m, err := detect.Load(filepath.Join(root, "testdata", "models", "cnn28.onnx"))
	if err != nil {
		tb.Fatal(err)
	}
	feats := readF32(tb, filepath.Join(root, "testdata", "detect", "cnn28.fit.f32"))
	lb, err := os.ReadFile(filepath.Join(root, "testdata", "detect", "cnn28.fit.labels"))
	if err != nil {
		tb.Fatal(err)
	}
	labels := make([]int, len(lb))
	for i, b := range lb {
		labels[i] = int(b)
	}
	if len(feats) != len(labels)*m.Head.Dim {
		tb.Fatalf("cnn28.fit.f32 has %d values for %d labels of %d features", len(feats), len(labels), m.Head.Dim)
	}
	reps := 1
	if method == "knn10k" {
		reps = (detect.DefaultBankSize + len(labels) - 1) / len(labels)
	}
	pass := func(yield func([]float32, []int) error) error {
		for range reps {
			if err := yield(feats, labels); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := detect.Fit(&m.Head, pass, detect.FitOptions{Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	var d detect.Detector
	switch method {
	case "knn":
		d, err = f.KNN(5)
	case "knn10k":
		d, err = f.KNN(50)
	case "vim":
		d, err = f.ViM(32)
	case "mds":
		d, err = f.Mahalanobis()
	case "react":
		d, err = f.ReAct(90)
	default:
		tb.Fatalf("detecttest: unknown method %q", method)
	}
	if err != nil {
		tb.Fatal(err)
	}
	data, err := m.Write(d)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "cnn28."+method+".onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	rec, err := json.Marshal(d.Spec())
	if err != nil {
		tb.Fatal(err)
	}
	sp := score.Spec{Kind: score.KindGraph, Output: detect.ScoreOutput, Name: d.Name(), Detector: rec}
	if d.Shaping() {
		sp = score.Spec{Kind: score.KindEnergy, Temperature: 1, Name: d.Name(), Detector: rec}
	}
	return Written{Path: path, Base: m, Detector: d, Score: sp}
}

// Reference returns the host-side reference scores of n preprocessed images x: their features
// extracted by ONNX Runtime from the base model, scored by the detector in float64.
func (w Written) Reference(tb testing.TB, x []float32, n int) []float64 {
	tb.Helper()
	runtimetest.Setup(tb)
	ex, err := w.Base.NewExtractor(n, ort.Options{IntraOpThreads: 1})
	if err != nil {
		tb.Fatal(err)
	}
	defer ex.Close()
	if len(x) != len(ex.Input()) {
		tb.Fatalf("detecttest: %d input values for %d images of %d", len(x), n, len(ex.Input())/n)
	}
	copy(ex.Input(), x)
	_, feats, err := ex.Run()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := w.Detector.Score(feats, n)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Tolerance is how close a graph score under ONNX Runtime (float32) must be to the reference:
// 1e-5 relative to max(1, |reference|).
func Tolerance(ref float64) float64 { return 1e-5 * math.Max(1, math.Abs(ref)) }

func readF32(tb testing.TB, path string) []float32 {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

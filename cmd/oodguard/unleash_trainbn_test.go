package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset/datasettest"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestUnleashTrainingModeInput runs `oodguard unleash` (UMAP and UM, a few steps) on a model
// exported in training mode (MobileNetV2: BatchNorm with statistics outputs and a training-mode
// Dropout): it exits 0 and writes an inference-mode model that runtime opens, checked against
// GoMLX by the command itself (the record's export check). `inspect -inference-out` converts
// the same model without training.
func TestUnleashTrainingModeInput(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	model := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", "mobilenetv2.trainbn.onnx")
	if _, err := ort.Open(model, ort.Options{}); !errors.Is(err, ort.ErrTrainingBatchNorm) {
		t.Fatalf("runtime opens the training-mode model: %v", err)
	}
	train := datasettest.WriteCIFAR(t, dir, "train", 48)
	for _, mode := range []string{"umap", "um"} {
		out := filepath.Join(dir, mode+".onnx")
		code, stdoutS, errOut := runCLI(t, "unleash", "-mode", mode, "-model", model, "-preset", "cifar10", "-data", train,
			"-out", out, "-epochs", "1", "-batch", "16", "-lr", "0.05", "-seed", "3", "-keep-worse")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", mode, code, stdoutS, errOut)
		}
		m, err := onnxgraph.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.InTrainingMode() {
			t.Errorf("%s: written model still in training mode: %v %v", mode, m.TrainingBatchNorm, m.TrainingDropout)
		}
		clf, err := ort.Open(out, ort.Options{IntraOpThreads: 1})
		if err != nil {
			t.Fatalf("%s: runtime refuses the written model: %v", mode, err)
		}
		clf.Close()
		rec := readRecord(t, strings.TrimSuffix(out, ".onnx")+".run.json")
		if rec.ExportCheck == nil {
			t.Errorf("%s: no export check recorded", mode)
		} else {
			t.Logf("%s: ONNX Runtime vs GoMLX on the written model: %.2g", mode, *rec.ExportCheck)
		}
	}

	conv := filepath.Join(dir, "converted.onnx")
	code, _, errOut := runCLI(t, "inspect", "-inference-out", conv, model)
	if code != 0 {
		t.Fatalf("inspect -inference-out: exit %d: %s", code, errOut)
	}
	clf, err := ort.Open(conv, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("runtime refuses the converted model: %v", err)
	}
	clf.Close()
	// An inference-mode model is not rewritten.
	evalModel := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", "mobilenetv2.onnx")
	if code, _, errOut := runCLI(t, "inspect", "-inference-out", filepath.Join(dir, "x.onnx"), evalModel); code == 0 || !strings.Contains(errOut, "inference mode already") {
		t.Errorf("inspect -inference-out on an eval-mode model: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.onnx")); err == nil {
		t.Errorf("inspect -inference-out wrote an eval-mode model")
	}
}

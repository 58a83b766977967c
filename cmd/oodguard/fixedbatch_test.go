package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// fixedBatchModel writes the test CNN with its batch dimension fixed at 1 (an export without
// dynamic axes) and its preprocessing spec beside it.
func fixedBatchModel(t *testing.T, dir string) string {
	t.Helper()
	root := runtimetest.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "testdata", "models", "cnn28.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, v := range append(append([]*onnx.ValueInfoProto{}, m.Graph.Input...), m.Graph.Output...) {
		dim := v.GetType().GetTensorType().GetShape().GetDim()
		if len(dim) == 0 {
			continue
		}
		dim[0].Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: 1}
	}
	if b, err = proto.Marshal(&m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cnn28b1.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile(filepath.Join(root, "testdata", "models", "cnn28.preprocess.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cnn28b1.preprocess.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFixedBatchModel: a model whose input fixes the batch at 1 calibrates, evaluates (ODIN
// included) and scores at the default -batch 64, running batches of 1 and saying so; unleash
// asks for -batch 1 before reading any data and runs with it.
func TestFixedBatchModel(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	model := fixedBatchModel(t, dir)
	id, ood := filepath.Join(dir, "id"), filepath.Join(dir, "ood")
	writeGrayPNGs(t, filepath.Join(id, "a"), 3, 40)
	writeGrayPNGs(t, filepath.Join(id, "b"), 3, 120)
	writeGrayPNGs(t, filepath.Join(ood, "x"), 5, 250)
	cal := filepath.Join(dir, "cal.json")

	code, _, errOut := runCLI(t, "calibrate", "-model", model, "-data", id, "-out", cal)
	if code != 0 {
		t.Fatalf("calibrate: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "fixed batch size of 1") {
		t.Errorf("calibrate does not say it runs batches of 1:\n%s", errOut)
	}
	code, _, errOut = runCLI(t, "eval", "-model", model, "-calibration", cal, "-id", id, "-ood", ood,
		"-scores", "energy,odin", "-out", filepath.Join(dir, "report"))
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, errOut)
	}
	code, out, errOut := runCLI(t, "score", "-model", model, "-calibration", cal, filepath.Join(ood, "x", "000.png"))
	if code != 0 || !strings.Contains(out, "000.png") {
		t.Fatalf("score: exit %d\n%s\n%s", code, out, errOut)
	}

	out1 := filepath.Join(dir, "u.onnx")
	code, _, errOut = runCLI(t, "unleash", "-mode", "umap", "-model", model, "-data", id, "-epochs", "1", "-constraint", "0.1", "-keep-worse", "-out", out1)
	if code != 2 || !strings.Contains(errOut, "-batch 1") {
		t.Fatalf("unleash at the default batch: exit %d, want 2 naming -batch 1\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "unleash", "-mode", "umap", "-model", model, "-data", id, "-batch", "1", "-epochs", "1", "-constraint", "0.1", "-keep-worse", "-out", out1)
	if code != 0 {
		t.Fatalf("unleash -batch 1: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(out1); err != nil {
		t.Fatal(err)
	}
}

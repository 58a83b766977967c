package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/train"
	"github.com/oodguard/oodguard/unleash/train/traintest"
)

// TestTrainThenEval trains the small CNN for two tiny epochs and evaluates its last checkpoint
// with oodguard eval, which finds the preprocessing spec next to it.
func TestTrainThenEval(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	trainSet := traintest.WriteIDX(t, dir, "train", traintest.Squares(256, 4, 28, 1))
	idTest := traintest.WriteIDX(t, dir, "test", traintest.Squares(64, 4, 28, 2))
	oodDir := filepath.Join(dir, "ood")
	os.Mkdir(oodDir, 0o755)
	ood, _ := datasettest.WriteIDX(t, oodDir, "ood", 40, 28, 28)
	out := filepath.Join(dir, "run")

	code, stdout, stderr := runCLI(t, "train", "-arch", "cnn28", "-width", "4", "-data", trainSet, "-id-val", idTest,
		"-ood-val", ood, "-epochs", "2", "-batch", "32", "-lr", "0.05", "-threads", "1", "-out", out)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Log(stdout)
	if !strings.Contains(stdout, "epoch   2/2") || !strings.Contains(stdout, "FPR95") {
		t.Errorf("train printed:\n%s", stdout)
	}
	var log train.Log
	b, err := os.ReadFile(filepath.Join(out, "train.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 2 || log.Runs[1].ValAcc == nil || log.Runs[1].FPR95 == nil || log.WeightDecay != 5e-4 || log.Classes != 4 {
		t.Errorf("train.json: %s", b)
	}
	if _, err := os.Stat(filepath.Join(out, "train.png")); err != nil {
		t.Error(err)
	}
	// best.onnx is the epoch with the lowest validation FPR95 within the accuracy floor.
	bestEpoch := 2
	if r0, r1 := log.Runs[0], log.Runs[1]; *r0.FPR95 < *r1.FPR95 && *r0.ValAcc >= *r1.ValAcc-0.02 {
		bestEpoch = 1
	}
	want := fmt.Sprintf("epoch-%03d.onnx", bestEpoch)
	if fileSHA(t, filepath.Join(out, "best.onnx")) != fileSHA(t, filepath.Join(out, want)) || !strings.Contains(stdout, fmt.Sprintf("best epoch on validation: %d of 2", bestEpoch)) {
		t.Errorf("best.onnx is not %s:\n%s", want, stdout)
	}
	if _, err := os.Stat(filepath.Join(out, "best.preprocess.json")); err != nil {
		t.Error(err)
	}

	code, stdout, stderr = runCLI(t, "eval", "-model", filepath.Join(out, "epoch-002.onnx"), "-id", idTest, "-ood", ood,
		"-scores", "energy", "-out", filepath.Join(dir, "report"))
	if code != 0 {
		t.Fatalf("eval of the checkpoint: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// eval runs the same file on the same data: the same FPR95 and AUROC as the training log.
	last := log.Runs[1]
	for _, v := range []float64{*last.FPR95, *last.AUROC} {
		if s := fmt.Sprintf("%.2f", 100*v); !strings.Contains(stdout, s) {
			t.Errorf("eval printed no %s (train.json):\n%s", s, stdout)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	dir := t.TempDir()
	trainSet := traintest.WriteIDX(t, dir, "train", traintest.Squares(64, 4, 28, 1))
	used := filepath.Join(dir, "used")
	os.Mkdir(used, 0o755)
	os.WriteFile(filepath.Join(used, "train.json"), []byte("{}"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no data", []string{}, 2, "-data is required"},
		{"unknown arch", []string{"-data", trainSet, "-arch", "vgg"}, 2, `unknown -arch "vgg"`},
		{"ood without id", []string{"-data", trainSet, "-ood-val", trainSet}, 2, "-ood-val needs -id-val"},
		{"bad blocks", []string{"-data", trainSet, "-arch", "resnet", "-blocks", "2,x,2"}, 2, "-blocks"},
		{"two blocks", []string{"-data", trainSet, "-arch", "resnet", "-blocks", "2,2"}, 2, "-blocks"},
		{"zero epochs", []string{"-data", trainSet, "-epochs", "0"}, 2, "epochs 0"},
		{"unknown preset", []string{"-data", trainSet, "-preset", "imagenet"}, 2, "unknown -preset"},
		{"prefix twice", []string{"-data", trainSet + "#a", "-data-prefix", "b"}, 2, "not both"},
		{"missing data", []string{"-data", filepath.Join(dir, "nope-images-idx3-ubyte")}, 1, "nope"},
		{"labels beyond classes", []string{"-data", trainSet, "-classes", "3", "-batch", "8", "-out", filepath.Join(dir, "o1")}, 1, "label 3, beyond the 3 classes"},
		{"gray data, RGB model", []string{"-data", trainSet, "-arch", "resnet", "-width", "4", "-batch", "8", "-epochs", "1", "-out", filepath.Join(dir, "o2")}, 0, ""},
		{"used folder", []string{"-data", trainSet, "-batch", "8", "-out", used}, 1, "already holds a training run"},
		{"batch beyond the set", []string{"-data", trainSet, "-batch", "128", "-out", filepath.Join(dir, "o3")}, 1, "fewer than one batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code != 2 {
				runtimetest.Setup(t)
			}
			code, stdout, stderr := runCLI(t, append([]string{"train", "-backend", "go", "-threads", "1"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, want %d with %q\n%s\n%s", code, tc.code, tc.msg, stdout, stderr)
			}
		})
	}
}

// train -arch densenet builds the paper's DenseNet-BC (growth 12 unless -width, -depth, the
// input normalised inside the model, so the cifar10-raw preset by default), trains it and
// writes checkpoints that eval runs.
func TestTrainDenseNet(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	data := datasettest.WriteCIFAR(t, dir, "train", 64)
	out := filepath.Join(dir, "run")
	code, stdout, stderr := runCLI(t, "train", "-arch", "densenet", "-depth", "10", "-data", data,
		"-epochs", "1", "-batch", "16", "-lr", "0.05", "-threads", "1", "-out", out)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var log train.Log
	b, err := os.ReadFile(filepath.Join(out, "train.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.Arch, "densenet") || !strings.Contains(log.Arch, "12") || len(log.Runs) != 1 {
		t.Errorf("train.json arch %q, %d epochs", log.Arch, len(log.Runs))
	}
	spec, err := os.ReadFile(filepath.Join(out, "epoch-001.preprocess.json"))
	if err != nil || !strings.Contains(string(spec), `"std": [
    1,`) {
		t.Errorf("checkpoint spec is not cifar10-raw: %s %v", spec, err)
	}
	code, stdout, stderr = runCLI(t, "eval", "-model", filepath.Join(out, "epoch-001.onnx"), "-id", data, "-ood", data,
		"-scores", "energy", "-out", filepath.Join(dir, "report"))
	if code != 0 {
		t.Fatalf("eval of the densenet checkpoint: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, _ := runCLI(t, "train", "-arch", "resnet", "-depth", "10", "-data", data, "-out", filepath.Join(dir, "x")); code != 2 {
		t.Errorf("-depth with -arch resnet: exit %d, want 2", code)
	}
}

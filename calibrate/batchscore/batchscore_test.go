package batchscore

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

func TestRunMatchesOneByOne(t *testing.T) {
	runtimetest.Setup(t)
	clf, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	ip, lp := datasettest.WriteIDX(t, t.TempDir(), "x", 70, 28, 28)
	specs := []score.Spec{{Kind: score.KindEnergy}, {Kind: score.KindMSP}, {Kind: score.KindMaxLogit}}
	r, err := dataset.OpenIDX(ip, lp, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var progress []int
	res, err := Run(context.Background(), clf, preprocess.FashionMNIST(), r, Options{Batch: 32, Scores: specs, Progress: func(n int) { progress = append(progress, n) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Len() != 70 || len(progress) != 3 || progress[2] != 70 {
		t.Fatalf("scored %d, progress %v", res.Len(), progress)
	}

	// The same samples one at a time, straight through the preprocessor and a batch-1 runner.
	r2, _ := dataset.OpenIDX(ip, lp, dataset.Options{})
	defer r2.Close()
	pre, _ := preprocess.New(preprocess.FashionMNIST())
	one, _ := clf.NewRunner(1)
	defer one.Close()
	for j := 0; j < 70; j++ {
		s, err := r2.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := pre.Process(one.Input(), s.Image); err != nil {
			t.Fatal(err)
		}
		z, err := one.Run()
		if err != nil {
			t.Fatal(err)
		}
		for i, sp := range specs {
			f, _ := sp.Func()
			want, _ := f(z)
			if got := res.Scores[i][j]; math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("sample %d %s: batched %v, alone %v", j, sp, got, want)
			}
		}
		if int(res.Labels[j]) != s.Label {
			t.Errorf("sample %d label %d, want %d", j, res.Labels[j], s.Label)
		}
	}
	if _, ok := res.Accuracy(); !ok {
		t.Error("labelled data gave no accuracy")
	}
}

func TestRunNamesBrokenImage(t *testing.T) {
	runtimetest.Setup(t)
	clf, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.Open(dir, dataset.Options{Layout: dataset.LayoutFlat})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = Run(context.Background(), clf, preprocess.FashionMNIST(), r, Options{Batch: 4})
	if err == nil || !strings.Contains(err.Error(), "broken.png") {
		t.Fatalf("got %v", err)
	}
}

func TestRunRejectsSpecForOtherModel(t *testing.T) {
	runtimetest.Setup(t)
	clf, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	ip, lp := datasettest.WriteIDX(t, t.TempDir(), "x", 3, 28, 28)
	r, _ := dataset.OpenIDX(ip, lp, dataset.Options{})
	defer r.Close()
	if _, err := Run(context.Background(), clf, preprocess.CIFAR10(), r, Options{}); err == nil || !strings.Contains(err.Error(), "3x32x32") {
		t.Fatalf("got %v", err)
	}
}

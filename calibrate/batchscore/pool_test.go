package batchscore

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// openSessions opens n 1-thread sessions of a test model.
func openSessions(t *testing.T, model string, n int) []*ort.Classifier {
	t.Helper()
	var clfs []*ort.Classifier
	for range n {
		clf, err := ort.Open(runtimetest.Model(t, model), ort.Options{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { clf.Close() })
		clfs = append(clfs, clf)
	}
	return clfs
}

// TestPoolMatchesRun scores one dataset with Run and, twice, with a pool of three sessions (more
// workers than a 2-core machine has, so batches finish out of order): the results must be the
// same, in dataset order, with progress reported in order up to the last sample.
func TestPoolMatchesRun(t *testing.T) {
	runtimetest.Setup(t)
	clfs := openSessions(t, "cnn28.onnx", 3)
	ip, lp := datasettest.WriteIDX(t, t.TempDir(), "x", 203, 28, 28)
	specs := []score.Spec{{Kind: score.KindEnergy}, {Kind: score.KindMSP}}
	open := func() dataset.Reader {
		r, err := dataset.OpenIDX(ip, lp, dataset.Options{ReuseImages: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	want, err := Run(context.Background(), clfs[0], preprocess.FashionMNIST(), open(), Options{Batch: 16, Scores: specs})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(clfs, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for round := range 2 { // a pool serves one dataset after another
		var progress []int
		got, err := pool.Run(context.Background(), preprocess.FashionMNIST(), open(), Options{Scores: specs,
			Progress: func(n int) { progress = append(progress, n) }})
		if err != nil {
			t.Fatal(err)
		}
		if want.Len() != 203 || got.Len() != 203 {
			t.Fatalf("round %d: scored %d and %d samples, want 203", round, want.Len(), got.Len())
		}
		for i := range specs {
			for j, w := range want.Scores[i] {
				if g := got.Scores[i][j]; g != w {
					t.Fatalf("round %d: %s of sample %d: %v from the pool, %v from Run", round, specs[i], j, g, w)
				}
			}
		}
		for j := range want.Pred {
			if got.Pred[j] != want.Pred[j] || got.Labels[j] != want.Labels[j] {
				t.Fatalf("round %d: sample %d: pred/label %d/%d from the pool, %d/%d from Run", round, j, got.Pred[j], got.Labels[j], want.Pred[j], want.Labels[j])
			}
		}
		if len(progress) != 13 || progress[len(progress)-1] != 203 || !slices.IsSorted(progress) {
			t.Errorf("round %d: progress %v, want 13 increasing counts ending at 203", round, progress)
		}
	}
	if _, err := pool.Run(context.Background(), preprocess.FashionMNIST(), open(), Options{Batch: 32}); err == nil || !strings.Contains(err.Error(), "batches of 16") {
		t.Errorf("another batch size: got %v", err)
	}
}

// TestPoolStopsOnBrokenImage: a bad sample stops every worker with an error naming it.
func TestPoolStopsOnBrokenImage(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 28, 28))); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		data := buf.Bytes()
		if i == 25 {
			data = []byte("\x89PNG\r\n\x1a\nnot really")
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.png", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := dataset.Open(dir, dataset.Options{Layout: dataset.LayoutFlat})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pool, err := NewPool(openSessions(t, "cnn28.onnx", 2), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Run(context.Background(), preprocess.FashionMNIST(), r, Options{}); err == nil || !strings.Contains(err.Error(), "025.png") {
		t.Fatalf("got %v, want an error naming 025.png", err)
	}
}

// TestPoolRejectsMixedModels: every session of a pool must run the same model.
func TestPoolRejectsMixedModels(t *testing.T) {
	runtimetest.Setup(t)
	clfs := append(openSessions(t, "cnn28.onnx", 1), openSessions(t, "resnet32.onnx", 1)...)
	if p, err := NewPool(clfs, 8); err == nil {
		p.Close()
		t.Fatal("a pool of two models was accepted")
	}
	if _, err := NewPool(nil, 8); err == nil {
		t.Fatal("an empty pool was accepted")
	}
}

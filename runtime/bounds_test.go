package runtime_test

import (
	"strings"
	"testing"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// Absurd thread counts and batch sizes are refused with a clear error before ONNX Runtime
// starts threads or Go allocates the tensors (-threads 100000 made 5,673 threads and 16 GB;
// -batch 100000000 died in Go's allocator).
func TestBounds(t *testing.T) {
	if err := (ort.Options{IntraOpThreads: 100000}).Validate(); err == nil || !strings.Contains(err.Error(), "100000 threads") {
		t.Errorf("100000 intra-op threads: %v", err)
	}
	if err := (ort.Options{InterOpThreads: ort.MaxThreads() + 1}).Validate(); err == nil {
		t.Errorf("%d inter-op threads accepted", ort.MaxThreads()+1)
	}
	if err := (ort.Options{IntraOpThreads: ort.MaxThreads()}).Validate(); err != nil {
		t.Errorf("%d threads: %v", ort.MaxThreads(), err)
	}
	for _, tc := range []struct {
		n, c, h, w int
		ok         bool
	}{
		{64, 1, 28, 28, true},
		{ort.MaxBatch, 1, 28, 28, true},
		{ort.MaxBatch + 1, 1, 28, 28, false},
		{100000000, 1, 28, 28, false},
		{0, 1, 28, 28, false},
		{2048, 3, 224, 224, false}, // 1.2 GB of input
		{512, 3, 224, 224, true},
	} {
		if err := ort.CheckBatch(tc.n, tc.c, tc.h, tc.w); (err == nil) != tc.ok {
			t.Errorf("ort.CheckBatch(%d, %dx%dx%d) = %v, want ok %v", tc.n, tc.c, tc.h, tc.w, err, tc.ok)
		}
	}
	runtimetest.Setup(t)
	if _, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 100000}); err == nil {
		t.Error("Open with 100000 threads succeeded")
	}
	clf, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	if _, err := clf.NewRunner(100000000); err == nil || !strings.Contains(err.Error(), "at most 65536") {
		t.Errorf("NewRunner(100000000): %v", err)
	}
}

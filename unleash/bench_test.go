package unleash_test

import (
	"os"
	"testing"

	"github.com/oodguard/oodguard/unleash"
)

// BenchmarkUMAPStep measures mask learning (one UMAP step: forward in train mode, STE
// gradients, SGD on the scores, the Go top-k between steps) on cnn28 at batch 64 and reports
// images/s. The backend is $UNLEASH_BENCH_BACKEND (default: the pure-Go backend).
//
// PyTorch 1.13 on the same model, batch and machine (2 threads), measured with
// testdata/unleash/bench_torch.py: see doc.go.
func BenchmarkUMAPStep(b *testing.B) {
	spec := os.Getenv("UNLEASH_BENCH_BACKEND")
	backend, err := unleash.NewBackend(spec)
	if err != nil {
		b.Fatal(err)
	}
	m := loadModel(b, "cnn28.onnx")
	opts := unleash.DefaultOptions(unleash.UMAP)
	opts.Constraint, opts.Backend = 0.3, backend
	tr, err := unleash.New(m, opts)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 64
	x, y := randomBatch(m, batch, 10, 1)
	if _, err := tr.Step(x, y, 0.01); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Step(x, y, 0.01); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
}

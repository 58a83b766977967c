package unleash_test

import (
	"os"
	"testing"

	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/torchbench"
)

// BenchmarkUMAPStep measures mask learning (one UMAP step: forward in train mode, STE
// gradients, SGD on the scores, the Go top-k between steps) on cnn28 at batch 64 and reports
// images/s. The backend is $UNLEASH_BENCH_BACKEND (default: onnx, the fast one here).
//
// When Debian's PyTorch is installed, the same workload in PyTorch 1.13 with 2 threads
// (testdata/unleash/bench_torch.py) runs just before and just after the timed loop, and the
// benchmark reports the ratio of the two speeds.
func BenchmarkUMAPStep(b *testing.B) {
	spec := os.Getenv("UNLEASH_BENCH_BACKEND")
	if spec == "" {
		spec = "onnx"
	}
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
	before := torchbench.ImagesPerSecond(b, "../testdata/unleash/bench_torch.py")
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Step(x, y, 0.01); err != nil {
			b.Fatal(err)
		}
	}
	ours := float64(b.N*batch) / b.Elapsed().Seconds()
	b.ReportMetric(ours, "img/s")
	if after := torchbench.ImagesPerSecond(b, "../testdata/unleash/bench_torch.py"); before > 0 && after > 0 {
		torch := (before + after) / 2
		b.ReportMetric(torch, "torch-img/s")
		b.ReportMetric(ours/torch, "ratio")
	}
}

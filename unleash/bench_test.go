package unleash_test

import (
	"os"
	"testing"

	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"github.com/oodguard/oodguard/unleash/torchbench"
)

// BenchmarkUMAPStep measures mask learning (one UMAP step: forward in train mode, STE
// gradients, SGD on the scores, the Go top-k between steps) at batch 64 and reports images/s, on
// cnn28 (testdata/models/cnn28.onnx, BatchNorm folded) and on the CIFAR ResNet as `oodguard
// train` builds it (width 16, one block per stage, BatchNorm kept). The backend is
// $UNLEASH_BENCH_BACKEND (default: onnx, the fast one here).
//
// When Debian's PyTorch is installed, the same workload in PyTorch 1.13 with 2 threads
// (testdata/unleash/bench_torch.py) runs in alternation with rounds of ours, and the benchmark
// reports the median ratio of the two speeds over the rounds (see torchbench.Compare).
func BenchmarkUMAPStep(b *testing.B) {
	spec := os.Getenv("UNLEASH_BENCH_BACKEND")
	if spec == "" {
		spec = "onnx"
	}
	backend, err := unleash.NewBackend(spec)
	if err != nil {
		b.Fatal(err)
	}
	resnet, err := arch.Build(arch.Config{Arch: arch.ResNet, Classes: 10, Input: [3]int{3, 32, 32}, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		model func(b *testing.B) *onnxgraph.Model
	}{
		{"cnn28", func(b *testing.B) *onnxgraph.Model { return loadModel(b, "cnn28.onnx") }},
		{"resnet", func(b *testing.B) *onnxgraph.Model {
			m, err := onnxgraph.Parse(resnet)
			if err != nil {
				b.Fatal(err)
			}
			return m
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := c.model(b)
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
			step := func() error { _, err := tr.Step(x, y, 0.01); return err }
			torchbench.Compare(b, batch, step, "../testdata/unleash/bench_torch.py", "--arch", c.name)
		})
	}
}

package train_test

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"github.com/oodguard/oodguard/unleash/torchbench"
)

// BenchmarkTrainStep measures training from scratch: one SGD step (forward in train mode,
// backward, SGD with momentum and weight decay on every parameter, BatchNorm running-stat
// updates) at batch 64, and reports images/s, for the small CNN (cnn28, width 16, 1x28x28) and the
// CIFAR ResNet as `oodguard train` builds it (width 16, one block per stage, 3x32x32). The backend
// is $UNLEASH_BENCH_BACKEND, "onnx" when unset. When Debian's PyTorch is installed it also runs the
// same workload in PyTorch with 2 threads (testdata/bench_torch.py) in alternation with rounds
// of ours, and reports the median ratio ours/PyTorch over the rounds (see torchbench.Compare):
// the machine may be shared, so both sides are measured in the same window.
func BenchmarkTrainStep(b *testing.B) {
	spec := os.Getenv("UNLEASH_BENCH_BACKEND")
	if spec == "" {
		spec = "onnx"
		runtimetest.Setup(b)
	}
	be, err := unleash.NewBackend(spec)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cfg   arch.Config
		shape [3]int
	}{
		{"cnn28", arch.Config{Arch: arch.CNN28, Classes: 10, Input: [3]int{1, 28, 28}, Seed: 1}, [3]int{1, 28, 28}},
		{"resnet", arch.Config{Arch: arch.ResNet, Classes: 10, Input: [3]int{3, 32, 32}, Seed: 1}, [3]int{3, 32, 32}},
	} {
		b.Run(c.name, func(b *testing.B) {
			data, err := arch.Build(c.cfg)
			if err != nil {
				b.Fatal(err)
			}
			m, err := onnxgraph.Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			opts := unleash.Options{Method: unleash.UM, LR: 0.1, Epochs: 1, Momentum: 0.9, WeightDecay: 5e-4, Backend: be}
			tr, err := unleash.New(m, opts)
			if err != nil {
				b.Fatal(err)
			}
			const batch = 64
			r := rand.New(rand.NewPCG(1, 2))
			x := make([]float32, batch*c.shape[0]*c.shape[1]*c.shape[2])
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			y := make([]int, batch)
			for i := range y {
				y[i] = r.IntN(10)
			}
			if _, err := tr.Step(x, y, 0.01); err != nil { // compile outside the timing
				b.Fatal(err)
			}
			step := func() error { _, err := tr.Step(x, y, 0.01); return err }
			torchbench.Compare(b, batch, step, "testdata/bench_torch.py", "--arch", c.name)
		})
	}
}

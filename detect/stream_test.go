package detect

import (
	"math/rand/v2"
	"runtime"
	"testing"

	rt "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// syntheticFit streams n seeded random ReLU-like feature vectors of dimension 64 through one
// reused batch buffer, so that whatever Fit allocates is Fit's own.
func syntheticFit(tb testing.TB, n int) (*Fitted, uint64) {
	tb.Helper()
	const D, K, batch = 64, 10, 256
	h := &Head{Dim: D, Classes: K, W: make([]float64, K*D), B: make([]float64, K)}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range h.W {
		h.W[i] = rng.NormFloat64()
	}
	buf := make([]float32, batch*D)
	labels := make([]int, batch)
	pass := func(yield func([]float32, []int) error) error {
		r := rand.New(rand.NewPCG(7, 8)) // the same data on both passes
		for i := 0; i < n; i += batch {
			m := min(batch, n-i)
			for j := range buf[:m*D] {
				buf[j] = float32(max(0, r.NormFloat64()+0.5))
			}
			for j := range labels[:m] {
				labels[j] = r.IntN(K)
			}
			if err := yield(buf[:m*D], labels[:m]); err != nil {
				return err
			}
		}
		return nil
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Fit(h, pass, FitOptions{ActivationSample: 1 << 16, BankSize: 2000, Seed: 1})
	runtime.ReadMemStats(&after)
	if err != nil {
		tb.Fatal(err)
	}
	return f, after.TotalAlloc - before.TotalAlloc
}

// TestFitMemoryIsFlat: fitting on ten times more vectors allocates no more (every byte Fit
// allocates, not only what is live at the end, so this bounds the peak too).
func TestFitMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("fits 44,000 vectors")
	}
	small, a1 := syntheticFit(t, 4000)
	large, a2 := syntheticFit(t, 40000)
	t.Logf("Fit allocated %d bytes for 4,000 vectors and %d for 40,000 (bank %d and %d vectors, %d activations kept)",
		a1, a2, small.BankLen(), large.BankLen(), len(large.Activations))
	if a2 > a1+a1/20+16<<10 {
		t.Errorf("Fit allocated %d bytes for 40,000 vectors, %d for 4,000: memory grows with the data", a2, a1)
	}
	if small.BankLen() != 2000 || large.BankLen() != 2000 || len(large.Activations) != 1<<16 {
		t.Errorf("bank %d/%d, activations %d: the reservoirs are not full", small.BankLen(), large.BankLen(), len(large.Activations))
	}
}

// BenchmarkFit fits at two sizes; B/op is the memory Fit allocates.
func BenchmarkFit(b *testing.B) {
	for _, n := range []int{4000, 40000} {
		b.Run(map[int]string{4000: "n=4000", 40000: "n=40000"}[n], func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				syntheticFit(b, n)
			}
		})
	}
}

// TestExtractor runs the eval images through the extractor in batches of 10 (the last one short
// and padded) and checks its features against one ONNX Runtime run of all of them, then fits
// through the extractor's Pass.
func TestExtractor(t *testing.T) {
	fx := loadFixture(t, "cnn28")
	runtimetest.Setup(t)
	if _, err := fx.model.NewExtractor(0, rt.Options{}); err == nil {
		t.Error("batch 0 accepted")
	}
	x, err := fx.model.NewExtractor(10, rt.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	n := int(fx.ref.EvalShape[0])
	img := len(fx.eval) / n
	labels := make([]int, n)
	images := func(yield func([]float32, int, []int) error) error {
		for i := 0; i < n; i += 10 {
			m := min(10, n-i)
			if err := yield(fx.eval[i*img:(i+m)*img], m, labels[i:i+m]); err != nil {
				return err
			}
		}
		return nil
	}
	var got []float32
	err = x.Pass(images)(func(f []float32, _ []int) error {
		got = append(got, f...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := fx.model.WithFeatures()
	if err != nil {
		t.Fatal(err)
	}
	want := runORT(t, data, fx.eval, fx.ref.EvalShape, FeaturesOutput)[0]
	checkClose(t, "features in batches of 10", f64(got), f64(want), 1e-6)
	checkClose(t, "features vs PyTorch", f64(got), flat(fx.ref.EvalFeatures), 1e-5)

	f, err := Fit(&fx.model.Head, x.Pass(images), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Fit(&fx.model.Head, func(yield func([]float32, []int) error) error { return yield(want, labels) }, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "mean feature through the extractor", f.Mean, g.Mean, 1e-6)
	checkClose(t, "ViM eigenvalues through the extractor", f.EigVals, g.EigVals, 1e-6)

	tooMany := func(yield func([]float32, int, []int) error) error { return yield(fx.eval[:11*img], 11, nil) }
	if _, err := Fit(&fx.model.Head, x.Pass(tooMany), FitOptions{}); err == nil {
		t.Error("a batch of 11 images through an extractor of 10 accepted")
	}
	x.Close()
	if _, _, err := x.Run(); err == nil {
		t.Error("Run after Close succeeded")
	}
}

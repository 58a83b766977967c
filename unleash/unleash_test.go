package unleash_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

func loadModel(t testing.TB, name string) *onnxgraph.Model {
	t.Helper()
	path := filepath.Join(runtimetest.RepoRoot(t), "testdata", "models", name)
	if _, err := os.Stat(path); err != nil {
		path = testdata(t, name)
	}
	m, err := onnxgraph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomBatch returns n images of N(0,1) pixels and labels in [0,k).
func randomBatch(m *onnxgraph.Model, n, k int, seed uint64) ([]float32, []int) {
	r := rand.New(rand.NewPCG(seed, 9))
	x := make([]float32, n*m.Channels*m.Height*m.Width)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(k)
	}
	return x, y
}

// ortLogits runs a serialized model under ONNX Runtime through the project's runtime package.
func ortLogits(t testing.TB, data []byte, x []float32, n int) []float32 {
	t.Helper()
	return runtimetest.Logits(t, data, x, n)
}

// TestExportUMAP trains UMAP a few steps, writes the model back and checks that ONNX Runtime on
// the written file gives the GoMLX masked model's logits and that each masked layer has exactly
// int((1-keep)*n) zeros, at the masked positions.
func TestExportUMAP(t *testing.T) {
	for _, c := range []struct {
		model string
		keep  float64
		init  mask.Init
	}{
		{"cnn28.onnx", 0.8, mask.KaimingUniform},
		{"resnet32.onnx", 0.7, mask.Magnitude},
		{"tinybn.onnx", 0.8, mask.KaimingUniform},
		{"opszoo.onnx", 0.55, mask.Magnitude},
		{"poolzoo.onnx", 0.9, mask.KaimingUniform},
	} {
		t.Run(c.model, func(t *testing.T) {
			m := loadModel(t, c.model)
			opts := unleash.DefaultOptions(unleash.UMAP)
			opts.Keep, opts.ScoreInit, opts.Constraint, opts.Seed = c.keep, c.init, 0.5, 3
			tr, err := unleash.New(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			x, y := randomBatch(m, 8, 5, 1)
			before := map[string][]float32{}
			for _, name := range tr.Masked() {
				before[name], _ = tr.Mask(name)
			}
			for i := 0; i < 3; i++ {
				if _, err := tr.Step(x, y, 0.5); err != nil {
					t.Fatal(err)
				}
			}
			changed := 0
			for _, name := range tr.Masked() {
				after, _ := tr.Mask(name)
				for i := range after {
					if after[i] != before[name][i] {
						changed++
					}
				}
			}
			t.Logf("%d mask entries changed in 3 steps", changed)
			var buf bytes.Buffer
			if err := tr.Export(&buf); err != nil {
				t.Fatal(err)
			}
			written, err := onnxgraph.Parse(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tr.Masked() {
				p, w := m.Param(name), written.Param(name).Data
				mk, _ := tr.Mask(name)
				pruned, _ := mask.Pruned(len(w), c.keep)
				zeros, wantZeros := 0, pruned
				for i, v := range w {
					if v == 0 {
						zeros++
					}
					if mk[i] == 0 && v != 0 {
						t.Fatalf("%s: weight %d is pruned but written as %v", name, i, v)
					}
					if mk[i] == 1 {
						if v != p.Data[i] {
							t.Fatalf("%s: kept weight %d written as %v, was %v", name, i, v, p.Data[i])
						}
						if p.Data[i] == 0 {
							wantZeros++ // a kept weight that was already zero
						}
					}
				}
				if zeros != wantZeros {
					t.Errorf("%s: %d zeros of %d, want %d (int((1-%v)*%d) = %d pruned)", name, zeros, len(w), wantZeros, c.keep, len(w), pruned)
				}
			}
			n := 8
			xe, _ := randomBatch(m, n, 5, 2)
			got := ortLogits(t, buf.Bytes(), xe, n)
			want, err := tr.Logits(xe)
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(got, want); e > tol {
				t.Errorf("ORT on the written model differs from GoMLX by %.3g relative", e)
			} else {
				t.Logf("ORT vs GoMLX masked logits: %.2g relative", e)
			}
		})
	}
}

// TestExportUM fine-tunes a few steps and checks the written model (weights and BatchNorm
// running stats) under ONNX Runtime.
func TestExportUM(t *testing.T) {
	for _, name := range []string{"cnn28.onnx", "opszoo.onnx"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name)
			opts := unleash.DefaultOptions(unleash.UM)
			opts.Constraint = 0.3
			tr, err := unleash.New(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			x, y := randomBatch(m, 8, 5, 1)
			for i := 0; i < 3; i++ {
				if _, err := tr.Step(x, y, 0.05); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if err := tr.Export(&buf); err != nil {
				t.Fatal(err)
			}
			xe, _ := randomBatch(m, 4, 5, 2)
			got := ortLogits(t, buf.Bytes(), xe, 4)
			want, err := tr.Logits(xe)
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(got, want); e > tol {
				t.Errorf("ORT on the written model differs from GoMLX by %.3g relative", e)
			}
			orig, err := tr.Logits(xe) // sanity: training changed the model
			if err != nil {
				t.Fatal(err)
			}
			base, _ := unleash.New(m, unleash.DefaultOptions(unleash.UM))
			z0, _ := base.Logits(xe)
			if relErr(orig, z0) == 0 {
				t.Error("three UM steps did not change the logits")
			}
		})
	}
}

func TestEstimateConstraint(t *testing.T) {
	ref, m := loadRef(t, "tinybn")
	batches := unleash.Slices(ref.X, ref.Y, 3)
	// keep = 1 masks nothing: the dense model's eval CE, as PyTorch computed it.
	c1, err := unleash.EstimateConstraint(m, batches, unleash.EstimateOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkScalar(t, "dense eval CE", c1, ref.CEEval)

	a, err := unleash.EstimateConstraint(m, batches, unleash.EstimateOptions{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	b, err := unleash.EstimateConstraint(m, batches, unleash.EstimateOptions{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("same seed: %v and %v", a, b)
	}
	var differ bool
	for seed := uint64(6); seed < 9 && !differ; seed++ {
		c, err := unleash.EstimateConstraint(m, batches, unleash.EstimateOptions{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		differ = c != a
	}
	if !differ {
		t.Error("different seeds give the same estimate")
	}
	// The estimate is the mean CE of the model with the random 0.965 masks, written out and run
	// by ONNX Runtime.
	opts := unleash.DefaultOptions(unleash.UMAP)
	opts.Keep, opts.Seed = unleash.DefaultEstimateKeep, 5
	tr, err := unleash.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tr.Export(&buf); err != nil {
		t.Fatal(err)
	}
	n := len(ref.Y)
	z := ortLogits(t, buf.Bytes(), ref.X, n)
	k := len(z) / n
	var sum float64
	for i, y := range ref.Y {
		top := math.Inf(-1)
		for _, v := range z[i*k : (i+1)*k] {
			top = math.Max(top, float64(v))
		}
		var s float64
		for _, v := range z[i*k : (i+1)*k] {
			s += math.Exp(float64(v) - top)
		}
		sum += math.Log(s) + top - float64(z[i*k+y])
	}
	checkScalar(t, "estimate vs ORT on the masked model", a, sum/float64(n))
	t.Logf("dense CE %.4f, estimate (keep 0.965, seed 5) %.4f", c1, a)
}

func TestBadInput(t *testing.T) {
	m := loadModel(t, "tinybn.onnx")
	for _, keep := range []float64{0, -0.5, 1.5, math.NaN()} {
		opts := unleash.DefaultOptions(unleash.UMAP)
		opts.Keep = keep
		if _, err := unleash.New(m, opts); !errors.Is(err, mask.ErrKeep) {
			t.Errorf("keep %v: error %v, want mask.ErrKeep", keep, err)
		}
	}
	if _, err := unleash.EstimateConstraint(m, unleash.Slices(make([]float32, 64), []int{0}, 1), unleash.EstimateOptions{Keep: 2}); !errors.Is(err, mask.ErrKeep) {
		t.Errorf("estimate with keep 2: error %v, want mask.ErrKeep", err)
	}
	opts := unleash.DefaultOptions(unleash.UMAP)
	opts.Constraint = -1
	if _, err := unleash.New(m, opts); err == nil {
		t.Error("negative constraint: no error")
	}
	tr, err := unleash.New(m, unleash.DefaultOptions(unleash.UMAP))
	if err != nil {
		t.Fatal(err)
	}
	x, _ := randomBatch(m, 2, 5, 1)
	for _, labels := range [][]int{{0, 5}, {-1, 0}} {
		if _, err := tr.Step(x, labels, 0.1); !errors.Is(err, unleash.ErrLabel) {
			t.Errorf("labels %v: error %v, want ErrLabel", labels, err)
		}
		if _, err := tr.Gradients(x, labels); !errors.Is(err, unleash.ErrLabel) {
			t.Errorf("labels %v: gradients error %v, want ErrLabel", labels, err)
		}
	}
	if _, err := tr.Step(x, []int{0}, 0.1); err == nil {
		t.Error("1 label for 2 images: no error")
	}
	if _, err := tr.Step(x[:10], []int{0}, 0.1); err == nil {
		t.Error("a partial image: no error")
	}
	if _, err := tr.Step(x, []int{0, 1}, math.NaN()); err == nil {
		t.Error("NaN learning rate: no error")
	}
	if tr.Steps() != 0 {
		t.Errorf("%d steps taken by failed calls", tr.Steps())
	}
	if err := tr.SetScores("nope", nil); err == nil {
		t.Error("scores of an unknown layer: no error")
	}
	if _, err := unleash.NewBackend("tpu"); err == nil {
		t.Error("unknown backend: no error")
	}
}

func TestCosineLR(t *testing.T) {
	for _, c := range []struct {
		epoch, epochs int
		want          float64
	}{{0, 100, 0.1}, {50, 100, 0.05}, {100, 100, 0}, {25, 100, 0.05 * (1 + math.Sqrt2/2)}} {
		if got := unleash.CosineLR(0.1, c.epoch, c.epochs); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("CosineLR(0.1, %d, %d) = %v, want %v", c.epoch, c.epochs, got, c.want)
		}
	}
}

// TestBackendsAgree compares the UMAP gradients and a step of the ONNX Runtime backend (strided
// convolutions subsampled) with the pure-Go backend (native strided convolutions) on the
// project's BN-folded test models, which have stride-2 convolutions and 1x1 shortcuts.
func TestBackendsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	runtimetest.Setup(t)
	onnxB, err := unleash.NewBackend("onnx")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cnn28.onnx", "resnet32.onnx"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name)
			x, y := randomBatch(m, 8, 10, 4)
			var grads [2]*unleash.Gradients
			var scores [2][]float32
			for i, b := range []string{"go", "onnx"} {
				opts := unleash.DefaultOptions(unleash.UMAP)
				opts.Constraint = 0.2
				if b == "onnx" {
					opts.Backend = onnxB
				}
				tr, err := unleash.New(m, opts)
				if err != nil {
					t.Fatal(err)
				}
				if grads[i], err = tr.Gradients(x, y); err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Step(x, y, 0.1); err != nil {
					t.Fatal(err)
				}
				last := tr.Masked()[len(tr.Masked())-1]
				if scores[i], err = tr.Scores(last); err != nil {
					t.Fatal(err)
				}
			}
			checkScalar(t, "loss go vs onnx", grads[1].Loss, grads[0].Loss)
			for k, g := range grads[0].Trained {
				check(t, k+" score grad go vs onnx", grads[1].Trained[k], g)
			}
			check(t, "scores after a step go vs onnx", scores[1], scores[0])
		})
	}
}

func TestTrainEpoch(t *testing.T) {
	ref, m := loadRef(t, "tinybn")
	opts := unleash.DefaultOptions(unleash.UMAP)
	opts.Constraint, opts.Epochs, opts.LR = 0.5, 4, 0.2
	tr, err := unleash.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	for epoch := 0; epoch < 2; epoch++ {
		r, err := tr.TrainEpoch(unleash.Slices(ref.X, ref.Y, 4), epoch)
		if err != nil {
			t.Fatal(err)
		}
		if r.Steps != 2 || r.Images != 8 || r.LR != unleash.CosineLR(0.2, epoch, 4) || !(r.Loss >= r.CE) {
			t.Errorf("epoch %d: %+v", epoch, r)
		}
	}
	if tr.Steps() != 4 {
		t.Errorf("%d steps, want 4", tr.Steps())
	}
	if _, err := tr.TrainEpoch(unleash.Slices(ref.X, ref.Y[:3], 4), 2); err == nil {
		t.Error("mismatched images and labels: no error")
	}
}

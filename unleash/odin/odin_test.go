package odin_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/odin"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

type refCase struct {
	Temperature     float64   `json:"temperature"`
	Epsilon         float64   `json:"epsilon"`
	Scores          []float64 `json:"scores"`
	Logits          []float64 `json:"logits"`
	PerturbedLogits []float64 `json:"perturbed_logits"`
	NoPerturbation  []float64 `json:"scores_no_perturbation"`
	ZeroGradients   int       `json:"zero_gradients"`
}

type reference struct {
	InputShape []int     `json:"input_shape"`
	Mean       []float32 `json:"mean"`
	Std        []float32 `json:"std"`
	X          []float64 `json:"x"`
	Cases      []refCase `json:"cases"`
}

func loadRef(t *testing.T) (*onnxgraph.Model, *reference) {
	t.Helper()
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "unleash")
	m, err := onnxgraph.Load(filepath.Join(dir, "odintiny.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "odintiny.ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return m, &ref
}

// normalise maps the reference's [0,1] pixels to the model's input, (x - mean_c)/std_c, in
// float32 as device/preprocess does.
func normalise(ref *reference) []float32 {
	c, hw := ref.InputShape[1], ref.InputShape[2]*ref.InputShape[3]
	x := make([]float32, len(ref.X))
	for i, v := range ref.X {
		ch := (i / hw) % c
		x[i] = (float32(v) - ref.Mean[ch]) / ref.Std[ch]
	}
	return x
}

func backends(t *testing.T) map[string]string {
	b := map[string]string{"go": ""}
	if !testing.Short() {
		runtimetest.Setup(t)
		b["onnx"] = "onnx"
	}
	return b
}

// TestReference checks the scores against PyTorch running the official ODIN code in pixel space
// on the same model wrapped with the normalisation (testdata/unleash/make_odin_reference.py):
// the scores within 1e-4 relative, and, because at T=1000 the whole perturbation moves a score
// by about 1e-4 of its value, also the perturbation's effect (score minus the unperturbed score)
// and the perturbed logits.
func TestReference(t *testing.T) {
	m, ref := loadRef(t)
	x := normalise(ref)
	for name, spec := range backends(t) {
		b, err := unleash.NewBackend(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ref.Cases {
			s, err := odin.New(m, odin.Options{Temperature: c.Temperature, Epsilon: c.Epsilon, Std: ref.Std, Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Run(x)
			if err != nil {
				t.Fatal(err)
			}
			s0, err := odin.New(m, odin.Options{Temperature: c.Temperature, Std: ref.Std, Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			clean, err := s0.Scores(x)
			if err != nil {
				t.Fatal(err)
			}
			scale := 0.0
			for _, v := range c.PerturbedLogits {
				scale = math.Max(scale, math.Abs(v))
			}
			for i := range c.Logits {
				if d := math.Abs(float64(r.Logits[i]) - c.Logits[i]); d > 1e-5*scale {
					t.Errorf("%s T=%g: logit %d = %v, PyTorch %v", name, c.Temperature, i, r.Logits[i], c.Logits[i])
				}
				if d := math.Abs(float64(r.Perturbed[i]) - c.PerturbedLogits[i]); d > 1e-5*scale {
					t.Errorf("%s T=%g: perturbed logit %d = %v, PyTorch %v", name, c.Temperature, i, r.Perturbed[i], c.PerturbedLogits[i])
				}
			}
			var maxRel, maxGain float64
			for i, want := range c.Scores {
				got := r.Scores[i]
				maxRel = math.Max(maxRel, math.Abs(got-want)/want)
				if g := c.Scores[i] - c.NoPerturbation[i]; g > 0 {
					maxGain = math.Max(maxGain, math.Abs((got-clean[i])-g)/g)
				}
				if d := math.Abs(got-want) / want; d > 1e-4 {
					t.Errorf("%s T=%g eps=%g: score %d = %.9f, PyTorch %.9f (rel %.2g)", name, c.Temperature, c.Epsilon, i, got, want, d)
				}
				if d := math.Abs(clean[i]-c.NoPerturbation[i]) / c.NoPerturbation[i]; d > 1e-5 {
					t.Errorf("%s T=%g: unperturbed score %d = %.9f, PyTorch %.9f", name, c.Temperature, i, clean[i], c.NoPerturbation[i])
				}
				gotGain, wantGain := got-clean[i], want-c.NoPerturbation[i]
				if wantGain <= 0 || math.Abs(gotGain-wantGain) > 0.01*wantGain {
					t.Errorf("%s T=%g eps=%g: perturbation raised score %d by %.4g, PyTorch by %.4g", name, c.Temperature, c.Epsilon, i, gotGain, wantGain)
				}
			}
			t.Logf("%s T=%g eps=%g: scores within %.2g relative, their gain from the perturbation within %.2g", name, c.Temperature, c.Epsilon, maxRel, maxGain)
		}
	}
}

// TestStepInNormalisedSpace checks the normalisation rule on its own: the scorer with Std s on
// inputs x/s must give the same scores as the scorer without Std on a model that takes x, here
// emulated by a per-channel std of 1 on the same inputs with ε scaled by s (a step ε/s in
// normalised space is a step ε in pixel space).
func TestStepInNormalisedSpace(t *testing.T) {
	m, ref := loadRef(t)
	x := normalise(ref)
	b, err := unleash.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	const eps = 0.01
	withStd, err := odin.New(m, odin.Options{Temperature: 1, Epsilon: eps, Std: []float32{0.5}, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := odin.New(m, odin.Options{Temperature: 1, Epsilon: eps / 0.5, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	a, err := withStd.Scores(x)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plain.Scores(x)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != p[i] {
			t.Errorf("score %d: std 0.5 gives %v, eps/0.5 without std gives %v", i, a[i], p[i])
		}
	}
}

// TestEvenKernel scores a model with a 2x2 convolution; its input gradient is checked against
// finite differences in onnxgraph (TestEvenKernelInputGradient).
func TestEvenKernel(t *testing.T) {
	m, err := onnxgraph.Load(filepath.Join(runtimetest.RepoRoot(t), "testdata", "unleash", "odineven.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odin.New(m, odin.DefaultOptions()); err != nil {
		t.Errorf("New on a 2x2 convolution: %v", err)
	}
}

func TestOptions(t *testing.T) {
	m, _ := loadRef(t)
	for _, o := range []odin.Options{
		{Temperature: 0, Epsilon: 0.001},
		{Temperature: 1, Epsilon: -1},
		{Temperature: math.Inf(1)},
		{Temperature: 1, Std: []float32{0}},
		{Temperature: 1, Std: []float32{1, 1}},
	} {
		if _, err := odin.New(m, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if got, want := odin.DefaultOptions().Name(), "odin(T=1000,eps=0.0014)"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	s, err := odin.New(m, odin.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(make([]float32, 10)); err == nil {
		t.Error("Run accepted 10 values for a 3x12x12 model")
	}
}

// TestTrainingBatchNormRefused checks that ODIN refuses a model whose BatchNorm runs in training
// mode, with the error that says how to export it.
func TestTrainingBatchNormRefused(t *testing.T) {
	m, err := onnxgraph.Load(filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", "resnet18.trainbn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = odin.New(m, odin.DefaultOptions())
	if !errors.Is(err, onnxgraph.ErrTrainingBatchNorm) || !strings.Contains(err.Error(), "model.eval()") {
		t.Fatalf("error %v, want ErrTrainingBatchNorm saying to export after model.eval()", err)
	}
}

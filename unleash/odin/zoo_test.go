package odin_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/odin"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestZooMatchesPyTorch checks ODIN on every reduced torchvision family of testdata/zoo
// (testdata/make_zoo.py) against the official ODIN code run in float64 by PyTorch, on the
// models' own input space: scores within 1e-4 relative, unperturbed scores within 1e-5, and the
// perturbation's effect on each score (score minus unperturbed score) within 1%, or three times
// PyTorch's own float32 error on it where that is larger (at T=1000 the effect is near float32's
// resolution of the logits: PyTorch's float32 is up to 9% off on EfficientNet).
func TestZooMatchesPyTorch(t *testing.T) {
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	raw, err := os.ReadFile(filepath.Join(dir, "zoo.input.f32"))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	for name, spec := range backends(t) {
		b, err := unleash.NewBackend(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range []string{"resnet18", "mobilenetv2", "mobilenetv3", "efficientnetb0", "densenet", "densenetbc", "squeezenet", "shufflenetv2", "convnext"} {
			t.Run(name+"/"+fam, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join(dir, fam+".ref.json"))
				if err != nil {
					t.Fatal(err)
				}
				var ref struct {
					ODIN []struct {
						Temperature    float64   `json:"temperature"`
						Epsilon        float64   `json:"epsilon"`
						Scores         []float64 `json:"scores"`
						NoPerturbation []float64 `json:"scores_no_perturbation"`
						F32GainError   float64   `json:"f32_gain_error"`
					} `json:"odin"`
				}
				if err := json.Unmarshal(data, &ref); err != nil {
					t.Fatal(err)
				}
				if len(ref.ODIN) == 0 {
					t.Fatal("no ODIN reference")
				}
				m, err := onnxgraph.Load(filepath.Join(dir, fam+".onnx"))
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range ref.ODIN {
					s, err := odin.New(m, odin.Options{Temperature: c.Temperature, Epsilon: c.Epsilon, Backend: b})
					if err != nil {
						t.Fatal(err)
					}
					r, err := s.Run(x)
					if err != nil {
						t.Fatal(err)
					}
					s0, err := odin.New(m, odin.Options{Temperature: c.Temperature, Backend: b})
					if err != nil {
						t.Fatal(err)
					}
					clean, err := s0.Scores(x)
					if err != nil {
						t.Fatal(err)
					}
					gainTol := math.Max(0.01, 3*c.F32GainError)
					var maxRel, maxGain float64
					for i, want := range c.Scores {
						got := r.Scores[i]
						d := math.Abs(got-want) / want
						maxRel = math.Max(maxRel, d)
						if d > 1e-4 {
							t.Errorf("T=%g eps=%g: score %d = %.9f, PyTorch %.9f (rel %.2g)", c.Temperature, c.Epsilon, i, got, want, d)
						}
						if d := math.Abs(clean[i]-c.NoPerturbation[i]) / c.NoPerturbation[i]; d > 1e-5 {
							t.Errorf("T=%g: unperturbed score %d = %.9f, PyTorch %.9f", c.Temperature, i, clean[i], c.NoPerturbation[i])
						}
						gotGain, wantGain := got-clean[i], want-c.NoPerturbation[i]
						if wantGain <= 0 || math.Abs(gotGain-wantGain) > gainTol*wantGain {
							t.Errorf("T=%g eps=%g: perturbation raised score %d by %.4g, PyTorch by %.4g (want within %.2g)", c.Temperature, c.Epsilon, i, gotGain, wantGain, gainTol)
						} else {
							maxGain = math.Max(maxGain, math.Abs(gotGain-wantGain)/wantGain)
						}
					}
					t.Logf("T=%g eps=%g: scores within %.2g relative, their gain from the perturbation within %.2g", c.Temperature, c.Epsilon, maxRel, maxGain)
				}
			})
		}
	}
}

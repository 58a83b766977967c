package unleash_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// tol is the agreement with PyTorch the tests ask for: 1e-4 relative to each tensor's scale
// (its largest |value|), so that entries near zero do not need a relative error of their own.
const tol = 1e-4

// reference is a NAME.ref.json written by testdata/unleash/make_reference.py.
type reference struct {
	Model      string    `json:"model"`
	InputShape []int     `json:"input_shape"`
	X          []float32 `json:"x"`
	Y          []int     `json:"y"`
	Logits     []float32 `json:"logits_eval"`
	CEEval     float64   `json:"ce_eval"`
	Masked     []string  `json:"masked"`
	Momentum   float64   `json:"momentum"`
	WD         float64   `json:"weight_decay"`
	Steps      int       `json:"steps"`
	UMAP       struct {
		Keep        float64              `json:"keep"`
		Constraint  float64              `json:"constraint"`
		LR          float64              `json:"lr"`
		ScoresInit  map[string][]float32 `json:"scores_init"`
		Loss        []float64            `json:"loss"`
		CE          []float64            `json:"ce"`
		ScoreGrad   map[string][]float32 `json:"score_grad"`
		WeffGrad    map[string][]float32 `json:"weff_grad"`
		Masks0      map[string][]float32 `json:"masks0"`
		ScoresAfter map[string][]float32 `json:"scores_after"`
		MasksAfter  map[string][]float32 `json:"masks_after"`
		BNAfter     map[string][]float32 `json:"bn_after"`
		LogitsAfter []float32            `json:"logits_eval_after"`
	} `json:"umap"`
	UM struct {
		Constraint  float64              `json:"constraint"`
		LR          float64              `json:"lr"`
		Loss        []float64            `json:"loss"`
		CE          []float64            `json:"ce"`
		Grad        map[string][]float32 `json:"grad"`
		ParamsAfter map[string][]float32 `json:"params_after"`
		BNAfter     map[string][]float32 `json:"bn_after"`
		LogitsAfter []float32            `json:"logits_eval_after"`
	} `json:"um"`
}

func testdata(t testing.TB, name string) string {
	return filepath.Join(runtimetest.RepoRoot(t), "testdata", "unleash", name)
}

func loadRef(t testing.TB, name string) (*reference, *onnxgraph.Model) {
	t.Helper()
	b, err := os.ReadFile(testdata(t, name+".ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	ref := &reference{}
	if err := json.Unmarshal(b, ref); err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Load(testdata(t, ref.Model))
	if err != nil {
		t.Fatal(err)
	}
	return ref, m
}

// relErr returns max |got-want| / max|want|.
func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	scale := 1e-30
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i])-float64(want[i]))/scale)
	}
	return worst
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

func check(t *testing.T, what string, got, want []float32) {
	t.Helper()
	e := relErr(got, want)
	if e > tol {
		t.Errorf("%s: differs from PyTorch by %.3g relative (want <= %g)", what, e, tol)
	}
	worst.note(what, e)
}

func checkScalar(t *testing.T, what string, got, want float64) {
	t.Helper()
	e := math.Abs(got-want) / math.Max(math.Abs(want), 1e-30)
	if e > tol {
		t.Errorf("%s: %.9g, PyTorch %.9g (%.3g relative)", what, got, want, e)
	}
	worst.note(what, e)
}

// worst tracks the largest relative error seen, for the test log.
var worst = &errTracker{}

type errTracker struct {
	max  float64
	what string
}

func (w *errTracker) note(what string, e float64) {
	if e > w.max {
		w.max, w.what = e, what
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestImportMatchesPyTorch(t *testing.T) {
	for _, name := range []string{"tinybn", "opszoo", "poolzoo"} {
		t.Run(name, func(t *testing.T) {
			ref, m := loadRef(t, name)
			tr, err := unleash.New(m, unleash.DefaultOptions(unleash.UM))
			if err != nil {
				t.Fatal(err)
			}
			z, err := tr.Logits(ref.X)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "eval logits", z, ref.Logits)
		})
	}
}

// config is a backend and convolution-gradient mode the reference tests run under.
type config struct {
	name    string
	backend string
	conv    unleash.ConvGradient
}

// configs are the pure-Go backend (GoMLX's convolution gradients, subsampled strided
// convolutions, and explicit gradients) and the ONNX Runtime backend (explicit gradients, its
// default, and subsampled strided convolutions).
func configs(t *testing.T) []config {
	cs := []config{
		{"go", "go", unleash.ConvGradientNative},
		{"go-subsample", "go", unleash.ConvGradientSubsample},
		{"go-explicit", "go", unleash.ConvGradientExplicit},
	}
	if testing.Short() {
		return cs
	}
	if _, err := ort.FindLibrary(""); err != nil && !runtimetest.Required() {
		t.Logf("no ONNX Runtime, the onnx backend is not tested: %v", err)
		return cs
	}
	runtimetest.Setup(t)
	return append(cs, config{"onnx", "onnx", unleash.ConvGradientAuto}, config{"onnx-subsample", "onnx", unleash.ConvGradientSubsample})
}

func (c config) apply(t *testing.T, o *unleash.Options) {
	t.Helper()
	b, err := unleash.NewBackend(c.backend)
	if err != nil {
		t.Fatal(err)
	}
	o.Backend, o.ConvGradient = b, c.conv
}

func TestUMAPMatchesPyTorch(t *testing.T) {
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) { testUMAP(t, c) })
	}
}

func testUMAP(t *testing.T, c config) {
	worst = &errTracker{}
	for _, name := range []string{"tinybn", "opszoo", "poolzoo"} {
		t.Run(name, func(t *testing.T) {
			ref, m := loadRef(t, name)
			opts := unleash.DefaultOptions(unleash.UMAP)
			c.apply(t, &opts)
			opts.Keep = ref.UMAP.Keep
			opts.Constraint = ref.UMAP.Constraint
			opts.Momentum, opts.WeightDecay = ref.Momentum, ref.WD
			tr, err := unleash.New(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.Masked(); len(got) != len(ref.Masked) {
				t.Fatalf("masked layers %v, PyTorch %v", got, ref.Masked)
			}
			for _, l := range ref.Masked {
				if err := tr.SetScores(l, ref.UMAP.ScoresInit[l]); err != nil {
					t.Fatal(err)
				}
				got, err := tr.Mask(l)
				if err != nil {
					t.Fatal(err)
				}
				if relErr(got, ref.UMAP.Masks0[l]) != 0 {
					t.Errorf("%s: initial mask differs from PyTorch's", l)
				}
			}
			g, err := tr.Gradients(ref.X, ref.Y)
			if err != nil {
				t.Fatal(err)
			}
			checkScalar(t, "loss", g.Loss, ref.UMAP.Loss[0])
			checkScalar(t, "ce", g.CE, ref.UMAP.CE[0])
			for _, l := range ref.Masked {
				check(t, l+" score grad", g.Trained[l], ref.UMAP.ScoreGrad[l])
				check(t, l+" w_eff grad", g.Effective[l], ref.UMAP.WeffGrad[l])
			}
			for step := 0; step < ref.Steps; step++ {
				res, err := tr.Step(ref.X, ref.Y, ref.UMAP.LR)
				if err != nil {
					t.Fatal(err)
				}
				checkScalar(t, "step loss", res.Loss, ref.UMAP.Loss[step])
				checkScalar(t, "step ce", res.CE, ref.UMAP.CE[step])
			}
			for _, l := range ref.Masked {
				s, err := tr.Scores(l)
				if err != nil {
					t.Fatal(err)
				}
				check(t, l+" scores after steps", s, ref.UMAP.ScoresAfter[l])
				mk, err := tr.Mask(l)
				if err != nil {
					t.Fatal(err)
				}
				if relErr(mk, ref.UMAP.MasksAfter[l]) != 0 {
					t.Errorf("%s: mask after the steps differs from PyTorch's", l)
				}
			}
			for _, k := range sortedKeys(ref.UMAP.BNAfter) {
				v, err := tr.Value(k)
				if err != nil {
					t.Fatal(err)
				}
				check(t, k+" after steps", v, ref.UMAP.BNAfter[k])
			}
			z, err := tr.Logits(ref.X)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "eval logits after steps", z, ref.UMAP.LogitsAfter)
		})
	}
	t.Logf("largest relative error: %.3g (%s)", worst.max, worst.what)
}

func TestUMMatchesPyTorch(t *testing.T) {
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) { testUM(t, c) })
	}
}

func testUM(t *testing.T, c config) {
	worst = &errTracker{}
	for _, name := range []string{"tinybn", "opszoo", "poolzoo"} {
		t.Run(name, func(t *testing.T) {
			ref, m := loadRef(t, name)
			opts := unleash.DefaultOptions(unleash.UM)
			c.apply(t, &opts)
			opts.Constraint = ref.UM.Constraint
			opts.Momentum, opts.WeightDecay = ref.Momentum, ref.WD
			tr, err := unleash.New(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			g, err := tr.Gradients(ref.X, ref.Y)
			if err != nil {
				t.Fatal(err)
			}
			checkScalar(t, "loss", g.Loss, ref.UM.Loss[0])
			if len(g.Trained) != len(ref.UM.Grad) {
				t.Errorf("trained %v, PyTorch trains %v", sortedKeys(g.Trained), sortedKeys(ref.UM.Grad))
			}
			// A bias that feeds a train-mode BatchNorm has a true gradient of 0 (the batch mean
			// removes it); PyTorch's value is rounding noise. Such a gradient must be as small,
			// measured against the model's largest gradient.
			top := 0.0
			for _, v := range ref.UM.Grad {
				top = math.Max(top, maxAbs(v))
			}
			for _, k := range sortedKeys(ref.UM.Grad) {
				if want := ref.UM.Grad[k]; maxAbs(want) < 1e-6*top {
					if got := maxAbs(g.Trained[k]); got > 1e-5*top {
						t.Errorf("%s grad: PyTorch's is 0 up to rounding (%.3g), ours is %.3g", k, maxAbs(want), got)
					}
					continue
				}
				check(t, k+" grad", g.Trained[k], ref.UM.Grad[k])
			}
			for step := 0; step < ref.Steps; step++ {
				res, err := tr.Step(ref.X, ref.Y, ref.UM.LR)
				if err != nil {
					t.Fatal(err)
				}
				checkScalar(t, "step loss", res.Loss, ref.UM.Loss[step])
				checkScalar(t, "step ce", res.CE, ref.UM.CE[step])
			}
			for _, k := range sortedKeys(ref.UM.ParamsAfter) {
				v, err := tr.Value(k)
				if err != nil {
					t.Fatal(err)
				}
				check(t, k+" after steps", v, ref.UM.ParamsAfter[k])
			}
			for _, k := range sortedKeys(ref.UM.BNAfter) {
				v, err := tr.Value(k)
				if err != nil {
					t.Fatal(err)
				}
				check(t, k+" after steps", v, ref.UM.BNAfter[k])
			}
			z, err := tr.Logits(ref.X)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "eval logits after steps", z, ref.UM.LogitsAfter)
		})
	}
	t.Logf("largest relative error: %.3g (%s)", worst.max, worst.what)
}

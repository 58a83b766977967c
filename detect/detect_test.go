package detect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// ref is testdata/detect/NAME.ref.json, written by testdata/make_detectors.py.
type ref struct {
	Model        string      `json:"model"`
	FitCount     int         `json:"fit_count"`
	Dim          int         `json:"dim"`
	Classes      int         `json:"classes"`
	ScoredFit    int         `json:"scored_fit"`
	EvalShape    []int64     `json:"eval_input_shape"`
	EvalFeatures [][]float64 `json:"eval_features"`
	EvalLogits   [][]float64 `json:"eval_logits"`
	MeanFeature  []float64   `json:"mean_feature"`
	ReAct        []struct {
		P      float64 `json:"p"`
		Clip   float64 `json:"clip"`
		Scores scores  `json:"scores"`
	} `json:"react"`
	ASH []struct {
		Variant string  `json:"variant"`
		P       float64 `json:"p"`
		Scores  scores  `json:"scores"`
	} `json:"ash"`
	DICE []struct {
		P      float64 `json:"p"`
		Kept   int     `json:"kept"`
		Scores scores  `json:"scores"`
	} `json:"dice"`
	MDS struct {
		ClassMeans  [][]float64 `json:"class_means"`
		ClassCounts []int64     `json:"class_counts"`
		Scores      scores      `json:"scores"`
	} `json:"mds"`
	ViM struct {
		U            []float64 `json:"u"`
		EigVals      []float64 `json:"eigenvalues"`
		MaxLogitMean float64   `json:"max_logit_mean"`
		Dims         []struct {
			Dim    int     `json:"dim"`
			Alpha  float64 `json:"alpha"`
			Scores scores  `json:"scores"`
		} `json:"dims"`
	} `json:"vim"`
	KNN []struct {
		K      int    `json:"k"`
		Scores scores `json:"scores"`
	} `json:"knn"`
	ReActDICE struct {
		ReActP float64 `json:"react_p"`
		DICEP  float64 `json:"dice_p"`
		Scores scores  `json:"scores"`
	} `json:"react_dice"`
}

type scores struct {
	Eval []float64 `json:"eval"`
	Fit  []float64 `json:"fit"`
}

// fixture is one test model with its reference.
type fixture struct {
	name   string
	model  *Model
	raw    []byte
	ref    ref
	fit    []float32 // FitCount×D features computed by PyTorch
	labels []int
	eval   []float32 // eval inputs [B,C,H,W]
	evalF  []float32 // eval features computed by PyTorch
}

var fixtureNames = []string{"cnn28", "resnet32"}

func loadFixture(t testing.TB, name string) *fixture {
	t.Helper()
	root := runtimetest.RepoRoot(t)
	dir := filepath.Join(root, "testdata", "detect")
	fx := &fixture{name: name}
	data, err := os.ReadFile(filepath.Join(dir, name+".ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fx.ref); err != nil {
		t.Fatalf("%s.ref.json: %v", name, err)
	}
	if fx.raw, err = os.ReadFile(runtimetest.Model(t, fx.ref.Model)); err != nil {
		t.Fatal(err)
	}
	if fx.model, err = Parse(fx.raw); err != nil {
		t.Fatalf("parse %s: %v", fx.ref.Model, err)
	}
	fx.fit = readF32(t, filepath.Join(dir, name+".fit.f32"))
	if len(fx.fit) != fx.ref.FitCount*fx.ref.Dim {
		t.Fatalf("%s.fit.f32 has %d values, want %d×%d", name, len(fx.fit), fx.ref.FitCount, fx.ref.Dim)
	}
	lb, err := os.ReadFile(filepath.Join(dir, name+".fit.labels"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range lb {
		fx.labels = append(fx.labels, int(b))
	}
	fx.eval = readF32(t, filepath.Join(dir, name+".eval.f32"))
	for _, row := range fx.ref.EvalFeatures {
		for _, v := range row {
			fx.evalF = append(fx.evalF, float32(v))
		}
	}
	return fx
}

func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%4 != 0 {
		t.Fatalf("%s: %d bytes is not float32 data", path, len(data))
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// pass streams the fixture's fit features in uneven batches.
func (fx *fixture) pass() Pass {
	D := fx.ref.Dim
	return func(yield func([]float32, []int) error) error {
		n := fx.ref.FitCount
		for i, b := 0, 0; i < n; b++ {
			size := min(37+b%3*50, n-i)
			if err := yield(fx.fit[i*D:(i+size)*D], fx.labels[i:i+size]); err != nil {
				return err
			}
			i += size
		}
		return nil
	}
}

// maxDiff returns the largest |got-want| and the largest |got-want|/max(1,|want|).
func maxDiff(got, want []float64) (abs, rel float64) {
	for i := range want {
		d := math.Abs(got[i] - want[i])
		if math.IsNaN(d) {
			return math.Inf(1), math.Inf(1)
		}
		abs = math.Max(abs, d)
		rel = math.Max(rel, d/math.Max(1, math.Abs(want[i])))
	}
	return abs, rel
}

func checkClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	abs, rel := maxDiff(got, want)
	if abs > tol {
		t.Errorf("%s: max |diff| %.3g > %g", what, abs, tol)
	} else {
		t.Logf("%s: max |diff| %.2g (relative %.2g)", what, abs, rel)
	}
}

func flat(rows [][]float64) []float64 {
	var out []float64
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func TestHeadOfTestModels(t *testing.T) {
	for _, tc := range []struct {
		model          string
		features       string
		dim, classes   int
		weight, bias   string
		weightStoredKD bool
	}{
		{"cnn28.onnx", "/Flatten_output_0", 64, 10, "fc.weight", "fc.bias", true},
		{"resnet32.onnx", "/Flatten_output_0", 32, 10, "fc.weight", "fc.bias", true},
		{"mlp_flat.onnx", "input", 784, 10, "fc.weight", "fc.bias", true},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m, err := Load(runtimetest.Model(t, tc.model))
			if err != nil {
				t.Fatal(err)
			}
			h := m.Head
			if h.Features != tc.features || h.Dim != tc.dim || h.Classes != tc.classes || h.Logits != "logits" {
				t.Fatalf("head: features %q dim %d classes %d logits %q; want %q %d %d logits", h.Features, h.Dim, h.Classes, h.Logits, tc.features, tc.dim, tc.classes)
			}
			w, _ := initializer(m.proto.GetGraph(), tc.weight)
			b, _ := initializer(m.proto.GetGraph(), tc.bias)
			wf, _ := floats(w)
			bf, _ := floats(b)
			for i, v := range wf {
				if h.W[i] != float64(v) {
					t.Fatalf("W[%d] = %v, want %v", i, h.W[i], v)
				}
			}
			for i, v := range bf {
				if h.B[i] != float64(v) {
					t.Fatalf("B[%d] = %v, want %v", i, h.B[i], v)
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	two, err := os.ReadFile(runtimetest.Model(t, "two_heads.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(two); !errors.Is(err, ErrUnsupported) {
		t.Errorf("two_heads.onnx: err %v, want ErrUnsupported", err)
	}
	if _, err := Parse([]byte("not a model at all")); err == nil {
		t.Error("garbage parsed")
	}
	// Logits made by a Relu: no final linear layer.
	noHead := tinyModel(t, tinyOpts{last: "Relu"})
	_, err = Parse(noHead)
	if !errors.Is(err, ErrNoHead) {
		t.Errorf("Relu logits: err %v, want ErrNoHead", err)
	}
	t.Logf("Relu logits: %v", err)
	// A weight that is a graph input, not a constant.
	if _, err := Parse(tinyModel(t, tinyOpts{weightAsInput: true})); !errors.Is(err, ErrNoHead) {
		t.Errorf("weight as input: err %v, want ErrNoHead", err)
	}
	if _, err := Parse(tinyModel(t, tinyOpts{opset: 12})); !errors.Is(err, ErrUnsupported) {
		t.Errorf("opset 12: err %v, want ErrUnsupported", err)
	}
}

func TestHeadMatMulAdd(t *testing.T) {
	for _, biasFirst := range []bool{false, true} {
		m, err := Parse(tinyModel(t, tinyOpts{last: "MatMulAdd", biasFirst: biasFirst}))
		if err != nil {
			t.Fatal(err)
		}
		h := m.Head
		if h.Dim != 4 || h.Classes != 3 || h.Features != "feat" {
			t.Fatalf("head dim %d classes %d features %q, want 4 3 feat", h.Dim, h.Classes, h.Features)
		}
		// W is stored [D, K]: W[k][j] = stored[j*K + k] = 10j + k.
		for k := 0; k < 3; k++ {
			for j := 0; j < 4; j++ {
				if got, want := h.W[k*4+j], float64(10*j+k); got != want {
					t.Fatalf("W[%d][%d] = %v, want %v", k, j, got, want)
				}
			}
			if h.B[k] != float64(k)-1 {
				t.Fatalf("B[%d] = %v, want %v", k, h.B[k], float64(k)-1)
			}
		}
	}
}

// runORT runs model data on x with ONNX Runtime (one thread) and returns the named outputs.
func runORT(t *testing.T, data []byte, x []float32, shape []int64, outputs ...string) [][]float32 {
	t.Helper()
	return runORTInput(t, data, "input", x, shape, outputs...)
}

// runORTInput is runORT with the input's name.
func runORTInput(t *testing.T, data []byte, input string, x []float32, shape []int64, outputs ...string) [][]float32 {
	t.Helper()
	runtimetest.Setup(t)
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{input}, outputs, so)
	if err != nil {
		t.Fatalf("ONNX Runtime refuses the model: %v", err)
	}
	defer sess.Destroy()
	in, err := ort.NewTensor(ort.NewShape(shape...), x)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(outputs))
	if err := sess.Run([]ort.Value{in}, outs); err != nil {
		t.Fatalf("run: %v", err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		tt, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output %s is %T, want float32", outputs[i], o)
		}
		res[i] = append([]float32(nil), tt.GetData()...)
		o.Destroy()
	}
	return res
}

func f64(x []float32) []float64 { return toF64(x) }

// TestWithFeatures runs the model with its features output under ONNX Runtime: the logits are
// those of the plain model and the features those PyTorch computed.
func TestWithFeatures(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			data, err := fx.model.WithFeatures()
			if err != nil {
				t.Fatal(err)
			}
			got := runORT(t, data, fx.eval, fx.ref.EvalShape, "logits", FeaturesOutput)
			plain := runORT(t, fx.raw, fx.eval, fx.ref.EvalShape, "logits")
			for i := range plain[0] {
				if got[0][i] != plain[0][i] {
					t.Fatalf("logit %d: %v with the features output, %v without", i, got[0][i], plain[0][i])
				}
			}
			checkClose(t, "features vs PyTorch", f64(got[1]), flat(fx.ref.EvalFeatures), 1e-5)
			checkClose(t, "logits vs PyTorch", f64(got[0]), flat(fx.ref.EvalLogits), 1e-5)
			// The head's own float64 logits of ONNX Runtime's features.
			n := int(fx.ref.EvalShape[0])
			checkClose(t, "head logits vs ONNX Runtime", fx.model.Head.LogitsOf(got[1], n), f64(got[0]), 1e-5)
		})
	}
}

// detectors builds every detector the reference has, with the name of its reference scores.
func detectors(t *testing.T, fx *fixture, f *Fitted) (dets []Detector, want []scores) {
	t.Helper()
	add := func(d Detector, err error, s scores) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		dets = append(dets, d)
		want = append(want, s)
	}
	for _, r := range fx.ref.ReAct {
		d, err := f.ReAct(r.P)
		add(d, err, r.Scores)
	}
	for _, r := range fx.ref.ASH {
		d, err := NewASH(&fx.model.Head, ASHVariant(r.Variant[0]), r.P)
		add(d, err, r.Scores)
	}
	for _, r := range fx.ref.DICE {
		d, err := f.DICE(r.P)
		if err == nil && d.Kept() != r.Kept {
			t.Errorf("DICE p=%g keeps %d weights, reference %d", r.P, d.Kept(), r.Kept)
		}
		add(d, err, r.Scores)
	}
	d, err := f.Mahalanobis()
	add(d, err, fx.ref.MDS.Scores)
	for _, r := range fx.ref.ViM.Dims {
		d, err := f.ViM(r.Dim)
		if err == nil && math.Abs(d.Alpha-r.Alpha) > 1e-9*r.Alpha {
			t.Errorf("ViM dim %d: alpha %v, reference %v", r.Dim, d.Alpha, r.Alpha)
		}
		add(d, err, r.Scores)
	}
	for _, r := range fx.ref.KNN {
		d, err := f.KNN(r.K)
		add(d, err, r.Scores)
	}
	// DICE + ReAct, in either order of the steps (the clip acts on the features, the mask on the
	// weight).
	rd := fx.ref.ReActDICE
	react, err := f.ReAct(rd.ReActP)
	if err != nil {
		t.Fatal(err)
	}
	dice, err := f.DICE(rd.DICEP)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewChain(react, dice)
	add(c, err, rd.Scores)
	c, err = NewChain(dice, react)
	add(c, err, rd.Scores)
	return dets, want
}

func fitFixture(t *testing.T, fx *fixture) *Fitted {
	t.Helper()
	f, err := Fit(&fx.model.Head, fx.pass(), FitOptions{Seed: 1, ReActPercentiles: []float64{90}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFitMatchesReference fits on PyTorch's features and compares the statistics and every
// method's scores with the PyTorch reference (OpenOOD's semantics).
func TestFitMatchesReference(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			f := fitFixture(t, fx)
			if f.Count != int64(fx.ref.FitCount) || f.BankLen() != fx.ref.FitCount || len(f.Activations) != fx.ref.FitCount*fx.ref.Dim {
				t.Fatalf("count %d bank %d activations %d; want %d, %d, all", f.Count, f.BankLen(), len(f.Activations), fx.ref.FitCount, fx.ref.FitCount)
			}
			for _, r := range fx.ref.ReAct {
				if got := f.percentile(r.P); math.Abs(got-r.Clip) > 1e-12 {
					t.Errorf("ReAct clip at p=%g: %v, reference %v", r.P, got, r.Clip)
				}
			}
			if c := f.ReActCheck[0]; math.Abs(c.Achieved-90) > 0.01 {
				t.Errorf("ReAct p=90: %.4f%% of the activations at or below the clip", c.Achieved)
			}
			checkClose(t, "mean feature", f.Mean, fx.ref.MeanFeature, 1e-12)
			checkClose(t, "class means", f.ClassMeans, flat(fx.ref.MDS.ClassMeans), 1e-12)
			for c, n := range fx.ref.MDS.ClassCounts {
				if f.ClassCounts[c] != n {
					t.Errorf("class %d: %d samples, reference %d", c, f.ClassCounts[c], n)
				}
			}
			checkClose(t, "ViM origin u", f.U, fx.ref.ViM.U, 1e-9)
			checkClose(t, "ViM eigenvalues", f.EigVals, fx.ref.ViM.EigVals, 1e-10)
			if math.Abs(f.MaxLogitMean-fx.ref.ViM.MaxLogitMean) > 1e-10 {
				t.Errorf("mean max logit %v, reference %v", f.MaxLogitMean, fx.ref.ViM.MaxLogitMean)
			}
			dets, want := detectors(t, fx, f)
			n := int(fx.ref.EvalShape[0])
			for i, d := range dets {
				got, err := d.Score(fx.evalF, n)
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, d.Name()+" eval scores", got, want[i].Eval, 1e-5)
				got, err = d.Score(fx.fit[:fx.ref.ScoredFit*fx.ref.Dim], fx.ref.ScoredFit)
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, d.Name()+" fit scores", got, want[i].Fit, 1e-5)
			}
		})
	}
}

// TestGraphsMatchReference writes each detector into the model and runs it under ONNX Runtime
// on the eval images: the scores are the reference's.
func TestGraphsMatchReference(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			f := fitFixture(t, fx)
			dets, want := detectors(t, fx, f)
			n := int(fx.ref.EvalShape[0])
			K := fx.ref.Classes
			for i, d := range dets {
				data, err := fx.model.Write(d)
				if err != nil {
					t.Fatalf("%s: %v", d.Name(), err)
				}
				var got []float64
				if d.Shaping() {
					z := runORT(t, data, fx.eval, fx.ref.EvalShape, "logits")[0]
					for r := 0; r < n; r++ {
						got = append(got, logsumexp(f64(z[r*K:(r+1)*K])))
					}
				} else {
					out := runORT(t, data, fx.eval, fx.ref.EvalShape, "logits", ScoreOutput)
					got = f64(out[1])
				}
				checkClose(t, d.Name()+" graph", got, want[i].Eval, graphTol(want[i].Eval))
			}
		})
	}
}

// graphTol is the tolerance of a float32 graph against a float64 reference: 1e-5, or 1e-5
// relative to the largest score where scores exceed 1 in magnitude (a float32 sum of squares
// of size 500 carries about 3e-5 of rounding).
func graphTol(want []float64) float64 {
	m := 1.0
	for _, v := range want {
		m = math.Max(m, math.Abs(v))
	}
	return 1e-5 * m
}

func TestFitStreamsWithBoundedMemory(t *testing.T) {
	fx := loadFixture(t, "cnn28")
	D := fx.ref.Dim
	opts := FitOptions{ActivationSample: 5000, BankSize: 50, Seed: 3, ReActPercentiles: []float64{50, 90, 99}}
	f, err := Fit(&fx.model.Head, fx.pass(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Activations) != 5000 || f.BankLen() != 50 {
		t.Fatalf("kept %d activations and %d bank vectors, want 5000 and 50", len(f.Activations), f.BankLen())
	}
	// 5000 of 38400 activations: the rank error's standard deviation is under 0.5 points.
	for _, c := range f.ReActCheck {
		if math.Abs(c.Achieved-c.P) > 2 {
			t.Errorf("clip for p=%g sits at the %.2f-th percentile of all activations", c.P, c.Achieved)
		}
		t.Logf("p=%g: clip %.4f at the %.3f-th percentile of all %d activations", c.P, c.Clip, c.Achieved, f.ActivationCount)
	}
	// The bank holds normalised vectors, each one of the fit vectors.
	for b := 0; b < f.BankLen(); b++ {
		row := f.Bank[b*D : (b+1)*D]
		found := false
		norm := make([]float32, D)
		for i := 0; i < fx.ref.FitCount && !found; i++ {
			normalise(norm, fx.fit[i*D:(i+1)*D])
			found = equal32(norm, row)
		}
		if !found {
			t.Fatalf("bank vector %d is none of the fit vectors", b)
		}
	}
	// Seeded: the same seed keeps the same sample; another seed another.
	g, err := Fit(&fx.model.Head, fx.pass(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !equal32(f.Bank, g.Bank) || !equal32(f.Activations, g.Activations) {
		t.Error("the same seed kept different samples")
	}
	opts.Seed = 4
	if h, err := Fit(&fx.model.Head, fx.pass(), opts); err != nil || equal32(f.Bank, h.Bank) {
		t.Errorf("another seed kept the same bank (err %v)", err)
	}
	if _, err := f.KNN(51); err == nil {
		t.Error("k beyond the bank size accepted")
	}
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSamplerIsUniform checks Algorithm L: over many seeds each item of a stream of 100 is kept
// by a reservoir of 10 about 10% of the time.
func TestSamplerIsUniform(t *testing.T) {
	const items, size, runs = 100, 10, 4000
	kept := make([]int, items)
	for seed := uint64(0); seed < runs; seed++ {
		s := newSampler(size, seed)
		res := make([]int, 0, size)
		for i := 0; i < items; {
			if d := s.dropsAhead(items - i); d > 0 {
				s.drop(d)
				i += d
				continue
			}
			if slot := s.offer(); slot == len(res) {
				res = append(res, i)
			} else if slot >= 0 {
				res[slot] = i
			}
			i++
		}
		if len(res) != size {
			t.Fatalf("seed %d: %d kept, want %d", seed, len(res), size)
		}
		for _, i := range res {
			kept[i]++
		}
	}
	// Expected 400 each, standard deviation sqrt(4000·0.1·0.9) = 19.
	for i, k := range kept {
		if k < 400-5*19 || k > 400+5*19 {
			t.Errorf("item %d kept %d times of %d, want about 400", i, k, runs)
		}
	}
}

func TestFitErrors(t *testing.T) {
	fx := loadFixture(t, "resnet32")
	h := &fx.model.Head
	D := h.Dim
	feats := fx.fit[:10*D]
	for _, tc := range []struct {
		name string
		pass Pass
	}{
		{"empty", func(yield func([]float32, []int) error) error { return nil }},
		{"ragged", func(yield func([]float32, []int) error) error { return yield(feats[:D+1], nil) }},
		{"bad label", func(yield func([]float32, []int) error) error { return yield(feats[:D], []int{10}) }},
		{"label count", func(yield func([]float32, []int) error) error { return yield(feats[:2*D], []int{1}) }},
		{"NaN", func(yield func([]float32, []int) error) error {
			x := append([]float32(nil), feats[:D]...)
			x[3] = float32(math.NaN())
			return yield(x, nil)
		}},
		{"passes differ", func() Pass {
			calls := 0
			return func(yield func([]float32, []int) error) error {
				calls++
				return yield(feats[:calls*D], nil)
			}
		}()},
		{"source error", func(yield func([]float32, []int) error) error { return fmt.Errorf("disk on fire") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Fit(h, tc.pass, FitOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
	// Labels from predictions: all ten vectors in one or more predicted classes; Mahalanobis
	// needs every class, so it refuses with an error naming the class.
	f, err := Fit(h, func(yield func([]float32, []int) error) error { return yield(feats, nil) }, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Mahalanobis(); err == nil {
		t.Error("Mahalanobis with empty classes accepted")
	} else {
		t.Log(err)
	}
	if _, err := f.ViM(D); err == nil {
		t.Error("ViM with dim = D accepted")
	}
	if _, err := NewASH(h, ASHB, 100); err == nil {
		t.Error("ASH keeping nothing accepted")
	}
	if _, err := NewASH(h, 'x', 90); err == nil {
		t.Error("ASH variant x accepted")
	}
}

// TestScoreKNNs: KNN detectors of one bank scored together give each one's own Score, bit for
// bit; detectors of different banks are refused.
func TestScoreKNNs(t *testing.T) {
	fx := loadFixture(t, "cnn28")
	f := fitFixture(t, fx)
	var ks []*KNN
	for _, k := range []int{1, 5, 50, f.BankLen()} {
		d, err := f.KNN(k)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, d)
	}
	feats := fx.fit[:40*fx.ref.Dim]
	got, err := ScoreKNNs(ks, feats, 40)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range ks {
		want, err := k.Score(feats, 40)
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if got[i][j] != want[j] {
				t.Fatalf("k=%d image %d: together %v, alone %v", k.K, j, got[i][j], want[j])
			}
		}
	}
	other := f.Bank[:len(f.Bank)-fx.ref.Dim]
	if _, err := ScoreKNNs([]*KNN{ks[0], {K: 1, Bank: other, head: ks[0].head}}, feats, 40); err == nil {
		t.Error("KNN detectors of different banks scored together")
	}
	for _, k := range ks[1:] {
		if k.BankKey() != ks[0].BankKey() {
			t.Errorf("KNN k=%d and k=%d of one Fitted have different BankKeys", ks[0].K, k.K)
		}
	}
	for name, k := range map[string]*KNN{
		"a shorter bank":     {K: 1, Bank: other, head: ks[0].head},
		"a copy of the bank": {K: 1, Bank: slices.Clone(f.Bank), head: ks[0].head},
		"another head":       {K: 1, Bank: f.Bank, head: &Head{}},
	} {
		if k.BankKey() == ks[0].BankKey() {
			t.Errorf("KNN on %s has the same BankKey", name)
		}
	}
}

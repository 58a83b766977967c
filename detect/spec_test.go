package detect

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rt "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// TestShapedGraphsOpenInRuntime: a shaping detector's graph keeps the model's one logits
// output, so the project's runtime (eval, score, the daemon) opens and runs it as it runs the
// plain model, and the record says so.
func TestShapedGraphsOpenInRuntime(t *testing.T) {
	fx := loadFixture(t, "cnn28")
	runtimetest.Setup(t)
	f := fitFixture(t, fx)
	react, _ := f.ReAct(90)
	ash, _ := NewASH(&fx.model.Head, ASHB, 65)
	dice, _ := f.DICE(90)
	n := int(fx.ref.EvalShape[0])
	for _, d := range []Detector{react, ash, dice} {
		data, err := fx.model.Write(d)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "shaped.onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := rt.Open(path, rt.Options{IntraOpThreads: 1})
		if err != nil {
			t.Fatalf("%s: runtime refuses the graph: %v", d.Name(), err)
		}
		r, err := c.NewRunner(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetInput(fx.eval); err != nil {
			t.Fatal(err)
		}
		z, err := r.Run()
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		for i := 0; i < n; i++ {
			got = append(got, logsumexp(f64(z[i*10:(i+1)*10])))
		}
		want, _ := d.Score(fx.evalF, n)
		checkClose(t, d.Name()+" through runtime.Runner", got, want, graphTol(want))
		r.Close()
		c.Close()
		if s := d.Spec(); s.Output != "logits" {
			t.Errorf("%s: spec output %q, want logits", d.Name(), s.Output)
		}
	}
}

func TestSpecs(t *testing.T) {
	fx := loadFixture(t, "resnet32")
	f := fitFixture(t, fx)
	react, _ := f.ReAct(90)
	ash, _ := NewASH(&fx.model.Head, ASHS, 90)
	dice, _ := f.DICE(90)
	vim, _ := f.ViM(16)
	mds, _ := f.Mahalanobis()
	knn, _ := f.KNN(5)
	for _, tc := range []struct {
		d    Detector
		want string
	}{
		{react, `{"method":"react","output":"logits","p":90,"clip":` + jsonNum(fx.ref.ReAct[1].Clip) + `}`},
		{ash, `{"method":"ash-s","output":"logits","p":90,"kept":3}`},
		{dice, `{"method":"dice","output":"logits","p":90,"kept":32}`},
		{vim, `{"method":"vim","output":"ood_score","dim":16,"alpha":` + jsonNum(vim.Alpha) + `}`},
		{mds, `{"method":"mds","output":"ood_score","rank":32}`},
		{knn, `{"method":"knn","output":"ood_score","k":5,"bank":600}`},
	} {
		got, err := json.Marshal(tc.d.Spec())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s: spec %s, want %s", tc.d.Name(), got, tc.want)
		}
	}
}

func jsonNum(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestChainOfFeatureSteps: ReAct then ASH-S shapes the clipped features; the graph equals the
// host-side composition under ONNX Runtime, and bad chains are refused.
func TestChainOfFeatureSteps(t *testing.T) {
	fx := loadFixture(t, "resnet32")
	f := fitFixture(t, fx)
	react, _ := f.ReAct(90)
	ash, _ := NewASH(&fx.model.Head, ASHS, 65)
	dice, _ := f.DICE(90)
	c, err := NewChain(react, ash)
	if err != nil {
		t.Fatal(err)
	}
	n := int(fx.ref.EvalShape[0])
	want, err := c.Score(fx.evalF, n)
	if err != nil {
		t.Fatal(err)
	}
	// The chain differs from ASH-S alone: the clip changes what ASH keeps and its scale.
	alone, _ := ash.Score(fx.evalF, n)
	if abs, _ := maxDiff(want, alone); abs < 1e-3 {
		t.Errorf("ReAct+ASH-S scores equal ASH-S's (max diff %g)", abs)
	}
	data, err := fx.model.Write(c)
	if err != nil {
		t.Fatal(err)
	}
	z := runORT(t, data, fx.eval, fx.ref.EvalShape, "logits")[0]
	var got []float64
	for i := 0; i < n; i++ {
		got = append(got, logsumexp(f64(z[i*10:(i+1)*10])))
	}
	checkClose(t, c.Name()+" graph", got, want, graphTol(want))
	if s, _ := json.Marshal(c.Spec()); !json.Valid(s) || c.Spec().Method != "chain" || len(c.Spec().Steps) != 2 {
		t.Errorf("chain spec %s", s)
	}
	if _, err := NewChain(react); err == nil {
		t.Error("a chain of one accepted")
	}
	if _, err := NewChain(dice, react, dice); err == nil {
		t.Error("two DICE steps accepted")
	}
	other := loadFixture(t, "cnn28")
	otherASH, _ := NewASH(&other.model.Head, ASHP, 65)
	if _, err := NewChain(react, otherASH); err == nil {
		t.Error("steps of two models accepted")
	}
}

func TestCandidates(t *testing.T) {
	fx := loadFixture(t, "cnn28")
	f, err := Fit(&fx.model.Head, fx.pass(), FitOptions{BankSize: 60, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ds, skipped := Candidates(fx.model, f, DefaultGrid())
	if len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Name())
	}
	// 4 ReAct, 21 ASH, 1 DICE, 1 chain, 3 ViM, 1 MDS; KNN: a bank of 60 of 600 vectors scales
	// k = 50, 100, 200, 500, 1000 to 5, 10, 20, 50 (100 > 60 is dropped).
	if len(ds) != 4+21+1+1+3+1+4 {
		t.Fatalf("%d candidates: %v", len(ds), names)
	}
	for _, want := range []string{"react(p=85)", "ash-s(p=95)", "dice(p=90)", "react(p=90)+dice(p=90)", "vim(dim=48)", "mds", "knn(k=5)", "knn(k=50)"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
	// A class without samples: Mahalanobis is skipped with its reason, the rest stay.
	g, err := Fit(&fx.model.Head, func(yield func([]float32, []int) error) error {
		return yield(fx.fit[:64*fx.ref.Dim], make([]int, 64))
	}, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds, skipped = Candidates(fx.model, g, Grid{MDS: true, ReAct: []float64{90}})
	if len(ds) != 1 || len(skipped) != 1 {
		t.Errorf("%d candidates, %d skipped (%v); want 1 and 1", len(ds), len(skipped), skipped)
	}
}

// TestDeadFeatures: features that are zero on every ID image (dead ReLU channels) leave the
// covariance singular; the pseudo-inverse drops those directions (as sklearn's pinvh does), so
// Mahalanobis keeps rank D-3 and every detector still gives finite scores.
func TestDeadFeatures(t *testing.T) {
	fx := loadFixture(t, "resnet32")
	D := fx.ref.Dim
	fit := append([]float32(nil), fx.fit...)
	dead := []int{3, 17, 30}
	for i := 0; i < fx.ref.FitCount; i++ {
		for _, j := range dead {
			fit[i*D+j] = 0
		}
	}
	f, err := Fit(&fx.model.Head, func(yield func([]float32, []int) error) error { return yield(fit, fx.labels) }, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Mahalanobis()
	if err != nil {
		t.Fatal(err)
	}
	if m.R != D-len(dead) {
		t.Errorf("precision rank %d, want %d", m.R, D-len(dead))
	}
	ds, skipped := Candidates(fx.model, f, DefaultGrid())
	if len(skipped) > 0 {
		t.Fatalf("skipped %v", skipped)
	}
	n := int(fx.ref.EvalShape[0])
	for _, d := range ds {
		s, err := d.Score(fx.evalF, n)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: score %d is %v", d.Name(), i, v)
			}
		}
	}
	// A dead direction does not count: moving an eval vector along it leaves the distance.
	x := append([]float32(nil), fx.evalF[:D]...)
	a, _ := m.Score(x, 1)
	x[dead[0]] += 5
	b, _ := m.Score(x, 1)
	if math.Abs(a[0]-b[0]) > 1e-9*math.Abs(a[0]) {
		t.Errorf("moving along a dead feature changed the score from %v to %v", a[0], b[0])
	}
}

// TestHeadOnly writes every reference detector into the head-only model and runs it under ONNX
// Runtime on PyTorch's eval features: the scores are the reference's, as from the full graph.
func TestHeadOnly(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			f := fitFixture(t, fx)
			hm, err := fx.model.HeadOnly()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := hm.WithFeatures(); err == nil {
				t.Error("WithFeatures on the head-only model accepted")
			}
			dets, want := detectors(t, fx, f)
			n := int(fx.ref.EvalShape[0])
			shape := []int64{int64(n), int64(fx.ref.Dim)}
			K := fx.ref.Classes
			for i, d := range dets {
				data, err := hm.Write(d)
				if err != nil {
					t.Fatalf("%s: %v", d.Name(), err)
				}
				var got []float64
				if d.Shaping() {
					z := runORTInput(t, data, FeaturesOutput, fx.evalF, shape, "logits")[0]
					for r := 0; r < n; r++ {
						got = append(got, logsumexp(f64(z[r*K:(r+1)*K])))
					}
				} else {
					got = f64(runORTInput(t, data, FeaturesOutput, fx.evalF, shape, ScoreOutput)[0])
				}
				checkClose(t, d.Name()+" head-only graph", got, want[i].Eval, graphTol(want[i].Eval))
			}
			// A detector of another model is refused.
			other := loadFixture(t, otherName(name))
			od, _ := NewASH(&other.model.Head, ASHP, 65)
			if _, err := hm.Write(od); err == nil {
				t.Error("a detector fitted on another model's features was written")
			}
		})
	}
}

func otherName(name string) string {
	if name == "cnn28" {
		return "resnet32"
	}
	return "cnn28"
}

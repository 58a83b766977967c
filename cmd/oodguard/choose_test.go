package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// writeNoisePNGs writes n 28x28 gray noise PNGs into dir.
func writeNoisePNGs(t *testing.T, dir string, n int, seed uint64) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for p := range img.Pix {
			img.Pix[p] = uint8(rng.IntN(256))
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

type chooseFixture struct {
	dir, fit, idVal, oodVal, test string
}

func newChooseFixture(t *testing.T) chooseFixture {
	dir := t.TempDir()
	fit, _ := datasettest.WriteIDX(t, dir, "fit", 300, 28, 28)
	idVal, _ := datasettest.WriteIDX(t, filepath.Join(dir, mkdir(t, dir, "val")), "val", 120, 28, 28)
	return chooseFixture{dir: dir, fit: fit, idVal: idVal,
		oodVal: writeNoisePNGs(t, filepath.Join(dir, "noise-val"), 80, 1),
		test:   writeNoisePNGs(t, filepath.Join(dir, "noise-test"), 60, 2)}
}

func mkdir(t *testing.T, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestChoose runs choose on cnn28 with generated data: the rule holds over the written
// candidates (the chosen one is eligible, has the lowest validation FPR95 among the eligible,
// and is never worse than energy), the written model and calibration score the ID validation
// data under ONNX Runtime as the candidate's host-side scores within 1e-5 relative, and the
// report files are there.
func TestChoose(t *testing.T) {
	runtimetest.Setup(t)
	fx := newChooseFixture(t)
	out := filepath.Join(fx.dir, "chosen")
	pre := fixture(t, "cnn28.preprocess.json")
	// An -extra model that is a copy of the model: every candidate of it ties with the model's
	// own, and loses the tie.
	model, err := os.ReadFile(fixture(t, "cnn28.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(fx.dir, "copy.onnx")
	if err := os.WriteFile(extra, model, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut := runCLI(t, "choose", "-model", fixture(t, "cnn28.onnx"), "-preprocess", pre, "-fit", fx.fit,
		"-id-val", fx.idVal, "-ood-val", fx.oodVal, "-test", fx.test, "-extra", extra, "-threads", "1", "-out", out)
	if code != 0 {
		t.Fatalf("choose: exit %d\n%s\n%s", code, stdout, errOut)
	}
	var sum struct {
		Accuracy   float64 `json:"id_accuracy"`
		Chosen     string  `json:"chosen"`
		Threshold  float64 `json:"threshold"`
		OOD        []calibrate.DataRef
		Candidates []struct {
			Name     string  `json:"name"`
			Kind     string  `json:"kind"`
			Accuracy float64 `json:"id_accuracy"`
			Eligible bool    `json:"eligible"`
			Chosen   bool    `json:"chosen"`
			Sets     []struct {
				Name    string            `json:"name"`
				Role    string            `json:"role"`
				Metrics calibrate.Metrics `json:"metrics"`
			} `json:"sets"`
		} `json:"candidates"`
	}
	b, err := os.ReadFile(filepath.Join(out, "candidates.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	chosen := -1
	for i, c := range sum.Candidates {
		kinds[c.Kind]++
		if len(c.Sets) != 2 || c.Sets[0].Role != "validation" || c.Sets[1].Role != "test" || c.Sets[1].Name != sum.OOD[1].Name {
			t.Fatalf("candidate %s sets %+v", c.Name, c.Sets)
		}
		if want := 100*(sum.Accuracy-c.Accuracy) <= 1; c.Eligible != want {
			t.Errorf("%s: accuracy %.4f vs model %.4f, eligible %v", c.Name, c.Accuracy, sum.Accuracy, c.Eligible)
		}
		if c.Chosen {
			if chosen >= 0 {
				t.Fatalf("two chosen: %s and %s", sum.Candidates[chosen].Name, c.Name)
			}
			chosen = i
		}
	}
	if kinds["logits"] != 8 || kinds["shaping"] < 40 || kinds["feature"] < 8 {
		t.Errorf("candidate kinds %v (the model's and the copy's)", kinds)
	}
	half := len(sum.Candidates) / 2
	for i, c := range sum.Candidates[:half] {
		e := sum.Candidates[half+i]
		if e.Name != "copy.onnx: "+c.Name || e.Sets[0].Metrics != c.Sets[0].Metrics || e.Chosen {
			t.Errorf("the copy's %s (%+v, chosen %v) differs from the model's %s (%+v)", e.Name, e.Sets[0].Metrics, e.Chosen, c.Name, c.Sets[0].Metrics)
		}
	}
	if sum.Candidates[0].Name != "energy(T=1)" {
		t.Fatalf("first candidate %s, want energy", sum.Candidates[0].Name)
	}
	if chosen < 0 || sum.Candidates[chosen].Name != sum.Chosen {
		t.Fatalf("chosen %q not marked", sum.Chosen)
	}
	best := sum.Candidates[chosen]
	if !best.Eligible || best.Sets[0].Metrics.FPR95 > sum.Candidates[0].Sets[0].Metrics.FPR95 {
		t.Errorf("chosen %s: eligible %v, FPR95 %v vs energy %v", best.Name, best.Eligible, best.Sets[0].Metrics.FPR95, sum.Candidates[0].Sets[0].Metrics.FPR95)
	}
	for i, c := range sum.Candidates {
		fpr := c.Sets[0].Metrics.FPR95
		if c.Eligible && (fpr < best.Sets[0].Metrics.FPR95 || (i < chosen && fpr == best.Sets[0].Metrics.FPR95)) {
			t.Errorf("%s (FPR95 %v) should have been chosen over %s (%v)", c.Name, fpr, best.Name, best.Sets[0].Metrics.FPR95)
		}
	}
	for _, f := range []string{"model.onnx", "calibration.json", "candidates.csv", "report/index.html", "report/report.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	csvB, _ := os.ReadFile(filepath.Join(out, "candidates.csv"))
	if got := strings.Count(string(csvB), "\n"); got != 1+2*len(sum.Candidates) {
		t.Errorf("candidates.csv has %d lines, want %d", got, 1+2*len(sum.Candidates))
	}
	if !strings.Contains(stdout, "chosen: "+sum.Chosen) || !strings.Contains(stdout, "never seen by the choice") {
		t.Errorf("choose printed:\n%s", stdout)
	}

	// The written model and calibration, under ONNX Runtime, give the threshold choose recorded,
	// and a calibration whose score names the chosen candidate.
	cal, err := calibrate.LoadCalibration(filepath.Join(out, "calibration.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cal.Threshold != sum.Threshold || cal.AchievedTPR < 0.95 {
		t.Errorf("calibration threshold %v (TPR %v), candidates.json %v", cal.Threshold, cal.AchievedTPR, sum.Threshold)
	}
	if best.Kind != "logits" && cal.Score.Name != best.Name {
		t.Errorf("calibration score %s does not record %s", cal.Score, best.Name)
	}
	if best.Kind == "feature" && cal.Score.Kind != score.KindGraph {
		t.Errorf("a feature detector calibrated as %s", cal.Score)
	}
	// The ORT scores of the chosen model on ID validation give the same FPR95 against the OOD
	// validation set as the host-side scores choose measured.
	code, stdout, errOut = runCLI(t, "eval", "-model", filepath.Join(out, "model.onnx"), "-calibration", filepath.Join(out, "calibration.json"),
		"-id", fx.idVal, "-ood", fx.oodVal, "-scores", string(cal.Score.Kind), "-out", filepath.Join(fx.dir, "eval"), "-json")
	if code != 0 {
		t.Fatalf("eval of the chosen model: exit %d\n%s\n%s", code, stdout, errOut)
	}
	var ev struct {
		Scores []struct {
			Sets []struct {
				Metrics calibrate.Metrics `json:"metrics"`
			} `json:"sets"`
		} `json:"scores"`
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Scores[0].Sets[0].Metrics, best.Sets[0].Metrics; math.Abs(got.FPR95-want.FPR95) > 0.02 || math.Abs(got.AUROC-want.AUROC) > 0.01 {
		t.Errorf("the written model under ONNX Runtime: FPR95 %v AUROC %v; choose measured %v %v", got.FPR95, got.AUROC, want.FPR95, want.AUROC)
	}
}

// TestChooseBadInput: bad flags and data give an error naming the input, never a panic.
func TestChooseBadInput(t *testing.T) {
	runtimetest.Setup(t)
	fx := newChooseFixture(t)
	model := fixture(t, "cnn28.onnx")
	base := []string{"choose", "-model", model, "-preset", "fashion-mnist", "-fit", fx.fit, "-id-val", fx.idVal}
	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"no ood-val", base, "-ood-val are required"},
		{"two ood-val", append(base[:len(base):len(base)], "-ood-val", fx.oodVal, "-ood-val", fx.test), "one OOD family"},
		{"negative drop", append(base[:len(base):len(base)], "-ood-val", fx.oodVal, "-max-acc-drop", "-1"), "-max-acc-drop"},
		{"unknown rule", append(base[:len(base):len(base)], "-ood-val", fx.oodVal, "-rule", "best"), "-rule \"best\""},
		{"missing fit data", []string{"choose", "-model", model, "-preset", "fashion-mnist", "-fit", filepath.Join(fx.dir, "nope"), "-id-val", fx.idVal, "-ood-val", fx.oodVal, "-out", filepath.Join(fx.dir, "o1")}, "nope"},
		{"unlabelled id-val", []string{"choose", "-model", model, "-preset", "fashion-mnist", "-fit", fx.fit, "-id-val", fx.test, "-ood-val", fx.oodVal, "-out", filepath.Join(fx.dir, "o2")}, "no labels"},
		{"wrong preset", []string{"choose", "-model", model, "-preset", "cifar10", "-fit", fx.fit, "-id-val", fx.idVal, "-ood-val", fx.oodVal}, "preprocessing gives 3x32x32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, errOut := runCLI(t, c.args...)
			if code == 0 || !strings.Contains(errOut, c.says) {
				t.Errorf("exit %d, stderr does not say %q:\n%s%s", code, c.says, stdout, errOut)
			}
			if strings.Contains(errOut, "panic") {
				t.Errorf("panicked:\n%s", errOut)
			}
		})
	}
}

// TestChooseIDTest: -id-test changes only what the test sets are measured against. With a copy
// of the ID validation data as -id-test, every candidate's test metrics equal those of a run
// without it (the documented default) and its ID test accuracy equals its validation accuracy;
// with other ID test data, the validation metrics, eligibility and choice stay those of the run
// without it (the choice never sees ID test data) while the test metrics change, and report-test/
// is written. -id-test without -test, or equal to -id-val, is a usage error.
func TestChooseIDTest(t *testing.T) {
	runtimetest.Setup(t)
	fx := newChooseFixture(t)
	model, pre := fixture(t, "cnn28.onnx"), fixture(t, "cnn28.preprocess.json")
	valCopy := filepath.Join(fx.dir, mkdir(t, fx.dir, "copy"), "val-images-idx3-ubyte")
	for _, suffix := range []string{"images-idx3-ubyte", "labels-idx1-ubyte"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(fx.idVal), "val-"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fx.dir, "copy", "val-"+suffix), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := datasettest.WriteIDX(t, filepath.Join(fx.dir, mkdir(t, fx.dir, "idtest")), "test", 90, 28, 28)

	type summary struct {
		Accuracy     float64            `json:"id_accuracy"`
		TestAccuracy float64            `json:"id_test_accuracy"`
		IDTest       *calibrate.DataRef `json:"id_test"`
		Chosen       string             `json:"chosen"`
		Candidates   []struct {
			Name         string   `json:"name"`
			Accuracy     float64  `json:"id_accuracy"`
			TestAccuracy *float64 `json:"id_test_accuracy"`
			Eligible     bool     `json:"eligible"`
			Sets         []struct {
				Metrics calibrate.Metrics `json:"metrics"`
			} `json:"sets"`
		} `json:"candidates"`
	}
	run := func(name string, extra ...string) summary {
		out := filepath.Join(fx.dir, name)
		args := append([]string{"choose", "-model", model, "-preprocess", pre, "-fit", fx.fit, "-fit-limit", "100",
			"-id-val", fx.idVal, "-ood-val", fx.oodVal, "-test", fx.test, "-threads", "1", "-out", out}, extra...)
		code, stdout, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("choose %v: exit %d\n%s\n%s", extra, code, stdout, errOut)
		}
		b, err := os.ReadFile(filepath.Join(out, "candidates.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s summary
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain := run("plain")
	same := run("same", "-id-test", valCopy)
	diff := run("other", "-id-test", other)

	if plain.IDTest != nil || same.IDTest == nil || same.IDTest.Count != 120 || diff.IDTest == nil || diff.IDTest.Count != 90 {
		t.Fatalf("id_test: plain %+v, same %+v, other %+v", plain.IDTest, same.IDTest, diff.IDTest)
	}
	if same.TestAccuracy != same.Accuracy {
		t.Errorf("ID test = ID validation: accuracy %v vs %v", same.TestAccuracy, same.Accuracy)
	}
	if same.Chosen != plain.Chosen || diff.Chosen != plain.Chosen {
		t.Errorf("chosen %q (plain), %q (same), %q (other): the choice must not see ID test data", plain.Chosen, same.Chosen, diff.Chosen)
	}
	changed := 0
	for i, p := range plain.Candidates {
		s, d := same.Candidates[i], diff.Candidates[i]
		if p.TestAccuracy != nil || s.TestAccuracy == nil || d.TestAccuracy == nil {
			t.Fatalf("%s: id_test_accuracy %v %v %v", p.Name, p.TestAccuracy, s.TestAccuracy, d.TestAccuracy)
		}
		if *s.TestAccuracy != s.Accuracy {
			t.Errorf("%s: ID test accuracy %v, validation %v, on the same images", p.Name, *s.TestAccuracy, s.Accuracy)
		}
		if s.Sets[1].Metrics != p.Sets[1].Metrics {
			t.Errorf("%s: test metrics %+v against a copy of ID validation, %+v without -id-test", p.Name, s.Sets[1].Metrics, p.Sets[1].Metrics)
		}
		if d.Sets[0].Metrics != p.Sets[0].Metrics || d.Eligible != p.Eligible || d.Accuracy != p.Accuracy {
			t.Errorf("%s: validation %+v (eligible %v) with other ID test data, %+v (%v) without", p.Name, d.Sets[0].Metrics, d.Eligible, p.Sets[0].Metrics, p.Eligible)
		}
		if d.Sets[1].Metrics != p.Sets[1].Metrics {
			changed++
		}
	}
	if changed == 0 {
		t.Error("no test metric changed with other ID test data: -id-test is not used")
	}
	for _, f := range []string{"report/index.html", "report-test/index.html"} {
		if _, err := os.Stat(filepath.Join(fx.dir, "other", f)); err != nil {
			t.Error(err)
		}
	}

	base := []string{"choose", "-model", model, "-preprocess", pre, "-fit", fx.fit, "-id-val", fx.idVal, "-ood-val", fx.oodVal}
	for _, c := range []struct {
		args []string
		says string
	}{
		{append(base[:len(base):len(base)], "-id-test", other), "only used with -test"},
		{append(base[:len(base):len(base)], "-test", fx.test, "-id-test", fx.idVal), "is -id-val"},
		{append(base[:len(base):len(base)], "-test", fx.test, "-id-test", fx.test, "-out", filepath.Join(fx.dir, "o3")), "no labels"},
	} {
		code, stdout, errOut := runCLI(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.says) || strings.Contains(errOut, "panic") {
			t.Errorf("%v: exit %d, stderr does not say %q:\n%s%s", c.args[len(base):], code, c.says, stdout, errOut)
		}
	}
}

// TestSelectCandidate: the two rules on made-up validation results. fpr takes the lowest
// validation FPR95 among the eligible (energy and earlier candidates win ties); feature-first
// takes the best eligible feature score when it beats energy, else fpr's choice; a candidate over
// the accuracy bound is never chosen.
func TestSelectCandidate(t *testing.T) {
	mk := func(name, kind string, acc, fpr float64) *candidate {
		return &candidate{Name: name, Kind: kind, Accuracy: acc, Sets: []candSet{{Metrics: calibrate.Metrics{FPR95: fpr}}}}
	}
	for _, c := range []struct {
		name             string
		cands            []*candidate
		fpr, featureWant string
	}{
		{"shaping wins validation", []*candidate{mk("energy", "logits", 0.88, 0.72), mk("react", "shaping", 0.879, 0.27),
			mk("vim", "feature", 0.88, 0.40), mk("mds", "feature", 0.88, 0.35), mk("knn", "feature", 0.88, 0.35)}, "react", "mds"},
		{"no feature beats energy", []*candidate{mk("energy", "logits", 0.88, 0.50), mk("react", "shaping", 0.88, 0.30),
			mk("mds", "feature", 0.88, 0.50)}, "react", "react"},
		{"feature over the bound", []*candidate{mk("energy", "logits", 0.88, 0.70), mk("mds", "feature", 0.85, 0.10),
			mk("knn", "feature", 0.88, 0.60), mk("ash", "shaping", 0.86, 0.05)}, "knn", "knn"},
		{"nothing beats energy", []*candidate{mk("energy", "logits", 0.88, 0.70), mk("msp", "logits", 0.88, 0.70),
			mk("knn", "feature", 0.88, 0.70)}, "energy", "energy"},
	} {
		for _, r := range []struct{ rule, want string }{{ruleFPR, c.fpr}, {ruleFeatureFirst, c.featureWant}} {
			if got := selectCandidate(c.cands, 0.88, 1, r.rule); got.Name != r.want {
				t.Errorf("%s, -rule %s: chose %s, want %s", c.name, r.rule, got.Name, r.want)
			}
		}
		for _, cd := range c.cands {
			if want := 100*(0.88-cd.Accuracy) <= 1; cd.Eligible != want {
				t.Errorf("%s: %s eligible %v", c.name, cd.Name, cd.Eligible)
			}
		}
	}
}

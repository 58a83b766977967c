package run

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"github.com/oodguard/oodguard/unleash/train/traintest"
)

// squares returns n images of traintest.Squares (12x12, 4 classes), normalised.
func squares(n int, seed uint64) *Data {
	s := traintest.Squares(n, 4, 12, seed)
	d := &Data{Name: "squares", C: 1, H: 12, W: 12, Black: []float32{-1}, Labels: s.Labels}
	for _, p := range s.Pix {
		d.X = append(d.X, (float32(p)/255-0.3)/0.3)
	}
	return d
}

// tinyModel is a freshly initialised cnn28 of width 4 on 12x12 images, trained briefly so that
// the grid's dense loss is not the untrained one.
func tinyModel(t *testing.T) *onnxgraph.Model {
	b, err := arch.Build(arch.Config{Arch: arch.CNN28, Classes: 4, Input: [3]int{1, 12, 12}, Width: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// resumeCase is a run configuration and where to interrupt it: after stops[i] finished epochs
// (grid candidates' included) of the i-th process, each resuming the one before.
type resumeCase struct {
	name  string
	edit  func(*Config)
	stops []int
}

func resumeCases() []resumeCase {
	given := func(m unleash.Method) func(*Config) {
		return func(c *Config) { c.Method, c.Constraint, c.Value = m, ConstraintGiven, 0.05 }
	}
	return []resumeCase{
		{"um given", given(unleash.UM), []int{2}},
		{"umap given", given(unleash.UMAP), []int{1, 1}},
		{"umap magnitude grid kept", func(c *Config) {
			c.Method, c.ScoreInit, c.Constraint, c.Factors = unleash.UMAP, mask.Magnitude, ConstraintGrid, []float64{1}
			c.GridEpochs, c.Epochs = 3, 3
		}, []int{4}}, // in the second candidate, with the first kept as the best so far
		{"um grid then final", func(c *Config) {
			c.Method, c.Constraint, c.Factors, c.GridEpochs = unleash.UM, ConstraintGrid, []float64{0.5, 1}, 1
		}, []int{2, 3}}, // between grid candidates, then in the final run
	}
}

func resumeConfig(t *testing.T, base string, tc resumeCase) Config {
	cfg := DefaultConfig(unleash.UM)
	cfg.Epochs, cfg.Batch, cfg.LR = 3, 16, 0.05
	cfg.Augment = Augment{Pad: 1, Flip: true}
	cfg.IDVal, cfg.OODVal = squares(48, 2), squares(40, 3)
	for i := range cfg.OODVal.X {
		cfg.OODVal.X[i] = -cfg.OODVal.X[i] // inverted images: OOD
	}
	cfg.Check = cfg.IDVal
	cfg.BackendName = "go"
	cfg.Checkpoints = &Checkpoints{Base: base, Input: "tiny"}
	tc.edit(&cfg)
	return cfg
}

// runStopped runs cfg and cancels it once stop epochs are done; it wants the context's error.
func runStopped(t *testing.T, m *onnxgraph.Model, train *Data, cfg Config, stop int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := 0
	cfg.Progress = func(ev Event) {
		if ev.Done != nil {
			if done++; done == stop {
				cancel()
			}
		}
	}
	if _, err := Run(ctx, m, train, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Checkpoints.Base), "*.state"))
	if len(files) == 0 || len(files) > 2 {
		t.Errorf("%d state files after an interruption, want 1 or 2: %v", len(files), files)
	}
}

// TestResumeBitIdentical runs UM and UMAP straight through and interrupted (once or twice, in
// the final run or in the constraint grid) and resumed: the model written, the per-epoch
// numbers, the grid's measurements and the validation guard's verdict are bit-identical.
func TestResumeBitIdentical(t *testing.T) {
	m := tinyModel(t)
	train := squares(96, 1)
	for _, tc := range resumeCases() {
		t.Run(tc.name, func(t *testing.T) {
			straight := resumeConfig(t, filepath.Join(t.TempDir(), "a"), tc)
			want, err := Run(context.Background(), m, train, straight)
			if err != nil {
				t.Fatal(err)
			}
			cfg := resumeConfig(t, filepath.Join(t.TempDir(), "b"), tc)
			for i, stop := range tc.stops {
				cfg.Checkpoints.Resume = i > 0
				runStopped(t, m, train, cfg, stop)
			}
			cfg.Checkpoints.Resume = true
			got, err := Run(context.Background(), m, train, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Record.Resumed) != 1 {
				t.Errorf("resumed %+v, want one entry", got.Record.Resumed)
			}
			compareRuns(t, want, got)
			if err := got.RemoveStates(); err != nil {
				t.Fatal(err)
			}
			if files, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Checkpoints.Base), "*")); len(files) != 0 {
				t.Errorf("left after RemoveStates: %v", files)
			}
		})
	}
}

func compareRuns(t *testing.T, want, got *Result) {
	t.Helper()
	var a, b bytes.Buffer
	if err := want.Trainer.Export(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.Trainer.Export(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the resumed run's model differs from the straight run's")
	}
	w, g := want.Record, got.Record
	if w.Steps != g.Steps || len(w.EpochResults) != len(g.EpochResults) {
		t.Fatalf("steps %d vs %d, epochs %d vs %d", w.Steps, g.Steps, len(w.EpochResults), len(g.EpochResults))
	}
	for i := range w.EpochResults {
		x, y := w.EpochResults[i], g.EpochResults[i]
		if x.Epoch != y.Epoch || x.LR != y.LR || x.Loss != y.Loss || x.CE != y.CE || x.TrainAccuracy != y.TrainAccuracy ||
			x.Images != y.Images || x.Steps != y.Steps || *x.CheckAccuracy != *y.CheckAccuracy || *x.CheckCE != *y.CheckCE {
			t.Errorf("epoch %d: straight %+v, resumed %+v", i+1, x, y)
		}
	}
	wc, gc := w.Constraint, g.Constraint
	if wc.Value != gc.Value || wc.KeptCandidate != gc.KeptCandidate || len(wc.Grid) != len(gc.Grid) ||
		(wc.Estimate == nil) != (gc.Estimate == nil) || (wc.Estimate != nil && *wc.Estimate != *gc.Estimate) ||
		(wc.DenseLoss == nil) != (gc.DenseLoss == nil) || (wc.DenseLoss != nil && *wc.DenseLoss != *gc.DenseLoss) {
		t.Fatalf("constraint: straight %+v, resumed %+v", wc, gc)
	}
	for i := range wc.Grid {
		x, y := wc.Grid[i], gc.Grid[i]
		x.Seconds, y.Seconds = 0, 0
		if x != y {
			t.Errorf("grid candidate %d: straight %+v, resumed %+v", i, x, y)
		}
	}
	if (w.Guard == nil) != (g.Guard == nil) || (w.Guard != nil && *w.Guard != *g.Guard) {
		t.Errorf("guard: straight %+v, resumed %+v", w.Guard, g.Guard)
	}
	if want.KeptInput != got.KeptInput {
		t.Errorf("kept input: straight %v, resumed %v", want.KeptInput, got.KeptInput)
	}
	t.Logf("constraint %.4g (%s, %d candidates), last epoch loss %.6f both ways, guard kept input: %v",
		gc.Value, gc.Method, len(gc.Grid), g.EpochResults[len(g.EpochResults)-1].Loss, got.KeptInput)
}

// TestResumeRefusals: state files without Resume, other settings, another input model and a
// corrupt or truncated state file are errors that say so and name the file or the settings.
func TestResumeRefusals(t *testing.T) {
	m := tinyModel(t)
	train := squares(96, 1)
	tc := resumeCases()[0]
	base := filepath.Join(t.TempDir(), "out")
	cfg := resumeConfig(t, base, tc)
	runStopped(t, m, train, cfg, 2)

	if _, err := Run(context.Background(), m, train, cfg); !errors.Is(err, ErrUnfinished) || !strings.Contains(err.Error(), "-resume") {
		t.Errorf("a fresh run over state files: %v, want ErrUnfinished", err)
	}
	cfg.Checkpoints.Resume = true
	other := cfg
	other.LR, other.Checkpoints = 0.1, &Checkpoints{Base: base, Resume: true, Input: "another"}
	_, err := Run(context.Background(), m, train, other)
	if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "lr: 0.05 in the state, 0.1 now") || !strings.Contains(err.Error(), "input model: tiny in the state, another now") {
		t.Errorf("resume with another lr and input: %v", err)
	} else {
		t.Log(err)
	}
	if _, err := Run(context.Background(), m, squares(96, 7), cfg); !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "training data") {
		t.Errorf("resume on other data: %v", err)
	}

	newest := base + ".resume-0002.state"
	good, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"truncated": good[:len(good)-10], "cut in the header": good[:40], "empty": nil} {
		os.WriteFile(newest, data, 0o644)
		_, err := Run(context.Background(), m, train, cfg)
		if !errors.Is(err, unleash.ErrStateCorrupt) || !strings.Contains(err.Error(), newest) || !strings.Contains(err.Error(), ".resume-0001.state") {
			t.Errorf("%s state file: %v, want ErrStateCorrupt naming it and the one before", name, err)
		} else if name == "truncated" {
			t.Log(err)
		}
	}
	// Removing it resumes from the one before, to the same result as a straight run.
	os.Remove(newest)
	got, err := Run(context.Background(), m, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	straight := resumeConfig(t, filepath.Join(t.TempDir(), "a"), tc)
	want, err := Run(context.Background(), m, train, straight)
	if err != nil {
		t.Fatal(err)
	}
	compareRuns(t, want, got)
}

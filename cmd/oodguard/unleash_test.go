package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"github.com/oodguard/oodguard/unleash/train"
)

// unleashFixture copies cnn28.onnx and its preprocessing spec into a temporary folder, next to
// tiny generated 28x28 train, ID validation and OOD validation sets.
type unleashFixture struct {
	dir, model, train, idVal, ood string
}

func newUnleashFixture(t *testing.T) *unleashFixture {
	t.Helper()
	runtimetest.Setup(t)
	f := &unleashFixture{dir: t.TempDir()}
	src := runtimetest.Model(t, "cnn28.onnx")
	f.model = filepath.Join(f.dir, "cnn28.onnx")
	for _, p := range [][2]string{{src, f.model}, {strings.TrimSuffix(src, ".onnx") + ".preprocess.json", filepath.Join(f.dir, "cnn28.preprocess.json")}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.train, _ = datasettest.WriteIDX(t, f.dir, "train", 96, 28, 28)
	f.idVal, _ = datasettest.WriteIDX(t, f.dir, "val", 40, 28, 28)
	oodDir := filepath.Join(f.dir, "ood")
	os.Mkdir(oodDir, 0o755)
	f.ood, _ = datasettest.WriteIDX(t, oodDir, "ood", 30, 28, 28)
	return f
}

// runRecord is the part of OUT.run.json the tests read.
type runRecord struct {
	Tool   string                        `json:"tool"`
	Mode   string                        `json:"mode"`
	Input  struct{ Path, SHA256 string } `json:"input_model"`
	Output struct{ Path, SHA256 string } `json:"output_model"`
	Data   struct {
		Images int `json:"images"`
	} `json:"train_data"`
	Augment    string `json:"augmentation"`
	Constraint struct {
		Value    float64  `json:"value"`
		Method   string   `json:"method"`
		Estimate *float64 `json:"estimate"`
		Dense    *float64 `json:"dense_loss"`
		Grid     []struct {
			Value  float64 `json:"value"`
			From   string  `json:"from"`
			FPR95  float64 `json:"fpr95"`
			Chosen bool    `json:"chosen"`
		} `json:"grid"`
		Kept bool `json:"kept_candidate"`
	} `json:"constraint"`
	Keep   *float64 `json:"keep"`
	Epochs int      `json:"epochs"`
	LR     float64  `json:"lr"`
	Seeds  struct {
		Scores   *uint64 `json:"scores"`
		Estimate *uint64 `json:"estimate"`
		Data     uint64  `json:"data"`
	} `json:"seeds"`
	EpochResults []struct {
		Epoch         int      `json:"epoch"`
		Loss          float64  `json:"loss"`
		CE            float64  `json:"ce"`
		TrainAccuracy float64  `json:"train_accuracy"`
		CheckAccuracy *float64 `json:"check_accuracy"`
		Images        int      `json:"images"`
		Seconds       float64  `json:"seconds"`
	} `json:"epoch_results"`
	MaskedLayers []struct {
		Name            string
		Weights, Pruned int
	} `json:"masked_layers"`
	ExportCheck *float64 `json:"export_check_max_abs_logit_diff"`
	Seconds     float64  `json:"seconds"`
}

func readRecord(t *testing.T, path string) *runRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r runRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func fileSHA(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestUnleashUMAP(t *testing.T) {
	f := newUnleashFixture(t)
	out := filepath.Join(f.dir, "out", "umap.onnx")
	os.Mkdir(filepath.Dir(out), 0o755)
	const keep = 0.7
	code, stdoutS, errOut := runCLI(t, "unleash", "-mode", "umap", "-model", f.model, "-data", f.train, "-out", out,
		"-keep", "0.7", "-epochs", "2", "-batch", "32", "-lr", "0.05", "-seed", "7", "-keep-worse")
	if code != 0 {
		t.Fatalf("unleash: exit %d\n%s\n%s", code, stdoutS, errOut)
	}
	if !strings.Contains(errOut, "train epoch 2/2") || !strings.Contains(errOut, " c ") {
		t.Errorf("progress lines missing:\n%s", errOut)
	}

	// ONNX Runtime accepts the output.
	clf, err := ort.Open(out, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	clf.Close()

	// Exactly int((1-keep)*n) weights of every masked layer are zero.
	in, err := onnxgraph.Load(f.model)
	if err != nil {
		t.Fatal(err)
	}
	got, err := onnxgraph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range in.Maskable() {
		for _, v := range p.Data {
			if v == 0 {
				t.Fatalf("input layer %s already has zeros", p.Name)
			}
		}
		want, _ := mask.Pruned(p.Size(), keep)
		zeros := 0
		for _, v := range got.Param(p.Name).Data {
			if v == 0 {
				zeros++
			}
		}
		if zeros != want {
			t.Errorf("layer %s: %d of %d weights are zero, want %d", p.Name, zeros, p.Size(), want)
		}
	}

	// The run record is complete.
	r := readRecord(t, filepath.Join(f.dir, "out", "umap.run.json"))
	if r.Mode != "umap" || r.Constraint.Method != "estimate" || r.Constraint.Estimate == nil || r.Constraint.Value != *r.Constraint.Estimate ||
		r.Constraint.Value <= 0 || r.Keep == nil || *r.Keep != keep || r.Epochs != 2 || r.LR != 0.05 ||
		r.Seeds.Scores == nil || *r.Seeds.Scores != 7 || r.Seeds.Estimate == nil || r.Seeds.Data != 7 ||
		r.Data.Images != 96 || !strings.Contains(r.Augment, "flip") || r.Seconds <= 0 || !strings.HasPrefix(r.Tool, "oodguard ") {
		t.Errorf("run record: %+v", r)
	}
	if len(r.EpochResults) != 2 {
		t.Fatalf("%d epoch results, want 2", len(r.EpochResults))
	}
	for _, e := range r.EpochResults {
		if e.Loss <= 0 || e.CE <= 0 || e.Images != 96 || e.CheckAccuracy == nil || e.Seconds <= 0 {
			t.Errorf("epoch result %+v", e)
		}
	}
	if len(r.MaskedLayers) != len(in.Maskable()) {
		t.Errorf("masked layers %+v", r.MaskedLayers)
	}
	if r.Input.SHA256 != fileSHA(t, f.model) || r.Output.SHA256 != fileSHA(t, out) {
		t.Errorf("sha256s %s %s", r.Input.SHA256, r.Output.SHA256)
	}
	if r.ExportCheck == nil || *r.ExportCheck > 1e-3 {
		t.Errorf("export check %v", r.ExportCheck)
	}
	a, _ := os.ReadFile(filepath.Join(f.dir, "cnn28.preprocess.json"))
	b, err := os.ReadFile(filepath.Join(f.dir, "out", "umap.preprocess.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sa, sb preprocess.Spec
	json.Unmarshal(a, &sa)
	json.Unmarshal(b, &sb)
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("preprocess spec %s, want %s", b, a)
	}

	// eval works on the output directly, ODIN included.
	rep := filepath.Join(f.dir, "report")
	code, stdoutS, errOut = runCLI(t, "eval", "-model", out, "-id", f.idVal, "-ood", f.ood, "-scores", "energy,odin", "-out", rep)
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s\n%s", code, stdoutS, errOut)
	}
	if !strings.Contains(stdoutS, "odin(T=1000,eps=0.0014)") || !strings.Contains(stdoutS, "energy(T=1)") {
		t.Errorf("eval printed:\n%s", stdoutS)
	}
}

func TestUnleashUMGrid(t *testing.T) {
	f := newUnleashFixture(t)
	out := filepath.Join(f.dir, "um.onnx")
	code, stdoutS, errOut := runCLI(t, "unleash", "-mode", "um", "-model", f.model, "-data", f.train, "-out", out,
		"-constraint", "grid", "-id-val", f.idVal, "-ood-val", f.ood, "-grid-factors", "0.5,1", "-grid-epochs", "1",
		"-epochs", "1", "-batch", "32", "-lr", "0.01")
	if code != 0 {
		t.Fatalf("unleash: exit %d\n%s\n%s", code, stdoutS, errOut)
	}
	r := readRecord(t, filepath.Join(f.dir, "um.run.json"))
	if r.Mode != "um" || r.Constraint.Method != "grid" || r.Constraint.Estimate == nil || r.Constraint.Dense == nil || r.Keep != nil {
		t.Fatalf("run record %+v", r)
	}
	if len(r.Constraint.Grid) != 4 {
		t.Fatalf("grid %+v, want 4 candidates", r.Constraint.Grid)
	}
	chosen := 0
	for _, g := range r.Constraint.Grid {
		if g.Chosen {
			chosen++
			if g.Value != r.Constraint.Value {
				t.Errorf("chosen %v, constraint %v", g.Value, r.Constraint.Value)
			}
		}
		if g.FPR95 < 0 || g.FPR95 > 1 {
			t.Errorf("candidate %+v", g)
		}
	}
	if chosen != 1 {
		t.Errorf("%d candidates chosen", chosen)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "um.preprocess.json")); err != nil {
		t.Error(err)
	}
	// Candidates of the full length (1 epoch each, -epochs 1): the winner is the result.
	if !r.Constraint.Kept {
		t.Error("grid epochs = epochs, but the winning candidate was not kept")
	}
	// Shorter candidates: the final run trains again and says so.
	code, _, errOut = runCLI(t, "unleash", "-mode", "um", "-model", f.model, "-data", f.train, "-out", out,
		"-constraint", "grid", "-id-val", f.idVal, "-ood-val", f.ood, "-grid-factors", "1", "-grid-epochs", "1",
		"-epochs", "2", "-batch", "32", "-lr", "0.01")
	if code != 0 {
		t.Fatalf("unleash -epochs 2: exit %d\n%s", code, errOut)
	}
	if r := readRecord(t, filepath.Join(f.dir, "um.run.json")); r.Constraint.Kept {
		t.Error("grid epochs 1 < epochs 2, but the record says the candidate was kept")
	}

	// A given constraint.
	code, _, errOut = runCLI(t, "unleash", "-mode", "um", "-model", f.model, "-data", f.train, "-out", out,
		"-constraint", "0.15", "-epochs", "1", "-batch", "32", "-lr", "0.01", "-keep-worse")
	if code != 0 {
		t.Fatalf("unleash -constraint 0.15: exit %d\n%s", code, errOut)
	}
	if r := readRecord(t, filepath.Join(f.dir, "um.run.json")); r.Constraint.Value != 0.15 || r.Constraint.Method != "given" || r.Constraint.Estimate != nil {
		t.Errorf("constraint %+v", r.Constraint)
	}
}

func TestUnleashBadInput(t *testing.T) {
	f := newUnleashFixture(t)
	out := filepath.Join(f.dir, "out.onnx")

	// A model with an op the importer does not know: the first Relu renamed Selu.
	data, _ := os.ReadFile(f.model)
	i := bytes.Index(data, []byte("\x22\x04Relu"))
	if i < 0 {
		t.Fatal("no Relu op type in cnn28.onnx")
	}
	bad := append([]byte(nil), data...)
	copy(bad[i+2:], "Selu")
	selu := filepath.Join(f.dir, "selu.onnx")
	os.WriteFile(selu, bad, 0o644)
	spec, _ := os.ReadFile(filepath.Join(f.dir, "cnn28.preprocess.json"))
	os.WriteFile(filepath.Join(f.dir, "selu.preprocess.json"), spec, 0o644)

	// Labels out of range: label 12 for a 10-class model.
	labelDir := filepath.Join(f.dir, "labels")
	os.Mkdir(labelDir, 0o755)
	imgs, lbls := datasettest.WriteIDX(t, labelDir, "bad", 40, 28, 28)
	lb, _ := os.ReadFile(lbls)
	lb[8+5] = 12
	os.WriteFile(lbls, lb, 0o644)

	// Unlabelled training data: an images file without its labels file.
	nolab := filepath.Join(f.dir, "nolabels")
	os.Mkdir(nolab, 0o755)
	unlabelled, lbl2 := datasettest.WriteIDX(t, nolab, "u", 40, 28, 28)
	os.Remove(lbl2)

	base := []string{"unleash", "-mode", "umap", "-model", f.model, "-data", f.train, "-out", out, "-epochs", "1", "-batch", "32", "-keep-worse"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	for _, c := range []struct {
		name string
		args []string
		code int
		says []string
	}{
		{"keep above 1", with("-keep", "1.5"), 2, []string{"-keep", "(0,1]"}},
		{"keep zero", with("-keep", "0"), 2, []string{"-keep"}},
		{"unknown mode", []string{"unleash", "-mode", "prune", "-model", f.model, "-data", f.train, "-out", out}, 2, []string{"umap or um"}},
		{"missing flags", []string{"unleash", "-mode", "um"}, 2, []string{"-model"}},
		{"no validation data", []string{"unleash", "-mode", "um", "-model", f.model, "-data", f.train, "-out", out}, 2, []string{"-id-val", "-ood-val", "-keep-worse"}},

		{"bad constraint", with("-constraint", "-1"), 2, []string{"-constraint"}},
		{"grid without sets", with("-constraint", "grid"), 2, []string{"-ood-val"}},
		{"bad score init", with("-score-init", "zeros"), 2, []string{"-score-init"}},
		{"unsupported op", []string{"unleash", "-mode", "umap", "-model", selu, "-data", f.train, "-keep-worse", "-out", out}, 1, []string{"Selu", "unsupported op"}},
		{"labels out of range", []string{"unleash", "-mode", "umap", "-model", f.model, "-data", imgs, "-out", out, "-epochs", "1", "-batch", "8", "-keep-worse"}, 1,
			[]string{"label out of range", "12", "10 classes"}},
		{"unlabelled data", []string{"unleash", "-mode", "um", "-model", f.model, "-data", unlabelled, "-keep-worse", "-out", out}, 1, []string{"no label"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d: %s", code, c.code, errOut)
			}
			for _, s := range c.says {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run wrote the output model")
	}
}

// unleash takes train's augmentation flags, -crop N and -flip; -pad and -no-flip still work, with
// a warning, as deprecated names.
func TestUnleashAugmentFlagsAsTrain(t *testing.T) {
	for _, cmd := range []string{"train", "unleash"} {
		_, _, help := runCLI(t, cmd, "-h")
		for _, flag := range []string{"\n  -crop int", "\n  -flip"} {
			if !strings.Contains(help, flag) {
				t.Errorf("%s -h lacks %q", cmd, strings.TrimSpace(flag))
			}
		}
	}
	f := newUnleashFixture(t)
	out := filepath.Join(f.dir, "aug.onnx")
	base := []string{"unleash", "-mode", "um", "-model", f.model, "-data", f.train, "-out", out, "-epochs", "1", "-batch", "32", "-constraint", "0", "-keep-worse"}
	for _, c := range []struct {
		args    []string
		augment string
		warns   bool
	}{
		{[]string{"-crop", "2", "-flip=false"}, "random crop (padding 2, black)", false},
		{[]string{"-crop", "0"}, "random horizontal flip", false},
		{[]string{"-pad", "3", "-no-flip"}, "random crop (padding 3, black)", true},
	} {
		code, _, errOut := runCLI(t, append(append([]string(nil), base...), c.args...)...)
		if code != 0 {
			t.Fatalf("unleash %v: exit %d\n%s", c.args, code, errOut)
		}
		if got := readRecord(t, strings.TrimSuffix(out, ".onnx")+".run.json").Augment; got != c.augment {
			t.Errorf("unleash %v: augmentation %q, want %q", c.args, got, c.augment)
		}
		if warned := strings.Contains(errOut, "deprecated"); warned != c.warns {
			t.Errorf("unleash %v: deprecation warning %v, want %v:\n%s", c.args, warned, c.warns, errOut)
		}
	}
	code, _, errOut := runCLI(t, append(append([]string(nil), base...), "-pad", "3", "-crop", "2")...)
	if code != 2 || !strings.Contains(errOut, "-pad") {
		t.Errorf("unleash -pad 3 -crop 2: exit %d, stderr %q; want 2", code, errOut)
	}
}

// Without -crop/-flip, unleash fine-tunes with the augmentation the model records it was trained
// with (oodguard train's checkpoint metadata); a flag overrides its half; a model without the
// record gets the official crop and flip; a malformed record is an error naming the model.
func TestUnleashAugmentFromModel(t *testing.T) {
	f := newUnleashFixture(t)
	src, err := os.ReadFile(f.model)
	if err != nil {
		t.Fatal(err)
	}
	specJSON, err := os.ReadFile(strings.TrimSuffix(f.model, ".onnx") + ".preprocess.json")
	if err != nil {
		t.Fatal(err)
	}
	withMeta := func(name, crop, flip string) string {
		b, err := onnxgraph.SetMetadata(src, map[string]string{train.MetadataCrop: crop, train.MetadataFlip: flip})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.dir, name+".onnx")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.dir, name+".preprocess.json"), specJSON, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noAug := withMeta("noaug", "0", "false")
	out := filepath.Join(f.dir, "out.onnx")
	for _, c := range []struct {
		model   string
		args    []string
		augment string
		from    string
	}{
		{noAug, nil, "none", "as " + noAug + " was trained"},
		{noAug, []string{"-flip"}, "random horizontal flip", "the command line's, the rest as"},
		{f.model, nil, "random crop (padding 4, black) + random horizontal flip", "does not record its training augmentation"},
		{f.model, []string{"-crop", "1"}, "random crop (padding 1, black) + random horizontal flip", "the rest the official recipe's"},
	} {
		args := []string{"unleash", "-mode", "um", "-model", c.model, "-data", f.train, "-out", out, "-epochs", "1", "-batch", "32", "-constraint", "0", "-keep-worse"}
		code, _, errOut := runCLI(t, append(args, c.args...)...)
		if code != 0 {
			t.Fatalf("unleash %s %v: exit %d\n%s", filepath.Base(c.model), c.args, code, errOut)
		}
		if got := readRecord(t, strings.TrimSuffix(out, ".onnx")+".run.json").Augment; got != c.augment {
			t.Errorf("unleash %s %v: augmentation %q, want %q", filepath.Base(c.model), c.args, got, c.augment)
		}
		if !strings.Contains(errOut, "augmentation: "+c.augment+" (") || !strings.Contains(errOut, c.from) {
			t.Errorf("unleash %s %v: stderr does not say %q:\n%s", filepath.Base(c.model), c.args, c.from, errOut)
		}
	}
	bad := withMeta("bad", "four", "true")
	code, _, errOut := runCLI(t, "unleash", "-mode", "um", "-model", bad, "-data", f.train, "-out", out, "-epochs", "1", "-batch", "32", "-constraint", "0", "-keep-worse")
	if code != 1 || !strings.Contains(errOut, bad) || !strings.Contains(errOut, train.MetadataCrop) {
		t.Errorf("unleash on a model with crop metadata \"four\": exit %d, stderr %q; want 1 naming the model and the key", code, errOut)
	}
}

// The validation guard: a run that makes the model worse on -id-val/-ood-val writes the input
// unchanged and says so (exit 0); -keep-worse writes the unleashed model; the verdict is in the
// run record either way.
func TestUnleashValidationGuard(t *testing.T) {
	f := newUnleashFixture(t)
	out := filepath.Join(f.dir, "guarded.onnx")
	// A learning rate of 5 wrecks the model in one epoch: at best chance accuracy.
	args := []string{"unleash", "-mode", "um", "-model", f.model, "-data", f.train, "-out", out,
		"-constraint", "0", "-id-val", f.idVal, "-ood-val", f.ood, "-epochs", "1", "-batch", "32", "-lr", "5",
		"-max-acc-drop", "0"}
	code, stdoutS, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("unleash: exit %d\n%s\n%s", code, stdoutS, errOut)
	}
	type guardRec struct {
		Guard *struct {
			Input, Unleashed struct {
				FPR95    float64 `json:"fpr95"`
				Accuracy float64 `json:"id_val_accuracy"`
			}
			KeptInput bool   `json:"kept_input"`
			Reason    string `json:"reason"`
		} `json:"validation_guard"`
	}
	var rec guardRec
	if err := json.Unmarshal(readFile(t, filepath.Join(f.dir, "guarded.run.json")), &rec); err != nil {
		t.Fatal(err)
	}
	g := rec.Guard
	if g == nil {
		t.Fatal("no validation_guard in the run record")
	}
	worse := !(g.Unleashed.FPR95 < g.Input.FPR95) || g.Unleashed.Accuracy < g.Input.Accuracy
	if !worse {
		t.Fatalf("lr 5 did not make the model worse on validation: %+v", g)
	}
	if !g.KeptInput || fileSHA(t, out) != fileSHA(t, f.model) || !strings.Contains(stdoutS, "kept the input model") {
		t.Errorf("worse on validation, but the input was not kept (kept %v, same bytes %v):\n%s", g.KeptInput, fileSHA(t, out) == fileSHA(t, f.model), stdoutS)
	}
	if !strings.Contains(stdoutS, "oodguard choose -model "+f.model) {
		t.Errorf("a kept input does not point at oodguard choose:\n%s", stdoutS)
	}
	// -keep-worse writes the unleashed model.
	code, stdoutS, errOut = runCLI(t, append(args, "-keep-worse")...)
	if code != 0 {
		t.Fatalf("unleash -keep-worse: exit %d\n%s", code, errOut)
	}
	if fileSHA(t, out) == fileSHA(t, f.model) || strings.Contains(stdoutS, "kept the input") {
		t.Errorf("-keep-worse wrote the input:\n%s", stdoutS)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The check of the written model under ONNX Runtime fails the command past its tolerance
// (1e-3 of the largest logit, at least 1e-3).
func TestLogitDiffTolerance(t *testing.T) {
	for _, tc := range []struct {
		got, want []float32
		ok        bool
	}{
		{[]float32{1, 2, 3}, []float32{1, 2, 3}, true},
		{[]float32{1.0005, 2}, []float32{1, 2}, true},     // 5e-4 < 2e-3
		{[]float32{1.9, 2}, []float32{0, 2}, false},       // training-mode BatchNorm's 1.9
		{[]float32{100.05, -3}, []float32{100, -3}, true}, // 0.05 < 0.1
		{[]float32{100.2, -3}, []float32{100, -3}, false}, // 0.2 > 0.1
		{[]float32{0.0015, 0}, []float32{0, 0}, false},    // at least 1e-3
	} {
		d, tol := logitDiff(tc.got, tc.want)
		if (d <= tol) != tc.ok {
			t.Errorf("logitDiff(%v, %v) = %g, tolerance %g; want ok %v", tc.got, tc.want, d, tol, tc.ok)
		}
	}
}

package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/train"
	"github.com/oodguard/oodguard/unleash/train/traintest"
)

// resumeSetup returns a tiny training run with validation.
func resumeSetup(t *testing.T, backend string) (train.Config, *train.Images, train.Validation) {
	dir := t.TempDir()
	set := traintest.Squares(160, 4, size, 3)
	idVal := traintest.WriteIDX(t, dir, "val", traintest.Squares(48, 4, size, 4))
	oodVal, _ := datasettest.WriteIDX(t, dir, "ood", 40, size, size)
	cfg := train.DefaultConfig()
	cfg.Arch = arch.Config{Arch: arch.CNN28, Width: 4}
	cfg.Spec = spec12()
	cfg.Epochs, cfg.Batch, cfg.LR = 4, 32, 0.05
	cfg.Augment = train.Augment{Crop: 1, Flip: true}
	cfg.Backend = backend
	val := squaresValidation(idVal, oodVal)
	return cfg, set, val
}

// stopAfter runs cfg and cancels it once epoch stop is done, as an interruption would: Run
// returns the context's error with stop epochs complete.
func stopAfter(t *testing.T, cfg train.Config, set *train.Images, val train.Validation, stop int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooks := train.Hooks{Epoch: func(e train.Epoch) {
		if e.Epoch == stop {
			cancel()
		}
	}}
	if _, err := train.Run(ctx, cfg, set, "squares", val, hooks); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
}

func readLog(t *testing.T, dir string) *train.Log {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "train.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l train.Log
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// TestResumeBitIdentical trains 4 epochs straight through, and 4 epochs stopped after epoch 2
// and resumed: the final checkpoint, the trainer state (weights, BatchNorm statistics, momentum
// buffers, step count) and every per-epoch number of train.json but the times are
// bit-identical, on both backends.
func TestResumeBitIdentical(t *testing.T) {
	runtimetest.Setup(t)
	for _, backend := range []string{"onnx", "go"} {
		t.Run(backend, func(t *testing.T) {
			cfg, set, val := resumeSetup(t, backend)
			a, b := cfg, cfg
			a.Out, b.Out = filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			if _, err := train.Run(context.Background(), a, set, "squares", val, train.Hooks{}); err != nil {
				t.Fatal(err)
			}
			stopAfter(t, b, set, val, 2)
			if _, err := os.Stat(filepath.Join(b.Out, "epoch-003.onnx")); err == nil {
				t.Fatal("the interrupted run wrote epoch 3")
			}
			b.Resume = true
			var trained []int
			log, err := train.Run(context.Background(), b, set, "squares", val, train.Hooks{Epoch: func(e train.Epoch) { trained = append(trained, e.Epoch) }})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(trained, []int{3, 4}) {
				t.Errorf("the resumed run trained epochs %v, want [3 4]", trained)
			}
			if len(log.Resumed) != 1 || log.Resumed[0].AfterEpoch != 2 || log.Resumed[0].State != "epoch-002.state" {
				t.Errorf("resumed %+v, want once after epoch 2 from epoch-002.state", log.Resumed)
			}
			for _, name := range []string{"epoch-003.onnx", "epoch-004.onnx"} {
				x, _ := os.ReadFile(filepath.Join(a.Out, name))
				y, _ := os.ReadFile(filepath.Join(b.Out, name))
				if len(x) == 0 || !slices.Equal(x, y) {
					t.Errorf("%s differs between the straight and the resumed run", name)
				}
			}
			sa, err := unleash.ReadStateFile(filepath.Join(a.Out, "epoch-004.state"))
			if err != nil {
				t.Fatal(err)
			}
			sb, err := unleash.ReadStateFile(filepath.Join(b.Out, "epoch-004.state"))
			if err != nil {
				t.Fatal(err)
			}
			ta, tb := sa.Trainer("model"), sb.Trainer("model")
			if ta.Steps != 4*5 || tb.Steps != ta.Steps || len(ta.Tensors) != len(tb.Tensors) {
				t.Fatalf("steps %d and %d (want 20), %d and %d tensors", ta.Steps, tb.Steps, len(ta.Tensors), len(tb.Tensors))
			}
			kinds := map[string]int{}
			for i := range ta.Tensors {
				kinds[ta.Tensors[i].Kind]++
				if !bitsEqual(ta.Tensors[i].Data, tb.Tensors[i].Data) {
					t.Errorf("%s %s differs", ta.Tensors[i].Kind, ta.Tensors[i].Name)
				}
			}
			if kinds["value"] == 0 || kinds["momentum"] != kinds["value"] || kinds["bn"] == 0 {
				t.Errorf("state tensors by kind %v: want values, as many momentum buffers, BatchNorm statistics", kinds)
			}
			la, lb := readLog(t, a.Out), readLog(t, b.Out)
			if len(la.Runs) != 4 || len(lb.Runs) != 4 {
				t.Fatalf("train.json holds %d and %d epochs, want 4", len(la.Runs), len(lb.Runs))
			}
			for i := range la.Runs {
				x, y := la.Runs[i], lb.Runs[i]
				if x.Loss != y.Loss || x.TrainAcc != y.TrainAcc || x.LR != y.LR || x.Images != y.Images ||
					*x.ValAcc != *y.ValAcc || *x.FPR95 != *y.FPR95 || *x.AUROC != *y.AUROC {
					t.Errorf("epoch %d: straight %+v, resumed %+v", i+1, x, y)
				}
			}
			t.Logf("epoch 4 loss %.6f both ways; %d state tensors equal to the bit", la.Runs[3].Loss, len(ta.Tensors))
			// Only the two newest state files stay.
			files, _ := filepath.Glob(filepath.Join(b.Out, "*.state"))
			if len(files) != 2 || filepath.Base(files[0]) != "epoch-003.state" {
				t.Errorf("state files %v, want epoch-003.state and epoch-004.state", files)
			}
		})
	}
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestResumeRefusals: a resume with other settings names them; a corrupt or truncated state
// file is an error naming it; a folder holding a run is refused without -resume; resuming a
// finished run trains nothing.
func TestResumeRefusals(t *testing.T) {
	runtimetest.Setup(t)
	cfg, set, val := resumeSetup(t, "onnx")
	cfg.Epochs = 3
	cfg.Out = filepath.Join(t.TempDir(), "run")
	stopAfter(t, cfg, set, val, 2)

	// Without Resume, the folder is refused, pointing at resume.
	if _, err := train.Run(context.Background(), cfg, set, "squares", val, train.Hooks{}); !errors.Is(err, train.ErrExists) || !strings.Contains(err.Error(), "-resume") {
		t.Errorf("a second run without resume: %v, want ErrExists mentioning -resume", err)
	}
	cfg.Resume = true
	other := cfg
	other.LR, other.Augment.Flip = 0.1, false
	_, err := train.Run(context.Background(), other, set, "squares", val, train.Hooks{})
	if !errors.Is(err, train.ErrSettings) || !strings.Contains(err.Error(), "lr: 0.05 in the state, 0.1 now") ||
		!strings.Contains(err.Error(), "flip: true in the state, false now") {
		t.Errorf("resume with another lr and flip: %v", err)
	} else {
		t.Log(err)
	}
	if _, err := train.Run(context.Background(), cfg, traintest.Squares(160, 4, size, 9), "squares", val, train.Hooks{}); !errors.Is(err, train.ErrSettings) ||
		!strings.Contains(err.Error(), "training data") {
		t.Errorf("resume on other training images: %v", err)
	}

	// A truncated, an altered and a foreign state file.
	newest := filepath.Join(cfg.Out, "epoch-002.state")
	good, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	altered := slices.Clone(good)
	altered[len(altered)/2] ^= 1
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)*2/3], "altered": altered, "empty": nil, "foreign": []byte("PK\x03\x04 not a state file"),
		"magic only": []byte("OODGUARD-STATE1\n"),
	} {
		if err := os.WriteFile(newest, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := train.Run(context.Background(), cfg, set, "squares", val, train.Hooks{})
		if !errors.Is(err, unleash.ErrStateCorrupt) || !strings.Contains(err.Error(), newest) || !strings.Contains(err.Error(), "epoch-001.state") {
			t.Errorf("%s state file: %v, want ErrStateCorrupt naming %s and the one before", name, err, newest)
		} else if name == "truncated" {
			t.Log(err)
		}
	}
	// Removing the bad one resumes from the one before.
	os.Remove(newest)
	log, err := train.Run(context.Background(), cfg, set, "squares", val, train.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 3 || log.Resumed[len(log.Resumed)-1].AfterEpoch != 1 {
		t.Errorf("%d epochs, resumed %+v", len(log.Runs), log.Resumed)
	}
	// A finished run resumes to nothing.
	n := 0
	log, err = train.Run(context.Background(), cfg, set, "squares", val, train.Hooks{Step: func(int, int, int) { n++ }})
	if err != nil || n != 0 || len(log.Runs) != 3 {
		t.Errorf("resuming a finished run: %v, %d steps, %d epochs", err, n, len(log.Runs))
	}
}

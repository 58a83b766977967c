package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oodguard/oodguard/dataset/datasettest"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/train/traintest"
)

// TestSIGTERMThenResume stops train and unleash (um, and umap with the validation guard) with
// SIGTERM in the middle of their second epoch, checks that the last complete state file is
// there and no output model, resumes them with -resume, and compares the result with an
// uninterrupted run of the same command: the same model file to the byte and the same
// per-epoch losses.
func TestSIGTERMThenResume(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "oodguard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := traintest.WriteIDX(t, dir, "train", traintest.Squares(4096, 4, 28, 1))
	idVal := traintest.WriteIDX(t, dir, "val", traintest.Squares(256, 4, 28, 2))
	oodVal, _ := datasettest.WriteIDX(t, dir, "ood", 256, 28, 28)
	model := runtimetest.Model(t, "cnn28.onnx")

	for _, tc := range []struct {
		name  string
		args  func(out string) []string
		ready string // printed once the first epoch is complete
		state string // the state file of the first epoch, relative to the run's folder
		check func(t *testing.T, a, b string)
	}{
		{"train", func(out string) []string {
			return []string{"train", "-arch", "cnn28", "-width", "4", "-data", data, "-epochs", "3", "-batch", "32", "-threads", "1", "-out", out}
		}, "epoch   1/3", "epoch-001.state", func(t *testing.T, a, b string) {
			sameFile(t, filepath.Join(a, "epoch-003.onnx"), filepath.Join(b, "epoch-003.onnx"))
			var la, lb struct {
				Runs []struct{ Loss, TrainAcc float64 } `json:"per_epoch"`
			}
			readJSON(t, filepath.Join(a, "train.json"), &la)
			readJSON(t, filepath.Join(b, "train.json"), &lb)
			if len(la.Runs) != 3 || len(lb.Runs) != 3 {
				t.Fatalf("train.json: %d and %d epochs", len(la.Runs), len(lb.Runs))
			}
			for i := range la.Runs {
				if la.Runs[i] != lb.Runs[i] {
					t.Errorf("epoch %d: straight %+v, resumed %+v", i+1, la.Runs[i], lb.Runs[i])
				}
			}
		}},
		{"unleash um", func(out string) []string {
			return []string{"unleash", "-mode", "um", "-model", model, "-data", data, "-limit", "2048", "-epochs", "3", "-batch", "32", "-lr", "0.01",
				"-constraint", "0.1", "-keep-worse", "-out", filepath.Join(out, "um.onnx")}
		}, "train epoch 1/3:", "um.resume-0001.state", func(t *testing.T, a, b string) { sameUnleashed(t, a, b, "um") }},
		{"unleash umap guarded", func(out string) []string {
			return []string{"unleash", "-mode", "umap", "-model", model, "-data", data, "-limit", "2048", "-epochs", "3", "-batch", "32",
				"-constraint", "0.1", "-id-val", idVal, "-ood-val", oodVal, "-out", filepath.Join(out, "umap.onnx")}
		}, "train epoch 1/3:", "umap.resume-0001.state", func(t *testing.T, a, b string) { sameUnleashed(t, a, b, "umap") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := filepath.Join(dir, tc.name, "a"), filepath.Join(dir, tc.name, "b")
			os.MkdirAll(a, 0o755)
			os.MkdirAll(b, 0o755)
			if out, err := binCommand(bin, tc.args(a)...).CombinedOutput(); err != nil {
				t.Fatalf("straight run: %v\n%s", err, out)
			}

			cmd := binCommand(bin, tc.args(b)...)
			out := startUntil(t, cmd, tc.ready, 20*time.Millisecond)
			time.Sleep(150 * time.Millisecond) // into the second epoch's steps
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("exit %v, want 130:\n%s", err, out.String())
			}
			states, _ := filepath.Glob(filepath.Join(b, "*.state"))
			if len(states) != 1 || filepath.Base(states[0]) != tc.state {
				t.Fatalf("state files after SIGTERM %v, want only %s (the signal must land in epoch 2):\n%s", states, tc.state, out.String())
			}
			for _, f := range []string{"epoch-002.onnx", "um.onnx", "umap.onnx"} {
				if _, err := os.Stat(filepath.Join(b, f)); err == nil {
					t.Errorf("%s written by the interrupted run", f)
				}
			}

			res, err := binCommand(bin, append(tc.args(b), "-resume")...).CombinedOutput()
			if err != nil {
				t.Fatalf("resume: %v\n%s", err, res)
			}
			if !strings.Contains(string(res), "resumed after epoch 1") && !strings.Contains(string(res), "resuming from "+tc.state) {
				t.Errorf("the resumed run does not say it resumed:\n%s", res)
			}
			tc.check(t, a, b)
		})
	}
}

func binCommand(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), ort.EnvLibrary+"="+ort.LibraryPath())
	return cmd
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(x) != string(y) {
		t.Errorf("%s and %s differ", a, b)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// sameUnleashed compares the unleash outputs NAME.onnx and NAME.run.json of folders a and b and
// checks that the resumed run removed its state files.
func sameUnleashed(t *testing.T, a, b, name string) {
	t.Helper()
	sameFile(t, filepath.Join(a, name+".onnx"), filepath.Join(b, name+".onnx"))
	type rec struct {
		Epochs []struct {
			Loss, CE, TrainAccuracy float64
			CheckAccuracy           *float64 `json:"check_accuracy"`
		} `json:"epoch_results"`
		Guard   *struct{ KeptInput bool } `json:"validation_guard"`
		Resumed []struct{ State string }  `json:"resumed"`
		Steps   int                       `json:"steps"`
	}
	var ra, rb rec
	readJSON(t, filepath.Join(a, name+".run.json"), &ra)
	readJSON(t, filepath.Join(b, name+".run.json"), &rb)
	if len(ra.Epochs) != 3 || len(rb.Epochs) != 3 || ra.Steps != rb.Steps || len(rb.Resumed) != 1 {
		t.Fatalf("run.json: %d and %d epochs, %d and %d steps, resumed %v", len(ra.Epochs), len(rb.Epochs), ra.Steps, rb.Steps, rb.Resumed)
	}
	for i := range ra.Epochs {
		x, y := ra.Epochs[i], rb.Epochs[i]
		if x.Loss != y.Loss || x.CE != y.CE || x.TrainAccuracy != y.TrainAccuracy || *x.CheckAccuracy != *y.CheckAccuracy {
			t.Errorf("epoch %d: straight %+v, resumed %+v", i+1, x, y)
		}
	}
	if (ra.Guard == nil) != (rb.Guard == nil) || (ra.Guard != nil && *ra.Guard != *rb.Guard) {
		t.Errorf("guard: straight %+v, resumed %+v", ra.Guard, rb.Guard)
	}
	if states, _ := filepath.Glob(filepath.Join(b, "*.state")); len(states) != 0 {
		t.Errorf("state files left after the run finished: %v", states)
	}
	t.Logf("%s: epoch 3 loss %.6f both ways, guard %+v", name, rb.Epochs[2].Loss, rb.Guard)
}

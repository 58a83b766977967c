package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// runCLI runs oodguard with args and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCalibrateThenEval(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	model := runtimetest.Model(t, "cnn28.onnx")
	idVal, _ := datasettest.WriteIDX(t, dir, "val", 60, 28, 28)
	idTest, _ := datasettest.WriteIDX(t, dir, "test", 40, 28, 28)
	oodDir := filepath.Join(dir, "ood")
	os.Mkdir(oodDir, 0o755)
	oodImgs, _ := datasettest.WriteIDX(t, oodDir, "ood", 30, 28, 28)
	cal := filepath.Join(dir, "calibration.json")

	// The preprocessing spec comes from cnn28.preprocess.json next to the model.
	code, out, errOut := runCLI(t, "calibrate", "-model", model, "-data", idVal, "-tpr", "0.9", "-out", cal)
	if code != 0 {
		t.Fatalf("calibrate: exit %d\n%s\n%s", code, out, errOut)
	}
	c, err := calibrate.LoadCalibration(cal)
	if err != nil {
		t.Fatal(err)
	}
	if c.AchievedTPR < 0.9 || c.Data[0].Count != 60 || c.Preprocess.Width != 28 {
		t.Errorf("calibration %+v", c)
	}

	rep := filepath.Join(dir, "report")
	code, out, errOut = runCLI(t, "eval", "-model", model, "-calibration", cal, "-id", idTest, "-ood", oodImgs, "-out", rep)
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "energy(T=1)") || !strings.Contains(out, "ood/ood-images-idx3-ubyte") {
		t.Errorf("eval printed:\n%s", out)
	}
	var got struct {
		Scores []struct {
			Threshold *float64 `json:"threshold"`
			Sets      []struct {
				AcceptedOOD *float64 `json:"accepted_ood_at_threshold"`
			} `json:"sets"`
		} `json:"scores"`
	}
	b, err := os.ReadFile(filepath.Join(rep, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Scores) != 3 || got.Scores[0].Threshold == nil || *got.Scores[0].Threshold != c.Threshold || got.Scores[0].Sets[0].AcceptedOOD == nil {
		t.Errorf("report.json: %s", b)
	}
	for _, f := range []string{"index.html", "report.csv"} {
		if _, err := os.Stat(filepath.Join(rep, f)); err != nil {
			t.Error(err)
		}
	}

	// Three sessions scoring at once give the same report as one (batches of 8, so that the
	// workers share the 40 and 30 images).
	scoresWith := func(workers string) string {
		out := filepath.Join(dir, "report-workers"+workers)
		if code, _, errOut := runCLI(t, "eval", "-model", model, "-calibration", cal, "-id", idTest, "-ood", oodImgs,
			"-batch", "8", "-threads", "1", "-workers", workers, "-out", out); code != 0 {
			t.Fatalf("eval -workers %s: exit %d\n%s", workers, code, errOut)
		}
		b, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Scores json.RawMessage `json:"scores"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return string(r.Scores)
	}
	if one, three := scoresWith("1"), scoresWith("3"); one != three || len(one) < 100 {
		t.Errorf("eval -workers 3 reported\n%s\nwhere -workers 1 reported\n%s", three, one)
	}
}

func TestEvalBadInput(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	cnn := runtimetest.Model(t, "cnn28.onnx")
	idTest, _ := datasettest.WriteIDX(t, dir, "test", 10, 28, 28)
	cal := filepath.Join(dir, "calibration.json")
	if code, _, errOut := runCLI(t, "calibrate", "-model", cnn, "-data", idTest, "-out", cal); code != 0 {
		t.Fatalf("calibrate: %s", errOut)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	truncated := filepath.Join(dir, "trunc-images-idx3-ubyte")
	b, _ := os.ReadFile(idTest)
	os.WriteFile(truncated, b[:len(b)-100], 0o644)
	broken := filepath.Join(dir, "broken")
	os.Mkdir(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "frame.jpg"), []byte("\xff\xd8\xff\xe0 not a jpeg"), 0o644)

	for _, c := range []struct {
		name string
		args []string
		code int
		says []string
	}{
		{"calibration for another model",
			[]string{"eval", "-model", runtimetest.Model(t, "resnet32.onnx"), "-calibration", cal, "-id", idTest, "-ood", idTest},
			1, []string{"another model", "calibration.json"}},
		{"empty OOD set", []string{"eval", "-model", cnn, "-id", idTest, "-ood", empty, "-out", filepath.Join(dir, "r1")},
			1, []string{"empty"}},
		{"truncated IDX", []string{"eval", "-model", cnn, "-id", truncated, "-ood", idTest, "-out", filepath.Join(dir, "r2")},
			1, []string{"trunc-images-idx3-ubyte"}},
		{"unreadable image", []string{"eval", "-model", cnn, "-id", idTest, "-ood", broken, "-out", filepath.Join(dir, "r3")},
			1, []string{"frame.jpg"}},
		{"missing flags", []string{"eval", "-model", cnn}, 2, []string{"-id"}},
		{"no workers", []string{"eval", "-model", cnn, "-id", idTest, "-ood", idTest, "-workers", "0"}, 2, []string{"-workers"}},
		{"bad tpr", []string{"calibrate", "-model", cnn, "-data", idTest, "-tpr", "1.5"}, 2, []string{"-tpr"}},
		{"unknown score", []string{"eval", "-model", cnn, "-id", idTest, "-ood", idTest, "-scores", "energy,odin2"}, 2, []string{"odin2"}},
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
}

// eval -scores energy,odin on a model ODIN cannot run refuses before it scores anything, and
// writes no report.
func TestEvalODINRefusedUpFront(t *testing.T) {
	f := newUnleashFixture(t)
	data, _ := os.ReadFile(f.model)
	i := bytes.Index(data, []byte("\x22\x04Relu"))
	if i < 0 {
		t.Fatal("no Relu op type in cnn28.onnx")
	}
	bad := append([]byte(nil), data...)
	copy(bad[i+2:], "Selu") // ONNX Runtime runs Selu; the GoMLX importer does not know it
	selu := filepath.Join(f.dir, "selu.onnx")
	if err := os.WriteFile(selu, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "report")
	code, stdoutS, errOut := runCLI(t, "eval", "-model", selu, "-preset", "fashion-mnist", "-id", f.idVal, "-ood", f.ood,
		"-scores", "energy,odin", "-out", out)
	if code == 0 || !strings.Contains(errOut, "odin") || !strings.Contains(errOut, "Selu") {
		t.Fatalf("exit %d, want a failure naming odin and Selu:\n%s\n%s", code, stdoutS, errOut)
	}
	if strings.Contains(errOut, "images in") {
		t.Errorf("eval scored data before refusing ODIN:\n%s", errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a report was written")
	}
}

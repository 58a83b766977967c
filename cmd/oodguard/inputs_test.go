package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// frame returns the path of a committed sample frame.
func frame(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "frames", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// score IMAGE scores that one image, as its help promises (it said "no images found").
func TestScoreImageFile(t *testing.T) {
	runtimetest.Setup(t)
	model, cal := fixture(t, "cnn28.onnx"), fixture(t, "cnn28.calibration.json")
	img := frame(t, "ood-mnist-002.png")
	code, out, errOut := runCLI(t, "score", "-model", model, "-calibration", cal, "-json", img)
	if code != 0 {
		t.Fatalf("score %s: exit %d\n%s%s", img, code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("score of one image printed %d lines:\n%s", len(lines), out)
	}
	var got scoredImage
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	// The demo flags this MNIST digit: energy 3.9979 < threshold 4.5944.
	if got.Name != img || got.Decision != "ood" || got.Energy < 3.99 || got.Energy > 4.0 {
		t.Errorf("score %s: %+v", img, got)
	}
	// A JPEG, without a calibration (the spec comes from cnn28.preprocess.json).
	jpg := frame(t, "ood-tinyimagenet-000.jpg")
	if code, out, errOut := runCLI(t, "score", "-model", model, jpg); code != 0 || !strings.Contains(out, jpg) {
		t.Errorf("score %s: exit %d\n%s%s", jpg, code, out, errOut)
	}
}

// A calibration whose threshold is null is refused by every command that reads one, with an
// error naming the file and the field.
func TestCommandsRefuseCalibrationWithoutThreshold(t *testing.T) {
	runtimetest.Setup(t)
	model := fixture(t, "cnn28.onnx")
	b, err := os.ReadFile(fixture(t, "cnn28.calibration.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["threshold"] = nil
	b, _ = json.Marshal(m)
	dir := t.TempDir()
	cal := filepath.Join(dir, "null-threshold.json")
	if err := os.WriteFile(cal, b, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := keygen(t, "oodguard")
	idTest, _ := datasettest.WriteIDX(t, dir, "test", 10, 28, 28)
	for name, args := range map[string][]string{
		"score":  {"score", "-model", model, "-calibration", cal, frame(t, "id-fashion-000.png")},
		"eval":   {"eval", "-model", model, "-calibration", cal, "-id", idTest, "-ood", idTest, "-out", filepath.Join(dir, "r")},
		"bundle": {"bundle", "-model", model, "-calibration", cal, "-key", filepath.Join(keys, "oodguard.key"), "-version", "1.0.0", "-device-class", "b", "-out", filepath.Join(dir, "b.tar")},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, cal) || !strings.Contains(errOut, `"threshold"`) {
			t.Errorf("%s: exit %d, stderr %q; want 1 naming %s and \"threshold\"", name, code, errOut, cal)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "b.tar")); err == nil {
		t.Error("bundle signed a calibration without a threshold")
	}
}

// oodguard -version and --version print the version, as oodguardd -version does.
func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"-version", "--version"} {
		code, out, errOut := runCLI(t, arg)
		if code != 0 || !strings.HasPrefix(out, "oodguard "+Version+"\n") {
			t.Errorf("oodguard %s: exit %d\n%s%s", arg, code, out, errOut)
		}
	}
}

// A model file that is not there is "not found" in every command that takes one, not "no
// preprocessing spec" or an ONNX Runtime read error.
func TestMissingModelNotFound(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "nope.onnx")
	idTest, _ := datasettest.WriteIDX(t, dir, "test", 10, 28, 28)
	keys := keygen(t, "oodguard")
	for name, args := range map[string][]string{
		"score":     {"score", "-model", model, frame(t, "id-fashion-000.png")},
		"calibrate": {"calibrate", "-model", model, "-data", idTest, "-out", filepath.Join(dir, "c.json")},
		"eval":      {"eval", "-model", model, "-id", idTest, "-ood", idTest, "-out", filepath.Join(dir, "r")},
		"inspect":   {"inspect", model},
		"unleash":   {"unleash", "-mode", "umap", "-model", model, "-data", idTest, "-keep-worse", "-out", filepath.Join(dir, "u.onnx")},
		"bundle":    {"bundle", "-model", model, "-calibration", fixture(t, "cnn28.calibration.json"), "-key", filepath.Join(keys, "oodguard.key"), "-version", "1.0.0", "-device-class", "b", "-out", filepath.Join(dir, "b.tar")},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "model "+model+": not found") || strings.Contains(errOut, "preprocessing") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and \"model %s: not found\"", name, code, errOut, model)
		}
	}
}

// -temperature 0 is an error wherever it is a flag: in a score spec 0 stands for T = 1, so it
// silently meant 1.
func TestTemperatureZeroRejected(t *testing.T) {
	dir := t.TempDir()
	model := fixture(t, "cnn28.onnx")
	idTest, _ := datasettest.WriteIDX(t, dir, "test", 10, 28, 28)
	for name, args := range map[string][]string{
		"score":     {"score", "-model", model, "-temperature", "0", frame(t, "id-fashion-000.png")},
		"calibrate": {"calibrate", "-model", model, "-data", idTest, "-temperature", "0", "-out", filepath.Join(dir, "c.json")},
		"eval":      {"eval", "-model", model, "-id", idTest, "-ood", idTest, "-temperature", "0", "-out", filepath.Join(dir, "r")},
		"train":     {"train", "-arch", "cnn28", "-data", idTest, "-temperature", "0", "-out", filepath.Join(dir, "t")},
		"negative":  {"eval", "-model", model, "-id", idTest, "-ood", idTest, "-temperature", "-2", "-out", filepath.Join(dir, "r")},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, "-temperature") || !strings.Contains(errOut, "> 0") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a -temperature error", name, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "c.json")); err == nil {
		t.Error("calibrate wrote a calibration with T 0")
	}
}

// PATH#PREFIX on a file that has no folders (IDX, CIFAR, an image) is an error naming it; the
// prefix was silently ignored.
func TestPrefixOnFileWithoutFolders(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	model := fixture(t, "cnn28.onnx")
	idTest, _ := datasettest.WriteIDX(t, dir, "test", 10, 28, 28)
	cifar := datasettest.WriteCIFAR(t, dir, "data_batch_1", 4)
	for name, args := range map[string][]string{
		"calibrate IDX": {"calibrate", "-model", model, "-data", idTest + "#train", "-out", filepath.Join(dir, "c.json")},
		"eval IDX":      {"eval", "-model", model, "-id", idTest, "-ood", idTest + "#val/images", "-out", filepath.Join(dir, "r")},
		"eval CIFAR":    {"eval", "-model", model, "-id", idTest, "-ood", cifar + "#test", "-out", filepath.Join(dir, "r")},
		"score image":   {"score", "-model", model, frame(t, "id-fashion-000.png") + "#x"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code == 0 || !strings.Contains(errOut, "has no folders") || !strings.Contains(errOut, "prefix") {
			t.Errorf("%s: exit %d, stderr %q; want an error saying the file has no folders", name, code, errOut)
		}
	}
}

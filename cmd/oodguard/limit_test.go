package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	urun "github.com/oodguard/oodguard/unleash/run"
)

// writeGrayPNGs writes n 28x28 PNGs of one gray level into dir.
func writeGrayPNGs(t *testing.T, dir string, n int, level uint8) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = level
	}
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// evalAUROC runs eval with extra flags and returns the energy AUROC of the one OOD set.
func evalAUROC(t *testing.T, args ...string) float64 {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"eval", "-scores", "energy", "-json"}, args...)...)
	if code != 0 {
		t.Fatalf("eval %v: exit %d\n%s", args, code, errOut)
	}
	var rep struct {
		ID struct {
			Count int `json:"count"`
		} `json:"id"`
		Scores []struct {
			Sets []struct {
				Metrics struct {
					AUROC float64 `json:"auroc"`
				} `json:"metrics"`
			} `json:"sets"`
		} `json:"scores"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval -json: %v\n%s", err, out)
	}
	return rep.Scores[0].Sets[0].Metrics.AUROC
}

// -limit N takes a seeded random subset, not the first N images: on data stored class by class
// the first N were one class. Here the ID set holds 10 black images in class folder "a" and 10
// white ones in "b"; the OOD set is black images. The first 10 ID images would all be black,
// scored exactly as the OOD set (AUROC 0.5); a random 10 mixes both.
func TestLimitIsRandomSubset(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	id, ood := filepath.Join(dir, "id"), filepath.Join(dir, "ood")
	writeGrayPNGs(t, filepath.Join(id, "a"), 10, 0)
	writeGrayPNGs(t, filepath.Join(id, "b"), 10, 255)
	writeGrayPNGs(t, ood, 10, 0)
	model := fixture(t, "cnn28.onnx")
	base := []string{"-model", model, "-id", id, "-ood", ood, "-out", filepath.Join(dir, "r")}
	if all := evalAUROC(t, base...); all == 0.5 {
		t.Fatalf("black and white images score the same (AUROC %v): the test cannot tell the subsets apart", all)
	}
	limited := evalAUROC(t, append(base, "-limit", "10")...)
	if limited == 0.5 {
		t.Errorf("eval -limit 10 scored only black images (AUROC %v): the first 10, one class", limited)
	}
	if again := evalAUROC(t, append(base, "-limit", "10")...); again != limited {
		t.Errorf("eval -limit 10 twice: AUROC %v then %v; the same -seed must give the same subset", limited, again)
	}
	// calibrate -limit too: the calibration counts the images of the subset.
	cal := filepath.Join(dir, "c.json")
	if code, _, errOut := runCLI(t, "calibrate", "-model", model, "-data", id, "-limit", "10", "-seed", "3", "-out", cal); code != 0 {
		t.Fatalf("calibrate -limit: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "calibrate", "-model", model, "-data", id, "-limit", "-1", "-out", cal); code != 2 || !strings.Contains(errOut, "-limit") {
		t.Errorf("calibrate -limit -1: exit %d, stderr %q", code, errOut)
	}
}

// unleash's -check-limit set is a seeded random subset of data held class by class, its images
// and labels kept together; Head took the first class alone.
func TestSampleDataDrawsEveryClass(t *testing.T) {
	d := &urun.Data{Name: "train", C: 1, H: 1, W: 2}
	for c := range 4 {
		for i := range 50 {
			d.Labels = append(d.Labels, c)
			d.X = append(d.X, float32(c), float32(i))
		}
	}
	s := sampleData(d, 40, 3)
	if s.Len() != 40 || len(s.X) != 80 {
		t.Fatalf("sample of 40: %d labels, %d values", s.Len(), len(s.X))
	}
	classes := map[int]int{}
	for i, l := range s.Labels {
		classes[l]++
		if s.X[2*i] != float32(l) {
			t.Fatalf("image %d of class %v carries label %d", i, s.X[2*i], l)
		}
	}
	if len(classes) != 4 {
		t.Errorf("40 of 200 images in 4 classes drew classes %v", classes)
	}
	if again := sampleData(d, 40, 3); !slices.Equal(again.X, s.X) {
		t.Error("the same seed drew another sample")
	}
	if sampleData(d, 0, 3) != d || sampleData(d, 200, 3) != d {
		t.Error("no limit, or one of the whole set, must give the set itself")
	}
}

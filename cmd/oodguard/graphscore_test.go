package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/detect/detecttest"
	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// scoreJSON runs oodguard score -json and returns its lines.
func scoreJSON(t *testing.T, args ...string) []scoredImage {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"score", "-json"}, args...)...)
	if code != 0 {
		t.Fatalf("score: exit %d\n%s\n%s", code, out, errOut)
	}
	var imgs []scoredImage
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var img scoredImage
		if err := json.Unmarshal([]byte(line), &img); err != nil {
			t.Fatalf("score line %q: %v", line, err)
		}
		imgs = append(imgs, img)
	}
	return imgs
}

// TestGraphScoreCLI: cnn28 with KNN and with ViM written into its graph, calibrated on the
// graph score, scored, evaluated and bundled with canaries by the CLI as energy is. The scores
// equal detect's host-side reference (features extracted by ONNX Runtime, detector in float64)
// within 1e-5 relative to max(1, |score|); the calibration and the bundle manifest record the
// detector.
func TestGraphScoreCLI(t *testing.T) {
	runtimetest.Setup(t)
	for _, method := range []string{"knn", "vim"} {
		t.Run(method, func(t *testing.T) { testGraphScoreCLI(t, method) })
	}
}

func testGraphScoreCLI(t *testing.T, method string) {
	w := detecttest.Write(t, method)
	dir := t.TempDir()
	pre := fixture(t, "cnn28.preprocess.json")
	idVal, _ := datasettest.WriteIDX(t, dir, "val", 60, 28, 28)
	oodDir := filepath.Join(dir, "ood")
	os.Mkdir(oodDir, 0o755)
	oodImgs, _ := datasettest.WriteIDX(t, oodDir, "ood", 30, 28, 28)
	cal := filepath.Join(dir, "calibration.json")

	code, out, errOut := runCLI(t, "calibrate", "-model", w.Path, "-preprocess", pre, "-data", idVal, "-score", "graph", "-out", cal)
	if code != 0 {
		t.Fatalf("calibrate: exit %d\n%s\n%s", code, out, errOut)
	}
	c, err := calibrate.LoadCalibration(cal)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Score.Equal(w.Score) {
		t.Errorf("calibration score %s %s, want %s %s", c.Score, c.Score.Detector, w.Score, w.Score.Detector)
	}

	// inspect names the score output and the detector recorded in the graph's metadata.
	code, out, errOut = runCLI(t, "inspect", w.Path)
	if code != 0 || !strings.Contains(out, "score output: ood_score") || !strings.Contains(out, "detector written into the graph: "+w.Detector.Name()) {
		t.Errorf("inspect: exit %d\n%s%s", code, out, errOut)
	}

	// The reference images as a tensor file: the graph score against the host reference.
	input := filepath.Join(runtimetest.RepoRoot(t), "testdata", "models", "cnn28.input.f32")
	raw, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
	}
	n := len(x) / (28 * 28)
	want := w.Reference(t, x, n)
	imgs := scoreJSON(t, "-model", w.Path, "-calibration", cal, input)
	if len(imgs) != n {
		t.Fatalf("%d scored images, want %d", len(imgs), n)
	}
	for i, img := range imgs {
		if img.Graph == nil {
			t.Fatalf("image %d: no graph score", i)
		}
		if d := math.Abs(*img.Graph - want[i]); d > detecttest.Tolerance(want[i]) {
			t.Errorf("image %d: CLI graph score %.9g, host reference %.9g", i, *img.Graph, want[i])
		}
		if wantDec := map[bool]string{true: "id", false: "ood"}[*img.Graph >= c.Threshold]; img.Decision != wantDec {
			t.Errorf("image %d: decision %q for score %v at threshold %v", i, img.Decision, *img.Graph, c.Threshold)
		}
	}

	// The threshold is the one fitted on the graph scores that score prints for the same data.
	var val []float64
	for _, img := range scoreJSON(t, "-model", w.Path, "-calibration", cal, idVal) {
		val = append(val, *img.Graph)
	}
	th, _, err := calibrate.FitThreshold(val, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if th != c.Threshold {
		t.Errorf("calibration threshold %v, the scores of score give %v", c.Threshold, th)
	}

	// eval adds the graph score and applies the calibration's threshold to it.
	rep := filepath.Join(dir, "report")
	code, out, errOut = runCLI(t, "eval", "-model", w.Path, "-calibration", cal, "-id", idVal, "-ood", oodImgs, "-out", rep, "-json")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s\n%s", code, out, errOut)
	}
	var got struct {
		Scores []struct {
			Score     string   `json:"score"`
			Threshold *float64 `json:"threshold"`
		} `json:"scores"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("eval -json: %v\n%s", err, out)
	}
	if len(got.Scores) != 4 || got.Scores[0].Score != w.Score.String() || got.Scores[0].Threshold == nil || *got.Scores[0].Threshold != c.Threshold {
		t.Errorf("eval scores %+v, want %s first with threshold %v", got.Scores, w.Score, c.Threshold)
	}

	// A bundle records the score; its canaries are graph scores.
	keys := keygen(t, "oodguard")
	tarPath := filepath.Join(dir, "b.tar")
	frames := filepath.Join(runtimetest.RepoRoot(t), "testdata", "frames")
	code, out, errOut = runCLI(t, "bundle", "-model", w.Path, "-calibration", cal, "-key", filepath.Join(keys, "oodguard.key"),
		"-version", "1.0.0", "-device-class", "test-board", "-canaries", frames, "-canary-count", "2", "-out", tarPath)
	if code != 0 {
		t.Fatalf("bundle: exit %d\n%s\n%s", code, out, errOut)
	}
	kr, err := bundle.LoadKeyring(filepath.Join(keys, "oodguard.pub"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(tarPath, kr, bundle.Options{StagingDir: filepath.Join(dir, "slot")})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Manifest.Score.Equal(w.Score) || b.Manifest.Score.Kind != score.KindGraph {
		t.Errorf("manifest score %s, want %s", b.Manifest.Score, w.Score)
	}
	first := scoreJSON(t, "-model", w.Path, "-calibration", cal, filepath.Join(frames, "id-fashion-000.png"))
	if cs := b.Manifest.Canaries; len(cs) != 2 || math.Abs(cs[0].Expected-*first[0].Graph) > 1e-6 {
		t.Errorf("canaries %+v, want the first to expect the graph score %v", cs, *first[0].Graph)
	}

	// A graph score of the plain model is refused, naming the output it lacks.
	code, _, errOut = runCLI(t, "calibrate", "-model", fixture(t, "cnn28.onnx"), "-data", idVal, "-score", "graph", "-out", filepath.Join(dir, "x.json"))
	if code == 0 || !strings.Contains(errOut, "ood_score") {
		t.Errorf("calibrate -score graph on the plain model: exit %d\n%s", code, errOut)
	}
}

package calibrate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/score"
)

func validCalibration() *Calibration {
	return &Calibration{
		Format: CalibrationFormat, Score: score.Spec{Kind: score.KindEnergy, Temperature: 1},
		Threshold: 4.5, TargetTPR: 0.95, AchievedTPR: 0.9501, ModelSHA256: strings.Repeat("0a", 32),
		Preprocess: preprocess.FashionMNIST(), Data: []DataRef{{Role: "id-validation", Name: "v", Count: 10}},
		Tool: "oodguard test", Created: time.Unix(1700000000, 0).UTC(),
	}
}

func TestCalibrationRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "calibration.json")
	c := validCalibration()
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCalibration(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.Threshold != c.Threshold || !back.Score.Equal(c.Score) || !back.Created.Equal(c.Created) || back.Preprocess.Width != 28 {
		t.Fatalf("round trip: %+v", back)
	}
	if err := back.CheckModel(c.ModelSHA256); err != nil {
		t.Error(err)
	}
	if err := back.CheckModel(strings.Repeat("ff", 32)); !errors.Is(err, ErrWrongModel) {
		t.Errorf("other model: %v", err)
	}
}

func TestCalibrationRejects(t *testing.T) {
	dir := t.TempDir()
	for name, mutate := range map[string]func(*Calibration){
		"format":    func(c *Calibration) { c.Format = 99 },
		"score":     func(c *Calibration) { c.Score.Kind = "nope" },
		"threshold": func(c *Calibration) { c.TargetTPR = 0 },
		"sha":       func(c *Calibration) { c.ModelSHA256 = "abc" },
		"spec":      func(c *Calibration) { c.Preprocess.Channels = 2 },
	} {
		c := validCalibration()
		mutate(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if err := c.Save(filepath.Join(dir, name+".json")); err == nil {
			t.Errorf("%s: saved", name)
		}
	}
	bad := filepath.Join(dir, "unknown.json")
	os.WriteFile(bad, []byte(`{"format":1,"thresh":3}`), 0o644)
	if _, err := LoadCalibration(bad); err == nil || !strings.Contains(err.Error(), "unknown.json") {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := LoadCalibration(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestCalibrationRequiredFields: a field the score or the decision needs, missing or null, is an
// error naming the file and the field, never a zero value (a threshold of 0 accepted nearly
// every frame: energies are positive).
func TestCalibrationRequiredFields(t *testing.T) {
	good, err := json.Marshal(validCalibration())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCalibration(good); err != nil {
		t.Fatalf("valid calibration: %v", err)
	}
	// The committed calibration, which make demo and the daemon's tests use, has them all.
	if _, err := LoadCalibration(filepath.Join("..", "testdata", "models", "cnn28.calibration.json")); err != nil {
		t.Error(err)
	}
	dir := t.TempDir()
	for _, field := range []string{
		"format", "score", "threshold", "target_tpr", "model_sha256", "preprocess",
		"score.kind", "score.temperature",
		"preprocess.width", "preprocess.height", "preprocess.channels", "preprocess.resize",
		"preprocess.mean", "preprocess.std", "preprocess.layout",
	} {
		for _, how := range []string{"missing", "null"} {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			obj, key := m, field
			if parent, child, ok := strings.Cut(field, "."); ok {
				obj, key = m[parent].(map[string]any), child
			}
			if how == "missing" {
				delete(obj, key)
			} else {
				obj[key] = nil
			}
			b, _ := json.Marshal(m)
			p := filepath.Join(dir, how+"-"+field+".json")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCalibration(p)
			if err == nil {
				t.Errorf("%s %s: accepted", how, field)
				continue
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"`+field+`"`) {
				t.Errorf("%s %s: the error does not name the file and the field: %v", how, field, err)
			}
		}
	}
	// Keys match ignoring case, as encoding/json matches them; a null after a value is that value.
	upper := strings.Replace(string(good), `"threshold"`, `"Threshold"`, 1)
	if c, err := ParseCalibration([]byte(upper)); err != nil || c.Threshold != 4.5 {
		t.Errorf("Threshold in capitals: %v", err)
	}
	// A score that needs no temperature needs no temperature field.
	msp := validCalibration()
	msp.Score = score.Spec{Kind: score.KindMSP}
	b, _ := json.Marshal(msp)
	if _, err := ParseCalibration(b); err != nil {
		t.Errorf("msp without temperature: %v", err)
	}
	// A calibration whose energy temperature is 0 is not saved: read back it would be missing.
	zeroT := validCalibration()
	zeroT.Score.Temperature = 0
	if err := zeroT.Save(filepath.Join(dir, "zero-t.json")); !errors.Is(err, ErrMissingField) {
		t.Errorf("saving energy with T 0: %v", err)
	}
}

// TestGraphScoreCalibration: a graph score's calibration records the output it reads and the
// detector that wrote it, survives a round trip (the indented detector record Equal to the
// compact one), and is refused without its output.
func TestGraphScoreCalibration(t *testing.T) {
	dir := t.TempDir()
	c := validCalibration()
	c.Score = score.Spec{Kind: score.KindGraph, Output: "ood_score", Name: "knn(k=5)",
		Detector: json.RawMessage(`{"method":"knn","output":"ood_score","k":5,"bank":600}`)}
	p := filepath.Join(dir, "calibration.json")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCalibration(p)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Score.Equal(c.Score) {
		t.Errorf("round trip: %s %s, want %s %s", back.Score, back.Score.Detector, c.Score, c.Score.Detector)
	}
	raw, _ := os.ReadFile(p)
	if !strings.Contains(string(raw), `"method": "knn"`) {
		t.Errorf("calibration.json does not record the detector:\n%s", raw)
	}
	noOut := strings.Replace(string(raw), `"output": "ood_score",`, "", 1)
	if noOut == string(raw) {
		t.Fatal("no output field to remove")
	}
	if _, err := ParseCalibration([]byte(noOut)); !errors.Is(err, ErrMissingField) || !strings.Contains(err.Error(), "score.output") {
		t.Errorf("graph score without its output: %v", err)
	}
}

package calibrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/score"
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
	if back.Threshold != c.Threshold || back.Score != c.Score || !back.Created.Equal(c.Created) || back.Preprocess.Width != 28 {
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

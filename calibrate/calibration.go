package calibrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/score"
	"github.com/oodguard/oodguard/internal/atomicfile"
)

// CalibrationFormat is the format version of calibration.json that this code writes and reads.
const CalibrationFormat = 1

// ErrWrongModel is returned when a calibration belongs to another model.
var ErrWrongModel = errors.New("calibration is for another model")

// Calibration is calibration.json: the threshold fitted on ID validation data and everything
// needed to apply it the same way elsewhere (the daemon reads it; bundles carry it).
type Calibration struct {
	Format      int             `json:"format"`
	Score       score.Spec      `json:"score"`
	Threshold   float64         `json:"threshold"`    // ID when score >= threshold
	TargetTPR   float64         `json:"target_tpr"`   // asked-for ID true-positive rate
	AchievedTPR float64         `json:"achieved_tpr"` // reached on the calibration data
	ModelSHA256 string          `json:"model_sha256"` // hex sha256 of the model file
	ModelFile   string          `json:"model_file,omitempty"`
	Preprocess  preprocess.Spec `json:"preprocess"`
	Data        []DataRef       `json:"data"`
	Tool        string          `json:"tool"` // "oodguard <version>"
	Created     time.Time       `json:"created"`
}

// DataRef names a dataset used for calibration and how many samples it gave.
type DataRef struct {
	Role  string `json:"role"` // "id-validation"
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Validate checks the fields a user of the calibration relies on.
func (c *Calibration) Validate() error {
	if c.Format != CalibrationFormat {
		return fmt.Errorf("format %d, this oodguard reads format %d", c.Format, CalibrationFormat)
	}
	if err := c.Score.Validate(); err != nil {
		return err
	}
	if math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0) {
		return fmt.Errorf("threshold %v is not a finite number", c.Threshold)
	}
	if !(c.TargetTPR > 0 && c.TargetTPR <= 1) {
		return fmt.Errorf("target_tpr %v must be in (0, 1]", c.TargetTPR)
	}
	if len(c.ModelSHA256) != 64 {
		return fmt.Errorf("model_sha256 %q is not a hex sha256", c.ModelSHA256)
	}
	if err := c.Preprocess.Validate(); err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	return nil
}

// CheckModel returns ErrWrongModel unless the calibration was made for the model whose file has
// the given sha256.
func (c *Calibration) CheckModel(sha256 string) error {
	if c.ModelSHA256 != sha256 {
		return fmt.Errorf("%w: it was made for model sha256 %.12s…, this model is %.12s…", ErrWrongModel, c.ModelSHA256, sha256)
	}
	return nil
}

// ParseCalibration decodes and validates calibration.json bytes; unknown fields are errors.
func ParseCalibration(b []byte) (*Calibration, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Calibration
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadCalibration reads and validates a calibration file; errors name the file.
func LoadCalibration(path string) (*Calibration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	c, err := ParseCalibration(b)
	if err != nil {
		return nil, fmt.Errorf("calibration %s: %w", path, err)
	}
	return c, nil
}

// Save writes the calibration to path atomically.
func (c *Calibration) Save(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("calibration %s: %w", path, err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

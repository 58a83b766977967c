package calibrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/internal/atomicfile"
	"github.com/oodguard/oodguard/score"
)

// CalibrationFormat is the format version of calibration.json that this code writes and reads.
const CalibrationFormat = 1

// Errors a calibration is checked against, for errors.Is.
var (
	// ErrWrongModel is returned when a calibration belongs to another model.
	ErrWrongModel = errors.New("calibration is for another model")
	// ErrMissingField is wrapped when calibration.json lacks a field that scoring needs, or
	// holds null in it: JSON decoding would read it as zero (a threshold of 0 accepts every
	// frame whose energy is positive, that is nearly all of them).
	ErrMissingField = errors.New("missing or null, and it is required")
)

// requiredFields are the calibration.json fields that decide a frame's score and the decision
// on it; each must be present and not null. score.temperature is required for energy only,
// score.output for a graph score only.
var requiredFields = map[string][]string{
	"":           {"format", "score", "threshold", "target_tpr", "model_sha256", "preprocess"},
	"score":      {"kind"},
	"preprocess": {"width", "height", "channels", "resize", "mean", "std", "layout"},
}

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
	if c.Score.Kind == score.KindEnergy && c.Score.Temperature == 0 {
		return fmt.Errorf("field \"score.temperature\": %w (energy needs its temperature T > 0)", ErrMissingField)
	}
	if c.Score.Kind == score.KindGraph && c.Score.Output == "" {
		return fmt.Errorf("field \"score.output\": %w (a graph score names the model output it reads)", ErrMissingField)
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

// ParseCalibration decodes and validates calibration.json bytes; unknown fields are errors, and
// so are missing or null required fields (ErrMissingField, naming the field).
func ParseCalibration(b []byte) (*Calibration, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Calibration
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := checkRequired(b, c.Score.Kind); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkRequired returns an ErrMissingField error naming the first required field that b, which
// decoded into a Calibration, lacks or holds null in. Keys match as encoding/json matches them,
// ignoring case.
func checkRequired(b []byte, kind score.Kind) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return err
	}
	for _, f := range requiredFields[""] {
		if _, ok := lookup(top, f); !ok {
			return fmt.Errorf("field %q: %w", f, ErrMissingField)
		}
	}
	for _, obj := range []string{"score", "preprocess"} {
		raw, _ := lookup(top, obj)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("field %q: %w", obj, err)
		}
		fields := requiredFields[obj]
		if obj == "score" && kind == score.KindEnergy {
			fields = append(fields[:len(fields):len(fields)], "temperature")
		}
		if obj == "score" && kind == score.KindGraph {
			fields = append(fields[:len(fields):len(fields)], "output")
		}
		for _, f := range fields {
			if _, ok := lookup(m, f); !ok {
				return fmt.Errorf("field %q: %w", obj+"."+f, ErrMissingField)
			}
		}
	}
	return nil
}

// lookup returns the value of a non-null key of m that matches name, ignoring case as
// encoding/json does.
func lookup(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return v, true
		}
	}
	return nil, false
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

package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/score"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// Names of the entries every bundle holds.
const (
	ManifestName    = "manifest.json"
	SignatureName   = "manifest.sig"
	ModelName       = "model.onnx"
	CalibrationName = "calibration.json"
)

// Manifest describes a bundle; its exact bytes are what the signature covers.
type Manifest struct {
	FormatVersion int             `json:"format_version"`           // FormatVersion
	Version       Version         `json:"version"`                  // bundle version, compared with the installed one
	DeviceClass   string          `json:"device_class"`             // devices that may install it, e.g. "jetson-orin-nano"
	Created       time.Time       `json:"created"`                  // when the bundle was built
	Files         map[string]File `json:"files"`                    // every payload file, by entry name
	Preprocess    preprocess.Spec `json:"preprocess"`               // how frames become model inputs
	Score         score.Spec      `json:"score"`                    // the OOD score
	Threshold     float64         `json:"threshold"`                // ID when score >= threshold
	MinDaemon     Version         `json:"min_daemon,omitzero"`      // oldest oodguardd that may run it; zero: any
	MinORT        Version         `json:"min_onnxruntime,omitzero"` // oldest ONNX Runtime that may run it; zero: any
	Canaries      []Canary        `json:"canaries,omitempty"`       // inputs with known scores, checked before switching
}

// File binds one payload file to the manifest.
type File struct {
	SHA256 string `json:"sha256"` // lowercase hex
	Size   int64  `json:"size"`   // bytes
}

// Canary is an input whose score the device checks after loading the model and before it
// switches to it: |score - Expected| must be <= Tolerance. The input is a raw little-endian
// float32 tensor [C,H,W], already preprocessed, given either inline (Input, base64 in JSON) or
// as a file in the bundle (InputFile, a canary-NAME.f32 entry listed in Files).
type Canary struct {
	Name      string  `json:"name,omitempty"`
	Input     []byte  `json:"input,omitempty"`
	InputFile string  `json:"input_file,omitempty"`
	Expected  float64 `json:"expected"`
	Tolerance float64 `json:"tolerance"`
}

// ParseManifest decodes and validates manifest.json. It refuses unknown fields and trailing
// data. Errors wrap ErrMalformedManifest or ErrUnsupportedFormat.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", ManifestName, ErrMalformedManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: %w: data after the manifest object", ManifestName, ErrMalformedManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return &m, nil
}

// Marshal encodes m as the manifest.json bytes that Build signs.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

package bundle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
)

// Caps on manifest contents, far above any real bundle.
const (
	maxCanaries   = 64
	maxNameLength = 64
)

var (
	// deviceClassRE is what a device class may look like.
	deviceClassRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// canaryFileRE is what a canary input file in a bundle may be called.
	canaryFileRE = regexp.MustCompile(`^canary-[A-Za-z0-9_-]{1,64}\.f32$`)
)

// payloadName reports whether name may be a payload file of a bundle (a key of Files).
func payloadName(name string) bool {
	return name == ModelName || name == CalibrationName || canaryFileRE.MatchString(name)
}

// Validate checks that m is complete and consistent. Errors wrap ErrMalformedManifest or
// ErrUnsupportedFormat.
func (m *Manifest) Validate() error {
	if m.FormatVersion != FormatVersion {
		return fmt.Errorf("%w: format_version %d (this build reads %d)", ErrUnsupportedFormat, m.FormatVersion, FormatVersion)
	}
	if err := m.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedManifest, err)
	}
	return nil
}

func (m *Manifest) validate() error {
	if m.Version.IsZero() {
		return errors.New("version is missing")
	}
	if !deviceClassRE.MatchString(m.DeviceClass) {
		return fmt.Errorf("device_class %q is not 1-64 of [A-Za-z0-9._-]", m.DeviceClass)
	}
	if m.Created.IsZero() {
		return errors.New("created is missing")
	}
	for _, need := range []string{ModelName, CalibrationName} {
		if _, ok := m.Files[need]; !ok {
			return fmt.Errorf("files lacks %s", need)
		}
	}
	if len(m.Files) > 2+maxCanaries {
		return fmt.Errorf("files lists %d files (at most %d)", len(m.Files), 2+maxCanaries)
	}
	for name, f := range m.Files {
		if !payloadName(name) {
			return fmt.Errorf("files: %q is not a bundle file name", name)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 || hex.EncodeToString(b) != f.SHA256 {
			return fmt.Errorf("files: %s: sha256 %q is not 64 lowercase hex digits", name, f.SHA256)
		}
		if f.Size < 0 {
			return fmt.Errorf("files: %s: negative size %d", name, f.Size)
		}
	}
	if err := m.Preprocess.Validate(); err != nil {
		return err
	}
	if err := m.Score.Validate(); err != nil {
		return err
	}
	if math.IsNaN(m.Threshold) || math.IsInf(m.Threshold, 0) {
		return fmt.Errorf("threshold %v is not finite", m.Threshold)
	}
	return m.validateCanaries()
}

// InputBytes is the size in bytes of one preprocessed input tensor, float32 [C,H,W].
func (m *Manifest) InputBytes() int64 {
	p := m.Preprocess
	return 4 * int64(p.Channels) * int64(p.Height) * int64(p.Width)
}

func (m *Manifest) validateCanaries() error {
	if len(m.Canaries) > maxCanaries {
		return fmt.Errorf("%d canaries (at most %d)", len(m.Canaries), maxCanaries)
	}
	want := m.InputBytes()
	for i, c := range m.Canaries {
		if len(c.Name) > maxNameLength {
			return fmt.Errorf("canary %d: name longer than %d bytes", i, maxNameLength)
		}
		if math.IsNaN(c.Expected) || math.IsInf(c.Expected, 0) || !(c.Tolerance >= 0) || math.IsInf(c.Tolerance, 0) {
			return fmt.Errorf("canary %d: expected %v, tolerance %v (need finite, tolerance >= 0)", i, c.Expected, c.Tolerance)
		}
		switch {
		case len(c.Input) > 0 && c.InputFile != "":
			return fmt.Errorf("canary %d: both input and input_file", i)
		case len(c.Input) > 0:
			if int64(len(c.Input)) != want {
				return fmt.Errorf("canary %d: input is %d bytes, the model takes %d", i, len(c.Input), want)
			}
		case c.InputFile != "":
			f, ok := m.Files[c.InputFile]
			if !ok || !canaryFileRE.MatchString(c.InputFile) {
				return fmt.Errorf("canary %d: input_file %q is not a canary file listed in files", i, c.InputFile)
			}
			if f.Size != want {
				return fmt.Errorf("canary %d: %s is %d bytes, the model takes %d", i, c.InputFile, f.Size, want)
			}
		default:
			return fmt.Errorf("canary %d: no input", i)
		}
	}
	return nil
}

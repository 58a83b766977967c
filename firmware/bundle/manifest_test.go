package bundle

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// validManifest returns the manifest.json bytes of a valid test bundle.
func validManifest(t testing.TB) []byte {
	t.Helper()
	m := testManifest()
	m.FormatVersion = FormatVersion
	m.Files = map[string]File{
		ModelName:        {SHA256: strings.Repeat("ab", 32), Size: 1600},
		CalibrationName:  {SHA256: strings.Repeat("cd", 32), Size: 21},
		"canary-ood.f32": {SHA256: strings.Repeat("ef", 32), Size: 64},
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseManifestRoundTrip(t *testing.T) {
	b := validManifest(t)
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("round trip differs (%v):\n%s\n%s", err, b, again)
	}
	for _, want := range []string{`"version": "1.2.0"`, `"min_onnxruntime": "1.24.1"`, `"kind": "energy"`, `"input": "AAAA`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("manifest lacks %s:\n%s", want, b)
		}
	}
}

func TestParseManifestRefuses(t *testing.T) {
	valid := string(validManifest(t))
	for _, c := range []struct {
		name, old, new string
		want           error
	}{
		{"unknown field", `"threshold"`, `"treshold"`, ErrMalformedManifest},
		{"trailing data", "}\n", "}\n{}", ErrMalformedManifest},
		{"format", `"format_version": 1`, `"format_version": 0`, ErrUnsupportedFormat},
		{"bad version", `"version": "1.2.0"`, `"version": "1.2"`, ErrMalformedManifest},
		{"no version", `"version": "1.2.0",`, ``, ErrMalformedManifest},
		{"device class", `"test-board"`, `"../board"`, ErrMalformedManifest},
		{"upper-case hash", strings.Repeat("ab", 32), strings.Repeat("AB", 32), ErrMalformedManifest},
		{"short hash", strings.Repeat("ab", 32), "abcd", ErrMalformedManifest},
		{"negative size", `"size": 1600`, `"size": -1`, ErrMalformedManifest},
		{"path in files", `"model.onnx": {`, `"../model.onnx": {`, ErrMalformedManifest},
		{"no calibration", `"calibration.json": {`, `"canary-cal.f32": {`, ErrMalformedManifest},
		{"channels", `"channels": 1`, `"channels": 2`, ErrMalformedManifest},
		{"std", `"std": [`, `"std": [0, `, ErrMalformedManifest},
		{"layout", `"NCHW"`, `"NHWC"`, ErrMalformedManifest},
		{"score", `"energy"`, `"entropy"`, ErrMalformedManifest},
		{"canary size", `"size": 64`, `"size": 60`, ErrMalformedManifest},
		{"canary file unlisted", `"input_file": "canary-ood.f32"`, `"input_file": "canary-x.f32"`, ErrMalformedManifest},
		{"canary tolerance", `"tolerance": 0.0001`, `"tolerance": -1`, ErrMalformedManifest},
		{"not JSON", `{`, `[`, ErrMalformedManifest},
	} {
		if !strings.Contains(valid, c.old) {
			t.Fatalf("%s: manifest lacks %q", c.name, c.old)
		}
		_, err := ParseManifest([]byte(strings.Replace(valid, c.old, c.new, 1)))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

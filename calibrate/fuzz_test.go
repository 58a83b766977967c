package calibrate

import (
	"bytes"
	"encoding/json"
	"image"
	"testing"

	"github.com/oodguard/oodguard/device/preprocess"
)

// FuzzParseCalibration feeds arbitrary bytes to ParseCalibration, as a daemon reading a bundle's
// calibration.json would: an error or a calibration whose score and preprocessing the daemon can
// build and run, never a panic.
func FuzzParseCalibration(f *testing.F) {
	good, err := json.Marshal(validCalibration())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format": 1}`))
	f.Add([]byte(`{"format": 1, "score": {"kind": "energy", "temperature": -1}}`))
	f.Add([]byte(`[]`))
	// Required fields missing or null (issue 15: a missing threshold was read as 0).
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		f.Fatal(err)
	}
	for _, k := range []string{"threshold", "score", "preprocess", "model_sha256"} {
		v := m[k]
		delete(m, k)
		b, _ := json.Marshal(m)
		f.Add(b)
		m[k] = nil
		b, _ = json.Marshal(m)
		f.Add(b)
		m[k] = v
	}
	f.Add(bytes.Replace(good, []byte(`"temperature":1`), []byte(`"temperature":null`), 1))
	f.Add(bytes.Replace(good, []byte(`"mean":[0.286]`), []byte(`"mean":null`), 1))
	f.Add(bytes.Replace(good, []byte(`"kind":"energy"`), []byte(`"KIND":"energy","kind":null`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCalibration(b)
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			t.Fatalf("valid calibration that is not a JSON object: %q", b)
		}
		if _, ok := lookup(m, "threshold"); !ok {
			t.Fatalf("valid calibration without a threshold: %q", b)
		}
		if _, err := c.Score.Func(); err != nil {
			t.Fatalf("valid calibration with an unusable score %v: %v", c.Score, err)
		}
		pre, err := preprocess.New(c.Preprocess)
		if err != nil {
			t.Fatalf("valid calibration with an unusable preprocessing spec %+v: %v", c.Preprocess, err)
		}
		if pre.Len() > 1<<20 {
			return // valid but large; not worth allocating here
		}
		if err := pre.Process(make([]float32, pre.Len()), image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
			t.Fatalf("preprocessing a 3x2 frame: %v", err)
		}
	})
}

package event

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func sample() Event {
	return Event{
		ID:        NewID("cam-1", "0123456789abcdef", 42),
		Time:      time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
		Device:    "cam-1",
		Model:     "sha256:0a1b2c3d",
		FrameID:   42,
		Source:    "/dev/video0",
		ScoreKind: "energy",
		Score:     -3.25,
		Threshold: 1.5,
		Decision:  DecisionOOD,
		Frame:     "oodguard/cam-1/frames/x",
	}
}

func TestNewIDStable(t *testing.T) {
	a := NewID("cam-1", "run", 7)
	if got := NewID("cam-1", "run", 7); got != a {
		t.Fatalf("NewID not deterministic: %s vs %s", got, a)
	}
	if len(a) != 32 {
		t.Fatalf("len(NewID) = %d, want 32", len(a))
	}
	for _, other := range []string{NewID("cam-1", "run", 8), NewID("cam-2", "run", 7), NewID("cam-1", "run2", 7), NewID("cam-1r", "un", 7)} {
		if other == a {
			t.Fatalf("different inputs gave the same id %s", a)
		}
	}
	if err := validID(a); err != nil {
		t.Fatal(err)
	}
	if r1, r2 := NewRunID(), NewRunID(); r1 == r2 || len(r1) != 16 {
		t.Fatalf("NewRunID: %q, %q", r1, r2)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	want := sample()
	b, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id"`, `"frame_id"`, `"score_kind"`, `"threshold"`, `"decision":"ood"`, `"frame"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("encoded event lacks %s: %s", key, b)
		}
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(want.Time) {
		t.Fatalf("time: got %v, want %v", got.Time, want.Time)
	}
	got.Time = want.Time
	if got != want {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeIgnoresUnknownKeys(t *testing.T) {
	b, _ := sample().Encode()
	b = append([]byte(`{"added_later":[1,2],`), b[1:]...)
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		b, _ := sample().Encode()
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		out, _ := json.Marshal(m)
		return out
	}
	tests := []struct {
		name, want string
		in         []byte
	}{
		{"empty", "unexpected end of JSON", nil},
		{"not json", "invalid character", []byte("alert!")},
		{"truncated", "unexpected end of JSON", []byte(`{"id":"a"`)},
		{"array", "cannot unmarshal array", []byte(`[1]`)},
		{"null", "id: missing", []byte(`null`)},
		{"trailing", "invalid character", append(valid(func(map[string]any) {}), '}')},
		{"missing id", "id: missing", valid(func(m map[string]any) { delete(m, "id") })},
		{"id with slash", "id: ", valid(func(m map[string]any) { m["id"] = "a/b" })},
		{"id too long", "id: 65 bytes", valid(func(m map[string]any) { m["id"] = strings.Repeat("a", 65) })},
		{"missing device", "device: missing", valid(func(m map[string]any) { delete(m, "device") })},
		{"missing time", "time: missing", valid(func(m map[string]any) { delete(m, "time") })},
		{"bad time", "cannot parse", valid(func(m map[string]any) { m["time"] = "yesterday" })},
		{"score string", "cannot unmarshal string", valid(func(m map[string]any) { m["score"] = "NaN" })},
		{"score overflow", "cannot unmarshal number 1e999", []byte(strings.Replace(string(valid(func(map[string]any) {})), `"score":-3.25`, `"score":1e999`, 1))},
		{"negative frame id", "cannot unmarshal number -1", valid(func(m map[string]any) { m["frame_id"] = -1 })},
		{"unknown decision", `"maybe" is neither`, valid(func(m map[string]any) { m["decision"] = "maybe" })},
		{"missing decision", "decision: missing", valid(func(m map[string]any) { delete(m, "decision") })},
		{"too large", "more than 65536", make([]byte, MaxSize+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if err == nil {
				t.Fatalf("Decode(%q) succeeded", tt.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestEncodeRejectsNonFinite(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := sample()
		e.Score = v
		if _, err := e.Encode(); err == nil || !strings.Contains(err.Error(), "score") {
			t.Errorf("score %v: err = %v", v, err)
		}
		e = sample()
		e.Threshold = v
		if _, err := e.Encode(); err == nil || !strings.Contains(err.Error(), "threshold") {
			t.Errorf("threshold %v: err = %v", v, err)
		}
	}
}

func TestStatsRoundTrip(t *testing.T) {
	want := Stats{Time: time.Unix(1700000000, 0).UTC(), Device: "cam-1", Frames: 100, Flagged: 3, FPS: 29.5,
		InferenceP50Ms: 4.2, InferenceP99Ms: 9.9, OutboxLen: 2, OutboxBytes: 1234, OutboxDropped: 1, UptimeS: 60}
	b, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"inference_p99_ms":9.9`) || !strings.Contains(string(b), `"outbox_dropped":1`) {
		t.Fatalf("unexpected keys: %s", b)
	}
	got, err := DecodeStats(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	want.FPS = math.NaN()
	if _, err := want.Encode(); err == nil || !strings.Contains(err.Error(), "fps") {
		t.Fatalf("NaN fps: err = %v", err)
	}
}

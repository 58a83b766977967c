package event

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Stats is the periodic health message of a device. Counters count since the daemon started.
type Stats struct {
	Time           time.Time `json:"time"`             // when the stats were taken
	Device         string    `json:"device"`           // device id
	Model          string    `json:"model"`            // model version or sha256 prefix
	Frames         uint64    `json:"frames"`           // frames scored
	Flagged        uint64    `json:"flagged"`          // frames flagged as OOD
	Dropped        uint64    `json:"dropped"`          // frames dropped before scoring (pipeline full)
	FPS            float64   `json:"fps"`              // frames scored per second, recent average
	InferenceP50Ms float64   `json:"inference_p50_ms"` // median inference time, milliseconds
	InferenceP99Ms float64   `json:"inference_p99_ms"` // 99th percentile inference time, milliseconds
	OutboxLen      int       `json:"outbox_len"`       // messages waiting in the outbox
	OutboxBytes    int64     `json:"outbox_bytes"`     // their size on disk
	OutboxDropped  uint64    `json:"outbox_dropped"`   // messages the outbox dropped (see guard/outbox)
	UptimeS        float64   `json:"uptime_s"`         // seconds since the daemon started
}

// Encode returns the JSON form of s. Non-finite numbers are an error.
func (s Stats) Encode() ([]byte, error) {
	for _, f := range []struct {
		name string
		v    float64
	}{{"fps", s.FPS}, {"inference_p50_ms", s.InferenceP50Ms}, {"inference_p99_ms", s.InferenceP99Ms}, {"uptime_s", s.UptimeS}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return nil, invalid("stats "+f.name, "not a finite number")
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode stats: %w", err)
	}
	return b, nil
}

// DecodeStats parses a stats message.
func DecodeStats(b []byte) (Stats, error) {
	var s Stats
	if len(b) > MaxSize {
		return s, fmt.Errorf("%w: stats: %d bytes, more than %d", ErrInvalid, len(b), MaxSize)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Stats{}, fmt.Errorf("%w: stats: %v", ErrInvalid, err)
	}
	return s, nil
}

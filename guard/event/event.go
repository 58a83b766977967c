// Package event defines the messages oodguardd publishes: the alert Event raised for a scored
// frame, and the periodic Stats.
//
// Both travel as JSON with snake_case keys. An Event's ID is derived from the device, the
// daemon's run id and the frame number (see NewID), so a message delivered twice (MQTT QoS 1
// around a connection loss, or a resend after a restart) carries the same ID both times and a
// subscriber can drop the second copy. Decode validates what it reads and never panics; unknown
// keys are ignored so that older subscribers keep reading newer events.
package event

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Decisions an Event carries. A frame is ID when score >= threshold (see package score).
const (
	DecisionOOD = "ood" // out of distribution: the frame was flagged
	DecisionID  = "id"  // in distribution
)

// MaxSize is the largest encoded event Decode accepts, in bytes.
const MaxSize = 64 << 10

// maxIDLen bounds an event id; ids appear in topic names.
const maxIDLen = 64

var (
	// ErrInvalid is wrapped by every validation error of Validate and Decode.
	ErrInvalid = errors.New("invalid event")
)

// Event is one scored frame, published as an alert.
type Event struct {
	ID        string    `json:"id"`              // stable id, see NewID; [A-Za-z0-9_-], at most 64 bytes
	Time      time.Time `json:"time"`            // when the frame was captured
	Device    string    `json:"device"`          // device id
	Model     string    `json:"model"`           // model version, or a sha256 prefix of the model file
	FrameID   uint64    `json:"frame_id"`        // frame number within the daemon's run
	Source    string    `json:"source"`          // camera or input the frame came from
	ScoreKind string    `json:"score_kind"`      // "energy", "msp" or "maxlogit" (package score)
	Score     float64   `json:"score"`           // higher = more in-distribution
	Median    float64   `json:"median"`          // median score of the debounce window the decision used
	Threshold float64   `json:"threshold"`       // calibrated threshold; ID when Score >= Threshold
	Decision  string    `json:"decision"`        // DecisionOOD or DecisionID
	Frame     string    `json:"frame,omitempty"` // topic the frame's JPEG was published on, if sent
}

// NewRunID returns a random id for one run of the daemon: 16 hex digits. Frame numbers restart
// with each run, so the run id keeps event ids of different runs apart.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// NewID derives an event id from the device id, the run id and the frame number: the first 16
// bytes of SHA-256 over the three, as 32 hex digits. The same inputs always give the same id.
func NewID(device, run string, frame uint64) string {
	h := sha256.New()
	h.Write([]byte(device))
	h.Write([]byte{0})
	h.Write([]byte(run))
	h.Write([]byte{0})
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], frame)
	h.Write(n[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Validate reports the first problem that makes e unfit to publish.
func (e Event) Validate() error {
	if err := validID(e.ID); err != nil {
		return err
	}
	if e.Device == "" {
		return invalid("device", "missing")
	}
	if e.Time.IsZero() {
		return invalid("time", "missing")
	}
	if math.IsNaN(e.Score) || math.IsInf(e.Score, 0) {
		return invalid("score", "not a finite number")
	}
	if math.IsNaN(e.Threshold) || math.IsInf(e.Threshold, 0) {
		return invalid("threshold", "not a finite number")
	}
	switch e.Decision {
	case DecisionOOD, DecisionID:
	case "":
		return invalid("decision", "missing")
	default:
		return invalid("decision", fmt.Sprintf("%q is neither %q nor %q", e.Decision, DecisionOOD, DecisionID))
	}
	return nil
}

// Encode validates e and returns its JSON form.
func (e Event) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}

// Decode parses and validates an event. Unknown keys are ignored.
func Decode(b []byte) (Event, error) {
	var e Event
	if len(b) > MaxSize {
		return e, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxSize)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func validID(id string) error {
	if id == "" {
		return invalid("id", "missing")
	}
	if len(id) > maxIDLen {
		return invalid("id", fmt.Sprintf("%d bytes, more than %d", len(id), maxIDLen))
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}); i >= 0 {
		return invalid("id", fmt.Sprintf("%q: only letters, digits, '-' and '_' are allowed", id))
	}
	return nil
}

func invalid(field, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, why)
}

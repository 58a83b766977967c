// Package decision turns a stream of OOD scores into decisions: a frame is in-distribution when
// its debounced score is at or above the calibrated threshold, and flagged as out of
// distribution below it (scores are "higher = more ID", see package score).
//
// Debouncing takes the median of the last N scores, so that one odd frame neither raises nor
// clears an alarm. N = 1 decides on each frame's own score.
package decision

import (
	"fmt"
	"math"
)

// Decision is the outcome for one frame.
type Decision struct {
	Score    float64 // the frame's own score
	Median   float64 // median of the last N scores, this frame's included
	Window   int     // how many scores the median covers (N once warmed up)
	OOD      bool    // Median < threshold
	Changed  bool    // OOD differs from the previous frame's decision
	Sequence uint64  // frames decided so far, this one included
}

// Decider holds the threshold and the debounce window. It is not safe for concurrent use; it
// makes no allocation per frame.
type Decider struct {
	threshold float64
	ring      []float64 // the last N scores, oldest overwritten first
	sorted    []float64 // scratch for the median
	next, n   int
	seq       uint64
	lastOOD   bool
}

// New returns a Decider that flags a frame when the median of the last window scores is below
// threshold.
func New(threshold float64, window int) (*Decider, error) {
	if math.IsNaN(threshold) || math.IsInf(threshold, 0) {
		return nil, fmt.Errorf("decision: threshold %v is not a finite number", threshold)
	}
	if window < 1 || window > 1000 {
		return nil, fmt.Errorf("decision: debounce window %d must be between 1 and 1000", window)
	}
	return &Decider{threshold: threshold, ring: make([]float64, window), sorted: make([]float64, 0, window)}, nil
}

// Threshold returns the threshold.
func (d *Decider) Threshold() float64 { return d.threshold }

// Add records a frame's score and returns the decision. A NaN score is an error and leaves the
// window unchanged.
func (d *Decider) Add(score float64) (Decision, error) {
	if math.IsNaN(score) {
		return Decision{}, fmt.Errorf("decision: score is NaN")
	}
	d.ring[d.next] = score
	d.next = (d.next + 1) % len(d.ring)
	if d.n < len(d.ring) {
		d.n++
	}
	med := d.median()
	d.seq++
	ood := med < d.threshold
	dec := Decision{Score: score, Median: med, Window: d.n, OOD: ood, Changed: ood != d.lastOOD, Sequence: d.seq}
	d.lastOOD = ood
	return dec, nil
}

// median sorts the window into scratch space by insertion (N is small) and returns its median;
// for an even count, the mean of the two middle scores.
func (d *Decider) median() float64 {
	s := d.sorted[:0]
	for i := 0; i < d.n; i++ {
		v := d.ring[i]
		j := len(s)
		s = append(s, v)
		for j > 0 && s[j-1] > v {
			s[j] = s[j-1]
			j--
		}
		s[j] = v
	}
	d.sorted = s
	if d.n%2 == 1 {
		return s[d.n/2]
	}
	return (s[d.n/2-1] + s[d.n/2]) / 2
}

// Reset forgets the window, as after a model swap.
func (d *Decider) Reset() {
	d.n, d.next, d.lastOOD = 0, 0, false
}

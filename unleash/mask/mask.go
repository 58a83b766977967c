// Package mask computes the per-layer top-k masks and the score initialisations of Unleashing Mask
// (edge-popup, Ramanujan et al. 2020, as the official UM code does it). It is plain Go: no GoMLX,
// so that masks can be computed between training steps and tested on their own.
package mask

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ErrKeep is returned for a keep ratio outside (0, 1].
var ErrKeep = errors.New("keep ratio must be in (0, 1]")

// CheckKeep reports whether keep, the fraction of weights kept, is in (0, 1].
func CheckKeep(keep float64) error {
	if !(keep > 0 && keep <= 1) { // also rejects NaN
		return fmt.Errorf("mask: %w, got %v", ErrKeep, keep)
	}
	return nil
}

// Pruned returns how many of n weights a layer zeroes at keep ratio keep: int((1-keep)*n) with
// Python's truncation, in float64, as GetSubnet computes j. The layer keeps n - Pruned(n, keep).
func Pruned(n int, keep float64) (int, error) {
	if err := CheckKeep(keep); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("mask: negative size %d", n)
	}
	return int((1 - keep) * float64(n)), nil
}

// absBits orders |score| ascending: |s| of a non-negative float32 compares like its bits.
func absBits(s float32) uint32 { return math.Float32bits(s) & 0x7fffffff }

// TopK writes into m the per-layer mask of scores: 0 for the int((1-keep)*n) entries with the
// smallest |score| and 1 for the others. Ties in |score| are broken by position: among equal
// |score| the earlier entry is pruned first (what a stable ascending argsort does). len(m) must be
// len(scores). It returns the number of pruned entries. A NaN score is an error. It takes
// O(n) time on average (quickselect) and allocates n uint32 once; use a Selector to reuse them.
func TopK(scores []float32, keep float64, m []float32) (int, error) {
	var s Selector
	return s.TopK(scores, keep, m)
}

// Selector computes top-k masks, reusing its scratch memory between calls. The zero value is
// ready; it is not safe for concurrent use.
type Selector struct {
	keys []uint32
}

// TopK is the function TopK with reused memory.
func (sel *Selector) TopK(scores []float32, keep float64, m []float32) (int, error) {
	n := len(scores)
	if len(m) != n {
		return 0, fmt.Errorf("mask: %d scores but a mask of %d", n, len(m))
	}
	if n >= math.MaxUint32 {
		return 0, fmt.Errorf("mask: layer of %d weights is too large", n)
	}
	j, err := Pruned(n, keep)
	if err != nil {
		return 0, err
	}
	if cap(sel.keys) < n {
		sel.keys = make([]uint32, n)
	}
	keys := sel.keys[:n]
	for i, s := range scores {
		if s != s {
			return 0, fmt.Errorf("mask: score %d is NaN", i)
		}
		keys[i] = absBits(s)
	}
	if j == 0 {
		for i := range m {
			m[i] = 1
		}
		return 0, nil
	}
	// In (|s|, index) order the j-th entry (0-based) is the first kept one; its |s| is the j-th
	// smallest |s|. Every entry below it is pruned, and of the entries equal to it the first
	// j - below in index order. (4 bytes of scratch per weight, not 8 for (|s|, index) keys.)
	threshold := selectKth(keys, j)
	below := 0
	for _, s := range scores {
		if absBits(s) < threshold {
			below++
		}
	}
	ties := j - below
	for i, s := range scores {
		b := absBits(s)
		switch {
		case b < threshold:
			m[i] = 0
		case b == threshold && ties > 0:
			m[i] = 0
			ties--
		default:
			m[i] = 1
		}
	}
	return j, nil
}

// selectKth returns the k-th smallest (0-based) of keys, reordering keys.
func selectKth(keys []uint32, k int) uint32 {
	lo, hi := 0, len(keys)-1
	for lo < hi {
		// Median of three as pivot.
		mid := lo + (hi-lo)/2
		a, b, c := keys[lo], keys[mid], keys[hi]
		pivot := b
		if (a < b) != (a < c) {
			pivot = a
		} else if (c < a) != (c < b) {
			pivot = c
		}
		// Hoare partition.
		i, j := lo, hi
		for i <= j {
			for keys[i] < pivot {
				i++
			}
			for keys[j] > pivot {
				j--
			}
			if i <= j {
				keys[i], keys[j] = keys[j], keys[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return keys[k]
		}
	}
	return keys[k]
}

// Init says how scores start.
type Init int

const (
	// KaimingUniform draws every score from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), what
	// kaiming_uniform_(a=sqrt(5)) gives in the official code: the initial mask is random.
	KaimingUniform Init = iota
	// Magnitude starts every score at |w|: the initial mask keeps the largest weights.
	Magnitude
)

// String returns the name used in options: "kaiming" or "magnitude".
func (i Init) String() string {
	switch i {
	case KaimingUniform:
		return "kaiming"
	case Magnitude:
		return "magnitude"
	}
	return fmt.Sprintf("Init(%d)", int(i))
}

// ParseInit parses "kaiming" or "magnitude".
func ParseInit(s string) (Init, error) {
	switch s {
	case "kaiming", "kaiming-uniform", "random":
		return KaimingUniform, nil
	case "magnitude", "abs":
		return Magnitude, nil
	}
	return 0, fmt.Errorf("mask: unknown score init %q (want kaiming or magnitude)", s)
}

// NewRand returns the generator scores are drawn from: PCG seeded with (seed, stream). Each
// layer takes its own stream (its index), so a layer's scores do not depend on the others.
func NewRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// KaimingUniformScores fills s with U(-b, b), b = 1/sqrt(fanIn), from r.
func KaimingUniformScores(r *rand.Rand, fanIn int, s []float32) error {
	if fanIn <= 0 {
		return fmt.Errorf("mask: fan-in %d must be positive", fanIn)
	}
	b := 1 / math.Sqrt(float64(fanIn))
	for i := range s {
		s[i] = float32((2*r.Float64() - 1) * b)
	}
	return nil
}

// MagnitudeScores sets s[i] = |w[i]|.
func MagnitudeScores(w, s []float32) {
	for i, v := range w {
		s[i] = float32(math.Abs(float64(v)))
	}
}

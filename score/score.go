// Package score turns a classifier's logits into out-of-distribution scores.
//
// Every score here follows one convention: higher means more in-distribution (ID). This is the
// convention of the Unleashing Mask and Energy-based OOD code, where ID samples are the positive
// class of every metric. A threshold therefore accepts a frame as ID when score >= threshold and
// flags it as OOD when score < threshold.
//
//   - Energy is the negative free energy, T*logsumexp(z/T). (The energy E(x) = -T*logsumexp(z/T)
//     of the Energy-based OOD paper is its negation; oodguard never reports E itself.)
//   - MSP is the maximum softmax probability, max_k softmax(z)_k, with one softmax. The
//     Unleashing Mask code applies softmax twice (a bug that is not monotone in MSP); this
//     package implements the plain definition.
//   - MaxLogit is max_k z_k.
//
// All scores are computed in float64 from float32 logits, stable for large logits. A NaN or
// infinite logit is an error, never a score.
package score

import (
	"errors"
	"fmt"
	"math"
)

// Kind names a score.
type Kind string

// The scores this package computes.
const (
	KindEnergy   Kind = "energy"
	KindMSP      Kind = "msp"
	KindMaxLogit Kind = "maxlogit"
)

// Kinds lists every score kind, in the order reports show them.
var Kinds = []Kind{KindEnergy, KindMSP, KindMaxLogit}

var (
	// ErrNonFinite is returned for logits that hold NaN or ±Inf.
	ErrNonFinite = errors.New("logits are not finite")
	// ErrEmpty is returned for an empty logit vector.
	ErrEmpty = errors.New("no logits")
)

// Func scores one logit vector.
type Func func(logits []float32) (float64, error)

// Spec selects a score and its parameters; it is what calibration files and bundles store.
type Spec struct {
	Kind        Kind    `json:"kind" yaml:"kind"`
	Temperature float64 `json:"temperature,omitempty" yaml:"temperature,omitempty"` // energy only; 0 means 1
}

// Validate reports whether s names a known score with valid parameters.
func (s Spec) Validate() error {
	switch s.Kind {
	case KindEnergy:
		if s.Temperature < 0 || math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0) {
			return fmt.Errorf("score: energy temperature %v must be a positive number", s.Temperature)
		}
		return nil
	case KindMSP, KindMaxLogit:
		if s.Temperature != 0 && s.Temperature != 1 {
			return fmt.Errorf("score: %s takes no temperature (got %v)", s.Kind, s.Temperature)
		}
		return nil
	case "":
		return errors.New("score: no score kind given (want energy, msp or maxlogit)")
	default:
		return fmt.Errorf("score: unknown score kind %q (want energy, msp or maxlogit)", s.Kind)
	}
}

// Func returns the scoring function that s selects.
func (s Spec) Func() (Func, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Kind {
	case KindEnergy:
		t := s.Temperature
		if t == 0 {
			t = 1
		}
		return func(z []float32) (float64, error) { return Energy(z, t) }, nil
	case KindMSP:
		return MSP, nil
	default:
		return MaxLogit, nil
	}
}

// String formats s as "energy(T=1)", "msp" or "maxlogit".
func (s Spec) String() string {
	if s.Kind == KindEnergy {
		t := s.Temperature
		if t == 0 {
			t = 1
		}
		return fmt.Sprintf("energy(T=%g)", t)
	}
	return string(s.Kind)
}

// maxFinite returns the largest logit, or an error when a logit is NaN or infinite.
func maxFinite(z []float32) (float64, error) {
	if len(z) == 0 {
		return 0, ErrEmpty
	}
	m := math.Inf(-1)
	for i, v := range z {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%w: logit %d is %v", ErrNonFinite, i, v)
		}
		if f > m {
			m = f
		}
	}
	return m, nil
}

// Energy returns T*logsumexp(z/T), the negative free energy; higher means more ID.
func Energy(z []float32, t float64) (float64, error) {
	if !(t > 0) || math.IsInf(t, 0) {
		return 0, fmt.Errorf("score: energy temperature %v must be a positive number", t)
	}
	m, err := maxFinite(z)
	if err != nil {
		return 0, err
	}
	var sum float64
	if t == 1 { // the common case, without a division per logit (x/1 is x exactly)
		for _, v := range z {
			sum += math.Exp(float64(v) - m)
		}
		return m + math.Log(sum), nil
	}
	for _, v := range z {
		sum += math.Exp((float64(v) - m) / t)
	}
	return m + t*math.Log(sum), nil
}

// MSP returns the maximum softmax probability, 1/sum_k exp(z_k - max z).
func MSP(z []float32) (float64, error) {
	m, err := maxFinite(z)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(float64(v) - m)
	}
	return 1 / sum, nil
}

// MaxLogit returns the largest logit.
func MaxLogit(z []float32) (float64, error) {
	return maxFinite(z)
}

// Batch scores a batch of logits laid out row by row (n rows of k classes) into dst, which must
// hold n values. It stops at the first row that cannot be scored and names that row.
func Batch(f Func, logits []float32, k int, dst []float64) error {
	if k <= 0 || len(logits)%k != 0 {
		return fmt.Errorf("score: %d logits do not split into rows of %d classes", len(logits), k)
	}
	n := len(logits) / k
	if len(dst) < n {
		return fmt.Errorf("score: destination holds %d scores, batch has %d rows", len(dst), n)
	}
	for i := 0; i < n; i++ {
		s, err := f(logits[i*k : (i+1)*k])
		if err != nil {
			return fmt.Errorf("score: row %d: %w", i, err)
		}
		dst[i] = s
	}
	return nil
}

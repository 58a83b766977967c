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
//   - GEN is the negated generalized entropy of the softmax (Liu et al., CVPR 2023, as OpenOOD's
//     GEN post-processor): -Σ p^γ (1-p)^γ over the M largest probabilities, γ = 0.1 and M = 100
//     (all classes when K < M) by default.
//   - Graph is a score that the model's graph computes itself, as a second output next to the
//     logits (a float32 [N] tensor, e.g. "ood_score" of a feature detector that detect wrote
//     into the graph: ViM, Mahalanobis, KNN). The Spec records the output's name and, as given,
//     the detector that wrote it; this package only reads the output's value.
//
// All scores are computed in float64 from float32 logits, stable for large logits. A NaN or
// infinite logit, or graph score, is an error, never a score.
package score

import (
	"bytes"
	"encoding/json"
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
	KindGEN      Kind = "gen"
	KindGraph    Kind = "graph" // read from a graph output (Spec.Output), not computed from the logits
)

// Kinds lists every score kind computed from the logits, in the order reports show them.
var Kinds = []Kind{KindEnergy, KindMSP, KindMaxLogit, KindGEN}

// GEN's defaults, OpenOOD's (configs/postprocessors/gen.yml).
const (
	DefaultGENGamma = 0.1
	DefaultGENTopM  = 100
)

// DefaultOutput is the graph output a graph score reads when Spec.Output is empty: the name
// detect gives the score output of the detectors it writes.
const DefaultOutput = "ood_score"

var (
	// ErrNonFinite is returned for logits that hold NaN or ±Inf.
	ErrNonFinite = errors.New("logits are not finite")
	// ErrEmpty is returned for an empty logit vector.
	ErrEmpty = errors.New("no logits")
)

// Func scores one logit vector.
type Func func(logits []float32) (float64, error)

// SampleFunc scores one sample from the model's outputs: its logits and out, the sample's value
// of the model's score output (read by a graph score only; 0 when the model has none).
type SampleFunc func(logits []float32, out float32) (float64, error)

// Spec selects a score and its parameters; it is what calibration files and bundles store.
//
// Name and Detector record, for any kind, the post-hoc detector written into the model's graph
// (a shaping method such as ReAct keeps the energy score of the shaped logits; a feature method
// such as ViM is a graph score): they are records for people and tools, and scoring never reads
// them. Compare Specs with Equal.
type Spec struct {
	Kind        Kind            `json:"kind" yaml:"kind"`
	Temperature float64         `json:"temperature,omitempty" yaml:"temperature,omitempty"` // energy only; 0 means 1
	Gamma       float64         `json:"gamma,omitempty" yaml:"gamma,omitempty"`             // gen only; 0 means DefaultGENGamma
	TopM        int             `json:"top_m,omitempty" yaml:"top_m,omitempty"`             // gen only: the M largest probabilities; 0 means DefaultGENTopM
	Output      string          `json:"output,omitempty" yaml:"output,omitempty"`           // graph only: the model output holding the score, [N] float32
	Name        string          `json:"name,omitempty" yaml:"name,omitempty"`               // the detector, e.g. "vim(dim=32)"
	Detector    json.RawMessage `json:"detector,omitempty" yaml:"-"`                        // its method and fitted parameters (detect.Spec JSON)
}

// Equal reports whether s and o are the same score with the same parameters and records; the
// Detector records compare as JSON values, whatever their layout.
func (s Spec) Equal(o Spec) bool {
	if !s.SameScore(o) || s.Name != o.Name {
		return false
	}
	return bytes.Equal(compact(s.Detector), compact(o.Detector))
}

// SameScore reports whether s and o compute the same score (kind, temperature, output),
// whatever detector they record.
func (s Spec) SameScore(o Spec) bool {
	return s.Kind == o.Kind && s.temperature() == o.temperature() && s.output() == o.output() &&
		s.gamma() == o.gamma() && s.topM() == o.topM()
}

func (s Spec) gamma() float64 {
	if s.Kind == KindGEN && s.Gamma == 0 {
		return DefaultGENGamma
	}
	return s.Gamma
}

func (s Spec) topM() int {
	if s.Kind == KindGEN && s.TopM == 0 {
		return DefaultGENTopM
	}
	return s.TopM
}

func compact(b json.RawMessage) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func (s Spec) temperature() float64 {
	if s.Kind == KindEnergy && s.Temperature == 0 {
		return 1
	}
	return s.Temperature
}

func (s Spec) output() string {
	if s.Kind == KindGraph && s.Output == "" {
		return DefaultOutput
	}
	return s.Output
}

// GraphOutput returns the model output that s reads, or "" for a score of the logits.
func (s Spec) GraphOutput() string {
	if s.Kind != KindGraph {
		return ""
	}
	return s.output()
}

// CheckModel reports whether a model whose score output is scoreOutput ("" when it has only
// its logits) gives what s reads.
func (s Spec) CheckModel(scoreOutput string) error {
	want := s.GraphOutput()
	switch {
	case want == "" || want == scoreOutput:
		return nil
	case scoreOutput == "":
		return fmt.Errorf("score: %s reads the graph output %q, and the model has only its logits (oodguard choose writes one into it)", s, want)
	default:
		return fmt.Errorf("score: %s reads the graph output %q, and the model's score output is %q", s, want, scoreOutput)
	}
}

// Validate reports whether s names a known score with valid parameters.
func (s Spec) Validate() error {
	if s.Kind != KindGraph && s.Output != "" {
		return fmt.Errorf("score: %s reads the logits and takes no graph output (got %q)", s.Kind, s.Output)
	}
	if s.Kind != KindGEN && (s.Gamma != 0 || s.TopM != 0) {
		return fmt.Errorf("score: %s takes no gamma or top_m (got %v, %d)", s.Kind, s.Gamma, s.TopM)
	}
	if len(s.Detector) > 0 && !json.Valid(s.Detector) {
		return fmt.Errorf("score: the detector record of %s is not JSON", s.Kind)
	}
	switch s.Kind {
	case KindGraph:
		if s.Temperature != 0 && s.Temperature != 1 {
			return fmt.Errorf("score: graph takes no temperature (got %v)", s.Temperature)
		}
		return nil
	case KindEnergy:
		if s.Temperature < 0 || math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0) {
			return fmt.Errorf("score: energy temperature %v must be a positive number", s.Temperature)
		}
		return nil
	case KindGEN:
		if s.Gamma < 0 || math.IsNaN(s.Gamma) || math.IsInf(s.Gamma, 0) || s.TopM < 0 {
			return fmt.Errorf("score: gen gamma %v must be a positive number and top_m %d at least 1", s.Gamma, s.TopM)
		}
		if s.Temperature != 0 && s.Temperature != 1 {
			return fmt.Errorf("score: gen takes no temperature (got %v)", s.Temperature)
		}
		return nil
	case KindMSP, KindMaxLogit:
		if s.Temperature != 0 && s.Temperature != 1 {
			return fmt.Errorf("score: %s takes no temperature (got %v)", s.Kind, s.Temperature)
		}
		return nil
	case "":
		return errors.New("score: no score kind given (want energy, msp, maxlogit, gen or graph)")
	default:
		return fmt.Errorf("score: unknown score kind %q (want energy, msp, maxlogit, gen or graph)", s.Kind)
	}
}

// Func returns the scoring function of the logits that s selects; a graph score has none (use
// SampleFunc).
func (s Spec) Func() (Func, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Kind {
	case KindGraph:
		return nil, fmt.Errorf("score: %s reads the graph output %q, not the logits", s, s.output())
	case KindEnergy:
		t := s.Temperature
		if t == 0 {
			t = 1
		}
		return func(z []float32) (float64, error) { return Energy(z, t) }, nil
	case KindMSP:
		return MSP, nil
	case KindGEN:
		g, m := s.gamma(), s.topM()
		return func(z []float32) (float64, error) { return GEN(z, g, m) }, nil
	default:
		return MaxLogit, nil
	}
}

// SampleFunc returns the scoring function that s selects over a model's outputs.
func (s Spec) SampleFunc() (SampleFunc, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Kind == KindGraph {
		return Graph, nil
	}
	f, err := s.Func()
	if err != nil {
		return nil, err
	}
	return func(z []float32, _ float32) (float64, error) { return f(z) }, nil
}

// Graph returns the graph's score out, or an error when it is NaN or infinite.
func Graph(_ []float32, out float32) (float64, error) {
	v := float64(out)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("the graph score is %v (%w)", out, ErrNonFinite)
	}
	return v, nil
}

// String formats s as "energy(T=1)", "msp", "maxlogit" or "graph(ood_score)", followed by
// the detector's name when one is recorded: "graph(ood_score) vim(dim=32)".
func (s Spec) String() string {
	str := s.kindString()
	if s.Name != "" {
		str += " " + s.Name
	}
	return str
}

func (s Spec) kindString() string {
	if s.Kind == KindGraph {
		return fmt.Sprintf("graph(%s)", s.output())
	}
	if s.Kind == KindGEN {
		return fmt.Sprintf("gen(gamma=%g,M=%d)", s.gamma(), s.topM())
	}
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

// GEN returns minus the generalized entropy Σ p^γ (1-p)^γ of the m largest softmax
// probabilities p of z (all of them when m >= len(z)); higher means more ID.
//
// It equals OpenOOD's GEN post-processor (sorted softmax, the last M columns, so an M of K or
// more takes all K) within 1.4e-7 on the PyTorch references of testdata/detect/logits.ref.json,
// M below, equal to and above K. One difference of form: OpenOOD's slice [-0:] makes M = 0 mean
// all classes; here m must be at least 1 (a Spec's TopM of 0 means DefaultGENTopM).
func GEN(z []float32, gamma float64, m int) (float64, error) {
	if !(gamma > 0) || math.IsInf(gamma, 0) || m < 1 {
		return 0, fmt.Errorf("score: gen gamma %v must be positive and M %d at least 1", gamma, m)
	}
	mx, err := maxFinite(z)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(float64(v) - mx)
	}
	var g float64
	if m >= len(z) {
		for _, v := range z {
			p := math.Exp(float64(v)-mx) / sum
			g += math.Pow(p, gamma) * math.Pow(1-p, gamma)
		}
		return -g, nil
	}
	// The m largest, walked down in (value, index) order without a copy (no allocation, so
	// that the daemon's frame loop stays allocation-free): O(m·K), for the rare head with
	// more than m classes.
	prevV, prevI := math.Inf(1), -1
	for range m {
		bi := -1
		for i, v := range z {
			f := float64(v)
			if f > prevV || (f == prevV && i <= prevI) {
				continue // already taken
			}
			if bi < 0 || f > float64(z[bi]) {
				bi = i
			}
		}
		prevV, prevI = float64(z[bi]), bi
		p := math.Exp(prevV-mx) / sum
		g += math.Pow(p, gamma) * math.Pow(1-p, gamma)
	}
	return -g, nil
}

// MaxLogit returns the largest logit.
func MaxLogit(z []float32) (float64, error) {
	return maxFinite(z)
}

// Argmax returns the index of the largest value of z: the predicted class of a logit row. On
// ties it is the first. A NaN is neither larger nor smaller than anything: one first in z gives
// 0, one elsewhere never wins. An empty z gives 0.
func Argmax[T float32 | float64](z []T) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
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

package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Detector is a fitted post-hoc detector.
type Detector interface {
	// Name names the method and its parameters, e.g. "react(p=90)".
	Name() string
	// Shaping reports whether the detector changes the logits (ReAct, ASH, DICE) rather than
	// adding the output ScoreOutput.
	Shaping() bool
	// Score computes, in float64, the detector's score of n feature vectors (feats is n×D):
	// higher = more in-distribution. For a shaping detector it is the energy (logsumexp at
	// T = 1) of the shaped logits.
	Score(feats []float32, n int) ([]float64, error)
	// Spec records the method and its fitted parameters.
	Spec() Spec
	headOf() *Head
	write(e *editor) error
}

// Spec records a detector for a calibration file or a bundle manifest: the method, the graph
// output its score comes from, and its parameters.
type Spec struct {
	Method string  `json:"method"`          // react, ash-p, ash-b, ash-s, dice, vim, mds, knn, chain
	Output string  `json:"output"`          // the graph output the score is computed from
	P      float64 `json:"p,omitempty"`     // percentile (ReAct, ASH, DICE)
	Clip   float64 `json:"clip,omitempty"`  // ReAct's clip value
	Kept   int     `json:"kept,omitempty"`  // ASH: features kept per sample; DICE: weights kept
	Dim    int     `json:"dim,omitempty"`   // ViM's principal subspace dimension
	Alpha  float64 `json:"alpha,omitempty"` // ViM's alpha
	Rank   int     `json:"rank,omitempty"`  // Mahalanobis: rank of the precision matrix
	K      int     `json:"k,omitempty"`     // KNN's neighbour
	Bank   int     `json:"bank,omitempty"`  // KNN's bank size
	Steps  []Spec  `json:"steps,omitempty"` // a chain's steps, in order
}

var (
	_ Detector = (*ReAct)(nil)
	_ Detector = (*ASH)(nil)
	_ Detector = (*DICE)(nil)
	_ Detector = (*ViM)(nil)
	_ Detector = (*Mahalanobis)(nil)
	_ Detector = (*KNN)(nil)
)

func checkFeats(h *Head, feats []float32, n int) error {
	if n < 0 || len(feats) != n*h.Dim {
		return fmt.Errorf("detect: %d values for %d feature vectors of %d", len(feats), n, h.Dim)
	}
	return nil
}

// logsumexp of z.
func logsumexp(z []float64) float64 {
	m := slices.Max(z)
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// Shaper is a detector that changes the logits: ReAct, ASH, DICE and chains of them.
type Shaper interface {
	Detector
	// Logits computes, in float64, the shaped logits of n feature vectors (n×K): any logit
	// score (energy, MSP, MaxLogit, GEN) applies to them.
	Logits(feats []float32, n int) ([]float64, error)
	shapeFeatures(x []float64, n int) // in place
	shapeWeight(w []float64) []float64
}

var (
	_ Shaper = (*ReAct)(nil)
	_ Shaper = (*ASH)(nil)
	_ Shaper = (*DICE)(nil)
	_ Shaper = (*Chain)(nil)
)

// shapedLogits applies s to the features and the final layer.
func shapedLogits(s Shaper, feats []float32, n int) ([]float64, error) {
	h := s.headOf()
	if err := checkFeats(h, feats, n); err != nil {
		return nil, err
	}
	x := toF64(feats)
	s.shapeFeatures(x, n)
	w := s.shapeWeight(h.W)
	out := make([]float64, n*h.Classes)
	for i := 0; i < n; i++ {
		row := x[i*h.Dim : (i+1)*h.Dim]
		for k := 0; k < h.Classes; k++ {
			sum := h.B[k]
			wk := w[k*h.Dim : (k+1)*h.Dim]
			for j, v := range row {
				sum += wk[j] * v
			}
			out[i*h.Classes+k] = sum
		}
	}
	return out, nil
}

// shapedEnergy returns the energy (logsumexp, T = 1) of the shaped logits.
func shapedEnergy(s Shaper, feats []float32, n int) ([]float64, error) {
	z, err := shapedLogits(s, feats, n)
	if err != nil {
		return nil, err
	}
	K := s.headOf().Classes
	out := make([]float64, n)
	for i := range out {
		out[i] = logsumexp(z[i*K : (i+1)*K])
	}
	return out, nil
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// ReAct clips the penultimate features at Clip before the final layer (Sun et al., NeurIPS 2021).
type ReAct struct {
	P    float64 // percentile of the ID activations the clip was taken at
	Clip float64
	head *Head
}

// ReAct returns ReAct with the clip at the p-th percentile of the ID activations.
func (f *Fitted) ReAct(p float64) (*ReAct, error) {
	if !(p >= 0 && p <= 100) {
		return nil, fmt.Errorf("detect: ReAct percentile %v outside [0, 100]", p)
	}
	return &ReAct{P: p, Clip: f.percentile(p), head: f.head}, nil
}

func (r *ReAct) Name() string  { return fmt.Sprintf("react(p=%g)", r.P) }
func (r *ReAct) Shaping() bool { return true }
func (r *ReAct) Spec() Spec {
	return Spec{Method: "react", Output: r.head.Logits, P: r.P, Clip: r.Clip}
}

func (r *ReAct) Score(feats []float32, n int) ([]float64, error)  { return shapedEnergy(r, feats, n) }
func (r *ReAct) Logits(feats []float32, n int) ([]float64, error) { return shapedLogits(r, feats, n) }

func (r *ReAct) shapeFeatures(x []float64, _ int) {
	for i, v := range x {
		x[i] = math.Min(v, r.Clip)
	}
}

func (r *ReAct) shapeWeight(w []float64) []float64 { return w }
func (r *ReAct) headOf() *Head                     { return r.head }

func (r *ReAct) write(e *editor) error {
	c := e.initF64("react_clip", nil, []float64{r.Clip})
	e.setFeatures(e.op(true, "Clip", []string{e.feat, "", c}))
	return nil
}

// ASHVariant is how ASH treats the features it keeps.
type ASHVariant byte

// The ASH variants (Djurisic et al., ICLR 2023).
const (
	ASHP ASHVariant = 'p' // keep their values
	ASHB ASHVariant = 'b' // set each to the sample's feature sum / k
	ASHS ASHVariant = 's' // keep and scale by exp(sum before / sum after)
)

// ASH keeps, per sample, the K largest features (K = D - round(D·P/100)) and zeroes the rest.
// Among equal values the lower index is kept first, as ONNX TopK does.
type ASH struct {
	Variant ASHVariant
	P       float64
	K       int
	head    *Head
}

// NewASH returns ASH of the variant at percentile p for the model's head. It needs no fitting.
func NewASH(h *Head, v ASHVariant, p float64) (*ASH, error) {
	if v != ASHP && v != ASHB && v != ASHS {
		return nil, fmt.Errorf("detect: unknown ASH variant %q (want p, b or s)", string(v))
	}
	if !(p >= 0 && p <= 100) {
		return nil, fmt.Errorf("detect: ASH percentile %v outside [0, 100]", p)
	}
	k := h.Dim - int(math.RoundToEven(float64(h.Dim)*p/100)) // numpy.round is half-to-even
	if k < 1 {
		return nil, fmt.Errorf("detect: ASH at p=%g keeps no feature of %d", p, h.Dim)
	}
	return &ASH{Variant: v, P: p, K: k, head: h}, nil
}

func (a *ASH) Name() string  { return fmt.Sprintf("ash-%c(p=%g)", a.Variant, a.P) }
func (a *ASH) Shaping() bool { return true }
func (a *ASH) Spec() Spec {
	return Spec{Method: "ash-" + string(a.Variant), Output: a.head.Logits, P: a.P, Kept: a.K}
}

func (a *ASH) Score(feats []float32, n int) ([]float64, error)  { return shapedEnergy(a, feats, n) }
func (a *ASH) Logits(feats []float32, n int) ([]float64, error) { return shapedLogits(a, feats, n) }
func (a *ASH) shapeWeight(w []float64) []float64                { return w }
func (a *ASH) headOf() *Head                                    { return a.head }

func (a *ASH) shapeFeatures(x []float64, n int) {
	D := a.head.Dim
	idx := make([]int, D)
	kept := make([]float64, D)
	for i := 0; i < n; i++ {
		row := x[i*D : (i+1)*D]
		s1 := 0.0
		for j := range idx {
			idx[j] = j
			s1 += row[j]
		}
		sort.SliceStable(idx, func(p, q int) bool { return row[idx[p]] > row[idx[q]] })
		clear(kept)
		s2 := 0.0
		for _, j := range idx[:a.K] {
			kept[j] = row[j]
			s2 += row[j]
		}
		switch a.Variant {
		case ASHB:
			for _, j := range idx[:a.K] {
				kept[j] = s1 / float64(a.K)
			}
		case ASHS:
			scale := math.Exp(s1 / s2)
			for _, j := range idx[:a.K] {
				kept[j] *= scale
			}
		}
		copy(row, kept)
	}
}

func (a *ASH) write(e *editor) error {
	x := e.feat
	v, idx := e.topKIdx(true, x, int64(a.K), true)
	zeros := e.op(true, "ConstantOfShape", []string{e.op(true, "Shape", []string{x})})
	var out string
	switch a.Variant {
	case ASHP:
		out = e.op(true, "ScatterElements", []string{zeros, idx, v}, aInt("axis", 1))
	case ASHB:
		fill := e.op(true, "Div", []string{e.reduceSum(true, x, 1), e.initF64("ash_k", nil, []float64{float64(a.K)})})
		upd := e.op(true, "Expand", []string{fill, e.op(true, "Shape", []string{idx})})
		out = e.op(true, "ScatterElements", []string{zeros, idx, upd}, aInt("axis", 1))
	case ASHS:
		pruned := e.op(true, "ScatterElements", []string{zeros, idx, v}, aInt("axis", 1))
		scale := e.op(true, "Exp", []string{e.op(true, "Div", []string{e.reduceSum(true, x, 1), e.reduceSum(true, v, 1)})})
		out = e.op(true, "Mul", []string{pruned, scale})
	}
	e.setFeatures(out)
	return nil
}

// DICE keeps the final weights whose contribution to the mean ID logits, w · mean feature, is
// above its P-th percentile and zeroes the others (Sun and Li, ECCV 2022).
type DICE struct {
	P    float64
	Mask []bool    // K×D, true where the weight is kept
	W    []float64 // K×D, the masked weight (alpha folded in)
	head *Head
}

// DICE returns DICE at sparsity percentile p.
func (f *Fitted) DICE(p float64) (*DICE, error) {
	if !(p >= 0 && p <= 100) {
		return nil, fmt.Errorf("detect: DICE percentile %v outside [0, 100]", p)
	}
	h := f.head
	contrib := make([]float64, len(h.W))
	for k := 0; k < h.Classes; k++ {
		for j := 0; j < h.Dim; j++ {
			contrib[k*h.Dim+j] = f.Mean[j] * h.W[k*h.Dim+j]
		}
	}
	sorted := slices.Clone(contrib)
	slices.Sort(sorted)
	thresh := percentileSorted(sorted, p)
	d := &DICE{P: p, Mask: make([]bool, len(contrib)), W: make([]float64, len(contrib)), head: h}
	for i, c := range contrib {
		if c > thresh {
			d.Mask[i] = true
			d.W[i] = h.W[i]
		}
	}
	return d, nil
}

// Kept returns how many weights the mask keeps.
func (d *DICE) Kept() int {
	n := 0
	for _, m := range d.Mask {
		if m {
			n++
		}
	}
	return n
}

func (d *DICE) Name() string  { return fmt.Sprintf("dice(p=%g)", d.P) }
func (d *DICE) Shaping() bool { return true }
func (d *DICE) Spec() Spec {
	return Spec{Method: "dice", Output: d.head.Logits, P: d.P, Kept: d.Kept()}
}

func (d *DICE) Score(feats []float32, n int) ([]float64, error)  { return shapedEnergy(d, feats, n) }
func (d *DICE) Logits(feats []float32, n int) ([]float64, error) { return shapedLogits(d, feats, n) }
func (d *DICE) shapeFeatures([]float64, int)                     {}
func (d *DICE) shapeWeight([]float64) []float64                  { return d.W }
func (d *DICE) headOf() *Head                                    { return d.head }

func (d *DICE) write(e *editor) error {
	h := e.m.Head
	t, ok := initializer(e.g, h.weight)
	if !ok {
		return fmt.Errorf("%w: the weight %q is not an initializer", ErrUnsupported, h.weight)
	}
	w, err := floats(t)
	if err != nil {
		return fmt.Errorf("%w: weight %q: %v", ErrUnsupported, h.weight, err)
	}
	for k := 0; k < h.Classes; k++ {
		for j := 0; j < h.Dim; j++ {
			if !d.Mask[k*h.Dim+j] {
				if h.weightKxD {
					w[k*h.Dim+j] = 0
				} else {
					w[j*h.Classes+k] = 0
				}
			}
		}
	}
	e.head.Input[1] = e.initF32("dice_weight", slices.Clone(t.GetDims()), w)
	return nil
}

// ViM scores energy minus Alpha times the norm of the features' residual (f - U)·NS outside the
// principal subspace of dimension Dim (Wang et al., CVPR 2022).
type ViM struct {
	Dim   int
	U     []float64 // D
	NS    []float64 // D×(D-Dim), row-major
	Alpha float64
	head  *Head
}

// ViM returns ViM with a principal subspace of dimension dim (0 ≤ dim < D).
func (f *Fitted) ViM(dim int) (*ViM, error) {
	D := f.Dim
	if dim < 0 || dim >= D {
		return nil, fmt.Errorf("detect: ViM subspace dimension %d outside 0..%d", dim, D-1)
	}
	if f.ResidualMean[dim] == 0 {
		return nil, fmt.Errorf("detect: ViM at dimension %d: the ID features have no residual outside the principal subspace", dim)
	}
	r := D - dim
	v := &ViM{Dim: dim, U: f.U, NS: make([]float64, D*r), Alpha: f.MaxLogitMean / f.ResidualMean[dim], head: f.head}
	for j := 0; j < D; j++ {
		for c := 0; c < r; c++ {
			v.NS[j*r+c] = f.EigVecs[j*D+dim+c]
		}
	}
	return v, nil
}

func (v *ViM) Name() string  { return fmt.Sprintf("vim(dim=%d)", v.Dim) }
func (v *ViM) Shaping() bool { return false }
func (v *ViM) headOf() *Head { return v.head }
func (v *ViM) Spec() Spec {
	return Spec{Method: "vim", Output: ScoreOutput, Dim: v.Dim, Alpha: v.Alpha}
}

func (v *ViM) Score(feats []float32, n int) ([]float64, error) {
	h := v.head
	if err := checkFeats(h, feats, n); err != nil {
		return nil, err
	}
	D, r := h.Dim, h.Dim-v.Dim
	logits := h.LogitsOf(feats, n)
	out := make([]float64, n)
	g := make([]float64, D)
	for i := 0; i < n; i++ {
		for j := 0; j < D; j++ {
			g[j] = float64(feats[i*D+j]) - v.U[j]
		}
		ss := 0.0
		for c := 0; c < r; c++ {
			s := 0.0
			for j := 0; j < D; j++ {
				s += g[j] * v.NS[j*r+c]
			}
			ss += s * s
		}
		out[i] = logsumexp(logits[i*h.Classes:(i+1)*h.Classes]) - v.Alpha*math.Sqrt(ss)
	}
	return out, nil
}

func (v *ViM) write(e *editor) error {
	D, r := int64(v.head.Dim), int64(v.head.Dim-v.Dim)
	x := e.m.Head.Features
	res := e.op(false, "MatMul", []string{e.op(false, "Sub", []string{x, e.initF64("vim_u", []int64{D}, v.U)}), e.initF64("vim_ns", []int64{D, r}, v.NS)})
	norm := e.op(false, "Sqrt", []string{e.reduceSum(false, e.op(false, "Mul", []string{res, res}), 1)})
	vlogit := e.op(false, "Mul", []string{norm, e.initF64("vim_alpha", nil, []float64{v.Alpha})})
	return e.scoreOutput(e.op(false, "Sub", []string{e.energy(e.m.Head.Logits), vlogit}))
}

// Mahalanobis scores minus the smallest Mahalanobis distance (squared, as OpenOOD's MDS) from
// the features to the class means, with the shared precision matrix (Lee et al., NeurIPS 2018).
// The precision P = L·Lᵀ is kept factored, so that each distance is |(f - μ)·L|², a sum of
// squares.
type Mahalanobis struct {
	Means []float64 // K×D
	L     []float64 // D×R, R the rank kept by the pseudo-inverse
	R     int
	head  *Head
}

// Mahalanobis returns the Mahalanobis detector with the class means and the pseudo-inverse of
// the shared covariance (scipy's pinvh cutoff). Every class needs ID samples.
func (f *Fitted) Mahalanobis() (*Mahalanobis, error) {
	for c, n := range f.ClassCounts {
		if n == 0 {
			return nil, fmt.Errorf("detect: Mahalanobis: class %d has no ID samples", c)
		}
	}
	D := f.Dim
	vals, vecs, err := eigSym(f.Within, D)
	if err != nil {
		return nil, fmt.Errorf("detect: Mahalanobis: %w", err)
	}
	cut := pinvCutoff(vals)
	var keep []int
	for c, l := range vals {
		if math.Abs(l) > cut {
			if l < 0 {
				return nil, fmt.Errorf("detect: Mahalanobis: the covariance has a negative eigenvalue %g", l)
			}
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		return nil, errors.New("detect: Mahalanobis: the class-centred ID features have no variance")
	}
	m := &Mahalanobis{Means: f.ClassMeans, R: len(keep), L: make([]float64, D*len(keep)), head: f.head}
	for i, c := range keep {
		s := 1 / math.Sqrt(vals[c])
		for j := 0; j < D; j++ {
			m.L[j*m.R+i] = vecs[j*D+c] * s
		}
	}
	return m, nil
}

func (m *Mahalanobis) Name() string  { return "mds" }
func (m *Mahalanobis) Shaping() bool { return false }
func (m *Mahalanobis) headOf() *Head { return m.head }
func (m *Mahalanobis) Spec() Spec    { return Spec{Method: "mds", Output: ScoreOutput, Rank: m.R} }

// projectedMeans returns μ·L, K×R.
func (m *Mahalanobis) projectedMeans() []float64 {
	D, K, R := m.head.Dim, m.head.Classes, m.R
	out := make([]float64, K*R)
	for k := 0; k < K; k++ {
		for c := 0; c < R; c++ {
			s := 0.0
			for j := 0; j < D; j++ {
				s += m.Means[k*D+j] * m.L[j*R+c]
			}
			out[k*R+c] = s
		}
	}
	return out
}

func (m *Mahalanobis) Score(feats []float32, n int) ([]float64, error) {
	h := m.head
	if err := checkFeats(h, feats, n); err != nil {
		return nil, err
	}
	D, K, R := h.Dim, h.Classes, m.R
	out := make([]float64, n)
	d := make([]float64, D)
	for i := 0; i < n; i++ {
		best := math.Inf(1)
		for k := 0; k < K; k++ {
			for j := 0; j < D; j++ {
				d[j] = float64(feats[i*D+j]) - m.Means[k*D+j]
			}
			dist := 0.0
			for c := 0; c < R; c++ {
				s := 0.0
				for j := 0; j < D; j++ {
					s += d[j] * m.L[j*R+c]
				}
				dist += s * s
			}
			best = math.Min(best, dist)
		}
		out[i] = -best
	}
	return out, nil
}

func (m *Mahalanobis) write(e *editor) error {
	D, K, R := int64(m.head.Dim), int64(m.head.Classes), int64(m.R)
	g := e.op(false, "MatMul", []string{e.m.Head.Features, e.initF64("mds_l", []int64{D, R}, m.L)})
	g3 := e.op(false, "Unsqueeze", []string{g, e.initI64("axes", []int64{1}, 1)})                       // [N,1,R]
	diff := e.op(false, "Sub", []string{g3, e.initF64("mds_means", []int64{K, R}, m.projectedMeans())}) // [N,K,R]
	dist := e.op(false, "ReduceSum", []string{e.op(false, "Mul", []string{diff, diff}), e.initI64("axes", []int64{1}, 2)}, aInt("keepdims", 0))
	return e.scoreOutput(e.topK(false, e.op(false, "Neg", []string{dist}), 1, true))
}

// KNN scores minus the squared distance from the L2-normalised features to their K-th nearest
// neighbour in a bank of L2-normalised ID features (Sun et al., ICML 2022; OpenOOD uses faiss'
// IndexFlatL2, whose distances are squared).
type KNN struct {
	K    int
	Bank []float32 // M×D
	head *Head
}

// KNN returns KNN with the k-th neighbour in the fitted bank.
func (f *Fitted) KNN(k int) (*KNN, error) {
	if k < 1 || k > f.BankLen() {
		return nil, fmt.Errorf("detect: KNN k=%d outside 1..%d (the bank size)", k, f.BankLen())
	}
	return &KNN{K: k, Bank: f.Bank, head: f.head}, nil
}

func (k *KNN) Name() string  { return fmt.Sprintf("knn(k=%d)", k.K) }
func (k *KNN) Shaping() bool { return false }
func (k *KNN) headOf() *Head { return k.head }
func (k *KNN) Spec() Spec {
	return Spec{Method: "knn", Output: ScoreOutput, K: k.K, Bank: len(k.Bank) / k.head.Dim}
}

func (k *KNN) Score(feats []float32, n int) ([]float64, error) {
	s, err := ScoreKNNs([]*KNN{k}, feats, n)
	if err != nil {
		return nil, err
	}
	return s[0], nil
}

// BankKey says which bank a KNN detector searches: the same Bank slice (its first element and
// length) of features from the same head. Detectors with equal keys, as Fitted.KNN gives them
// for every k, can be scored together by ScoreKNNs.
type BankKey struct {
	head  *Head
	first *float32 // nil for an empty bank
	n     int
}

// BankKey returns k's BankKey.
func (k *KNN) BankKey() BankKey {
	b := BankKey{head: k.head, n: len(k.Bank)}
	if len(k.Bank) > 0 {
		b.first = &k.Bank[0]
	}
	return b
}

// ScoreKNNs scores n feature vectors with several KNN detectors of one bank (the same BankKey,
// as Fitted.KNN gives them), computing each vector's distances to the bank once: s[i] is
// ks[i].Score, the same numbers, at about 1/len(ks) of the cost.
func ScoreKNNs(ks []*KNN, feats []float32, n int) ([][]float64, error) {
	if len(ks) == 0 {
		return nil, nil
	}
	k0 := ks[0]
	h := k0.head
	for _, k := range ks[1:] {
		if k.BankKey() != k0.BankKey() {
			return nil, fmt.Errorf("detect: KNN k=%d and k=%d have different banks", k0.K, k.K)
		}
	}
	if err := checkFeats(h, feats, n); err != nil {
		return nil, err
	}
	D := h.Dim
	M := len(k0.Bank) / D
	out := make([][]float64, len(ks))
	for i := range out {
		out[i] = make([]float64, n)
	}
	q := make([]float64, D)
	dist := make([]float64, M)
	for i := 0; i < n; i++ {
		x := feats[i*D : (i+1)*D]
		inv := invNorm(x)
		for j, v := range x {
			q[j] = float64(v)*inv + 1e-10
		}
		for b := 0; b < M; b++ {
			row := k0.Bank[b*D : (b+1)*D]
			d := 0.0
			for j := range q {
				t := q[j] - float64(row[j])
				d += t * t
			}
			dist[b] = d
		}
		// kthSmallest reorders dist but keeps its values, so each k sees the same distances.
		for s, k := range ks {
			out[s][i] = -kthSmallest(dist, k.K)
		}
	}
	return out, nil
}

// write computes |q|² + |b|² - 2 q·b for q = f/max(|f|, 1e-12): the normalised vectors keep the
// sum small, so float32 loses nothing against the direct difference.
func (k *KNN) write(e *editor) error {
	D := int64(k.head.Dim)
	M := int64(len(k.Bank)) / D
	bt := make([]float32, len(k.Bank)) // Dx M
	bn := make([]float64, M)
	for b := int64(0); b < M; b++ {
		for j := int64(0); j < D; j++ {
			v := k.Bank[b*D+j]
			bt[j*M+b] = v
			bn[b] += float64(v) * float64(v)
		}
	}
	x := e.m.Head.Features
	norm := e.op(false, "Sqrt", []string{e.reduceSum(false, e.op(false, "Mul", []string{x, x}), 1)})
	q := e.op(false, "Div", []string{x, e.op(false, "Max", []string{norm, e.initF64("knn_eps", nil, []float64{1e-12})})})
	qn := e.reduceSum(false, e.op(false, "Mul", []string{q, q}), 1)
	dot := e.op(false, "MatMul", []string{q, e.initF32("knn_bank_t", []int64{D, M}, bt)})
	twoDot := e.op(false, "Mul", []string{dot, e.initF64("knn_two", nil, []float64{2})})
	d2 := e.op(false, "Sub", []string{e.op(false, "Add", []string{qn, e.initF64("knn_bank_norm2", []int64{M}, bn)}), twoDot})
	v := e.topK(false, d2, int64(k.K), false)
	kth := e.op(false, "Gather", []string{v, e.initI64("knn_kth", []int64{1}, int64(k.K-1))}, aInt("axis", 1)) // [N,1]
	return e.scoreOutput(e.op(false, "Neg", []string{kth}))
}

// kthSmallest returns the k-th smallest value of a (k from 1), reordering a: a quickselect. For a
// bank of 10,000 distances it took 9 µs where slices.Sort took 1.7 ms (2-core VM, under load),
// which left the distances themselves as KNN's cost.
func kthSmallest(a []float64, k int) float64 {
	lo, hi, t := 0, len(a)-1, k-1
	for lo < hi {
		// Median of three as the pivot, then Hoare's partition.
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case t <= j:
			hi = j
		case t >= i:
			lo = i
		default:
			return a[t]
		}
	}
	return a[t]
}

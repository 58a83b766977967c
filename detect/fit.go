package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// chunk is how many vectors Fit processes at once: its buffers hold chunk×D values, and the
// scatter matrix and the eigenvectors are walked once per chunk rather than once per vector.
const chunk = 128

// dot returns Σ a[i]·b[i] over len(a) values, with four partial sums.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Defaults of FitOptions.
const (
	DefaultActivationSample = 1 << 20 // activations kept for ReAct's percentile (4 MiB)
	DefaultBankSize         = 10000   // KNN bank size
)

// FitOptions tune Fit.
type FitOptions struct {
	// ActivationSample is how many ID activations (single feature values) a seeded reservoir
	// keeps for ReAct's percentile; 0 means DefaultActivationSample. While the ID data has at
	// most this many activations (images × D) the percentile is exact; beyond, it is the
	// percentile of a uniform sample of this size, whose rank error has a standard deviation of
	// sqrt(p(1-p)/size) (0.03 percentile points at p = 90 and the default size). Fitted reports
	// the exact fraction of all ID activations at or below the clip of each ReActPercentiles.
	ActivationSample int
	// ReActPercentiles are the percentiles whose achieved rank the second pass measures.
	ReActPercentiles []float64
	// BankSize bounds the KNN bank: a seeded uniform sample of at most this many ID feature
	// vectors; 0 means DefaultBankSize.
	BankSize int
	// Seed seeds both reservoirs.
	Seed uint64
}

// Pass streams the ID data: it calls yield for each batch of n feature vectors (feats is n×D
// row-major) with their class labels (n values, or nil to label each vector with the head's
// predicted class), and returns yield's first error. Fit calls it twice; both passes must give
// the same data.
type Pass func(yield func(feats []float32, labels []int) error) error

// Fitted holds the statistics of the ID features that the detectors need. Its memory does not
// depend on the number of images: O(D² + K·D + ActivationSample + BankSize·D).
type Fitted struct {
	Dim, Classes int
	Count        int64 // feature vectors seen

	// Activations is a sorted uniform sample of the ID activations (all of them when they fit).
	Activations     []float32
	ActivationCount int64     // activations seen, Count·Dim
	ReActCheck      []RankFit // from the second pass, one per FitOptions.ReActPercentiles

	Mean        []float64 // mean feature (DICE)
	ClassCounts []int64   // vectors per class
	ClassMeans  []float64 // K×D (Mahalanobis)
	Within      []float64 // D×D covariance of the class-centred features, divided by Count

	U            []float64 // ViM's origin -pinv(W)·b
	CovU         []float64 // D×D: Σ (f-u)(f-u)ᵀ / Count
	EigVals      []float64 // CovU's eigenvalues, descending
	EigVecs      []float64 // D×D, column i the eigenvector of EigVals[i]
	MaxLogitMean float64   // mean over the ID data of the largest logit
	ResidualMean []float64 // [dim]: mean norm of (f-u) outside the first dim eigenvectors

	Bank []float32 // BankLen×D L2-normalised ID features (OpenOOD's x/|x| + 1e-10)

	head *Head
}

// RankFit says where ReAct's clip for percentile P falls among all ID activations.
type RankFit struct {
	P        float64 // requested percentile
	Clip     float64 // clip value from the sample
	Achieved float64 // percentage of all ID activations at or below Clip
}

// BankLen returns the number of feature vectors in the KNN bank.
func (f *Fitted) BankLen() int { return len(f.Bank) / f.Dim }

// Fit streams the ID features twice and fits every detector's statistics: the first pass
// accumulates sums (float64, shifted by the first vector to limit cancellation), class sums, the
// scatter matrix and both reservoirs; the second measures ViM's residual norms (for every
// subspace dimension at once) and the rank of ReAct's clip values.
func Fit(h *Head, pass Pass, opts FitOptions) (*Fitted, error) {
	if h == nil || h.Dim < 1 || h.Classes < 2 {
		return nil, errors.New("detect: fit: no head")
	}
	if opts.ActivationSample < 0 || opts.BankSize < 0 {
		return nil, fmt.Errorf("detect: fit: negative sample size (activations %d, bank %d)", opts.ActivationSample, opts.BankSize)
	}
	if opts.ActivationSample == 0 {
		opts.ActivationSample = DefaultActivationSample
	}
	if opts.BankSize == 0 {
		opts.BankSize = DefaultBankSize
	}
	for _, p := range opts.ReActPercentiles {
		if !(p >= 0 && p <= 100) {
			return nil, fmt.Errorf("detect: fit: ReAct percentile %v outside [0, 100]", p)
		}
	}
	D, K := h.Dim, h.Classes
	f := &Fitted{Dim: D, Classes: K, head: h, ClassCounts: make([]int64, K)}
	var (
		shift    []float64
		sum      = make([]float64, D)
		csum     = make([]float64, K*D)
		scatter  = make([]float64, D*D) // upper triangle of Σ (f-s)(f-s)ᵀ
		maxLogit float64
		x64      = make([]float64, chunk*D) // a chunk of vectors, row-major
		gt       = make([]float64, D*chunk) // the chunk minus the shift, transposed
		logits   = make([]float64, chunk*K)
		acts     = make([]float32, 0, min(opts.ActivationSample, 1<<16))
		actS     = newSampler(opts.ActivationSample, opts.Seed)
		bankS    = newSampler(opts.BankSize, opts.Seed+1)
		bank     []float32
	)
	err := pass(func(feats []float32, labels []int) error {
		if len(feats)%D != 0 {
			return fmt.Errorf("a batch of %d values is not a whole number of %d-feature vectors", len(feats), D)
		}
		n := len(feats) / D
		if labels != nil && len(labels) != n {
			return fmt.Errorf("%d labels for %d feature vectors", len(labels), n)
		}
		for c0 := 0; c0 < n; c0 += chunk {
			m := min(chunk, n-c0)
			xs := feats[c0*D : (c0+m)*D]
			if shift == nil {
				shift = make([]float64, D)
				for j, v := range xs[:D] {
					shift[j] = float64(v)
				}
			}
			for i := 0; i < m; i++ {
				for j, v := range xs[i*D : (i+1)*D] {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						return fmt.Errorf("feature vector %d has a non-finite value", f.Count+int64(i))
					}
					x64[i*D+j] = float64(v)
					g := float64(v) - shift[j]
					gt[j*chunk+i] = g
					sum[j] += g
				}
			}
			// Logits, one weight row against the whole chunk.
			for k := 0; k < K; k++ {
				w := h.W[k*D : (k+1)*D]
				for i := 0; i < m; i++ {
					logits[i*K+k] = h.B[k] + dot(w, x64[i*D:(i+1)*D])
				}
			}
			// Scatter: Σ over the chunk of g_j·g_l, as dot products of the transposed rows.
			for j := 0; j < D; j++ {
				gj := gt[j*chunk : j*chunk+m]
				row := scatter[j*D : (j+1)*D]
				for l := j; l < D; l++ {
					row[l] += dot(gj, gt[l*chunk:l*chunk+m])
				}
			}
			for i := 0; i < m; i++ {
				x := xs[i*D : (i+1)*D]
				z := logits[i*K : (i+1)*K]
				best := 0
				for k := range z {
					if z[k] > z[best] {
						best = k
					}
				}
				maxLogit += z[best]
				c := best
				if labels != nil {
					c = labels[c0+i]
					if c < 0 || c >= K {
						return fmt.Errorf("label %d of feature vector %d is outside 0..%d", c, f.Count, K-1)
					}
				}
				f.ClassCounts[c]++
				cs := csum[c*D : (c+1)*D]
				for j := range cs {
					cs[j] += gt[j*chunk+i]
				}
				// ReAct's reservoir of activations.
				for j := 0; j < D; {
					if skip := actS.dropsAhead(D - j); skip > 0 {
						actS.drop(skip)
						j += skip
						continue
					}
					if slot := actS.offer(); slot == len(acts) {
						acts = append(acts, x[j])
					} else if slot >= 0 {
						acts[slot] = x[j]
					}
					j++
				}
				// KNN's bank of normalised vectors.
				if slot := bankS.offer(); slot >= 0 {
					if slot == len(bank)/D {
						bank = append(bank, make([]float32, D)...)
					}
					normalise(bank[slot*D:(slot+1)*D], x)
				}
				f.Count++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("detect: fit, first pass: %w", err)
	}
	if f.Count == 0 {
		return nil, errors.New("detect: fit: the ID data gave no feature vectors")
	}
	N := float64(f.Count)
	for j := 0; j < D; j++ {
		for l := 0; l < j; l++ {
			scatter[j*D+l] = scatter[l*D+j]
		}
	}
	f.Mean = make([]float64, D)
	for j := range f.Mean {
		f.Mean[j] = shift[j] + sum[j]/N
	}
	f.ClassMeans = make([]float64, K*D)
	f.Within = append([]float64(nil), scatter...)
	for c := 0; c < K; c++ {
		nc := float64(f.ClassCounts[c])
		if nc == 0 {
			for j := 0; j < D; j++ {
				f.ClassMeans[c*D+j] = math.NaN()
			}
			continue
		}
		dc := csum[c*D : (c+1)*D]
		for j := 0; j < D; j++ {
			f.ClassMeans[c*D+j] = shift[j] + dc[j]/nc
			for l := 0; l < D; l++ {
				f.Within[j*D+l] -= dc[j] * dc[l] / nc
			}
		}
	}
	for i := range f.Within {
		f.Within[i] /= N
	}
	f.MaxLogitMean = maxLogit / N
	f.ActivationCount = f.Count * int64(D)
	slices.Sort(acts)
	f.Activations = acts
	f.Bank = bank

	// ViM: origin, covariance about it, eigenvectors.
	if f.U, err = originU(h.W, h.B, K, D); err != nil {
		return nil, fmt.Errorf("detect: fit: ViM origin: %w", err)
	}
	e := make([]float64, D) // s - u
	for j := range e {
		e[j] = shift[j] - f.U[j]
	}
	f.CovU = make([]float64, D*D)
	for j := 0; j < D; j++ {
		for l := 0; l < D; l++ {
			f.CovU[j*D+l] = (scatter[j*D+l] + e[j]*sum[l] + sum[j]*e[l] + N*e[j]*e[l]) / N
		}
	}
	if f.EigVals, f.EigVecs, err = eigSym(f.CovU, D); err != nil {
		return nil, fmt.Errorf("detect: fit: ViM subspace: %w", err)
	}

	// Second pass.
	clips := make([]float64, len(opts.ReActPercentiles))
	below := make([]int64, len(clips))
	for i, p := range opts.ReActPercentiles {
		clips[i] = f.percentile(p)
	}
	resid := make([]float64, D)
	vt := make([]float64, D*D) // the eigenvectors as rows
	for j := 0; j < D; j++ {
		for c := 0; c < D; c++ {
			vt[c*D+j] = f.EigVecs[j*D+c]
		}
	}
	gu := x64 // the chunk minus u, row-major
	z2 := make([]float64, chunk*D)
	var count2 int64
	err = pass(func(feats []float32, _ []int) error {
		if len(feats)%D != 0 {
			return fmt.Errorf("a batch of %d values is not a whole number of %d-feature vectors", len(feats), D)
		}
		n := len(feats) / D
		for c0 := 0; c0 < n; c0 += chunk {
			m := min(chunk, n-c0)
			for i, v := range feats[c0*D : (c0+m)*D] {
				gu[i] = float64(v) - f.U[i%D]
				for c, clip := range clips {
					if float64(v) <= clip {
						below[c]++
					}
				}
			}
			// Projections on the eigenvectors, one eigenvector against the whole chunk.
			for c := 0; c < D; c++ {
				v := vt[c*D : (c+1)*D]
				for i := 0; i < m; i++ {
					p := dot(v, gu[i*D:(i+1)*D])
					z2[i*D+c] = p * p
				}
			}
			for i := 0; i < m; i++ {
				z := z2[i*D : (i+1)*D]
				tail := 0.0
				for d := D - 1; d >= 0; d-- {
					tail += z[d]
					resid[d] += math.Sqrt(tail)
				}
			}
			count2 += int64(m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("detect: fit, second pass: %w", err)
	}
	if count2 != f.Count {
		return nil, fmt.Errorf("detect: fit: the second pass gave %d feature vectors, the first %d; both must stream the same data", count2, f.Count)
	}
	f.ResidualMean = make([]float64, D)
	for d := range resid {
		f.ResidualMean[d] = resid[d] / N
	}
	for i, p := range opts.ReActPercentiles {
		f.ReActCheck = append(f.ReActCheck, RankFit{P: p, Clip: clips[i], Achieved: 100 * float64(below[i]) / float64(f.ActivationCount)})
	}
	return f, nil
}

// invNorm returns 1/|x| in float64, or 0 for a zero vector.
func invNorm(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	if s > 0 {
		return 1 / math.Sqrt(s)
	}
	return 0
}

// normalise writes x/|x| + 1e-10 into dst (OpenOOD's normaliser for KNN; a zero vector gives
// 1e-10 everywhere instead of NaN).
func normalise(dst []float32, x []float32) {
	inv := invNorm(x)
	for j, v := range x {
		dst[j] = float32(float64(v)*inv + 1e-10)
	}
}

// percentile returns the p-th percentile of the activation sample with numpy's default linear
// interpolation between the two nearest ranks.
func (f *Fitted) percentile(p float64) float64 {
	return percentileSorted(f.Activations, p)
}

func percentileSorted[T float32 | float64](s []T, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo >= len(s)-1 {
		return float64(s[len(s)-1])
	}
	frac := pos - float64(lo)
	a, b := float64(s[lo]), float64(s[lo+1])
	return a + (b-a)*frac
}

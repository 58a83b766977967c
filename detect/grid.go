package detect

import (
	"fmt"
	"math"
	"slices"
)

// Grid lists the hyperparameters to try for each method. Empty lists leave a method out.
type Grid struct {
	ReAct    []float64    // percentiles
	ASH      []float64    // percentiles, for each of ASHVariants
	ASHTypes []ASHVariant // ASH variants
	DICE     []float64    // sparsity percentiles
	ViM      []float64    // principal subspace dimensions as fractions of D
	KNN      []int        // k for a bank of every ID vector; scaled by the bank's fraction
	MDS      bool         // Mahalanobis (no hyperparameter)
	// ReActDICE lists (ReAct p, DICE p) pairs to chain.
	ReActDICE [][2]float64
}

// DefaultGrid is OpenOOD v1.5's sweep (configs/postprocessors/*.yml: react, ash, dice, knn), with
// ViM's dimension as a fraction of D (OpenOOD sweeps 256 and 1000 of ResNet's 512 and 2048) and
// DICE + ReAct at p = 90 both (the DICE paper's combination).
func DefaultGrid() Grid {
	return Grid{
		ReAct:     []float64{85, 90, 95, 99},
		ASH:       []float64{65, 70, 75, 80, 85, 90, 95},
		ASHTypes:  []ASHVariant{ASHP, ASHB, ASHS},
		DICE:      []float64{90},
		ViM:       []float64{0.25, 0.5, 0.75},
		KNN:       []int{50, 100, 200, 500, 1000},
		MDS:       true,
		ReActDICE: [][2]float64{{90, 90}},
	}
}

// Candidates returns the detectors of the grid for the fitted model, and an error for each one
// that cannot be built (e.g. Mahalanobis with a class without ID samples), so that a caller can
// report what it skipped.
//
// KNN's k values are for a bank of every ID vector, as OpenOOD uses; with a subsampled bank of
// fraction a = bank/ID vectors, k becomes max(1, round(k·a)) (the KNN paper's ImageNet setting
// scales k with the sampling ratio the same way: k = 1000 for the full set, 10 for 1%), and
// duplicates are dropped.
func Candidates(m *Model, f *Fitted, g Grid) ([]Detector, []error) {
	var out []Detector
	var skipped []error
	add := func(d Detector, err error) {
		if err != nil {
			skipped = append(skipped, err)
			return
		}
		out = append(out, d)
	}
	if f.head != &m.Head {
		return nil, []error{fmt.Errorf("detect: candidates: the fit is of another model")}
	}
	for _, p := range g.ReAct {
		add(f.ReAct(p))
	}
	for _, v := range g.ASHTypes {
		for _, p := range g.ASH {
			add(NewASH(&m.Head, v, p))
		}
	}
	for _, p := range g.DICE {
		add(f.DICE(p))
	}
	for _, pair := range g.ReActDICE {
		r, err := f.ReAct(pair[0])
		if err != nil {
			add(nil, err)
			continue
		}
		d, err := f.DICE(pair[1])
		if err != nil {
			add(nil, err)
			continue
		}
		add(NewChain(r, d))
	}
	var dims []int
	for _, frac := range g.ViM {
		dim := int(math.Round(frac * float64(f.Dim)))
		if !slices.Contains(dims, dim) {
			dims = append(dims, dim)
			add(f.ViM(dim))
		}
	}
	if g.MDS {
		add(f.Mahalanobis())
	}
	a := float64(f.BankLen()) / float64(f.Count)
	var ks []int
	for _, k := range g.KNN {
		k = max(1, int(math.Round(float64(k)*a)))
		if k > f.BankLen() || slices.Contains(ks, k) {
			continue
		}
		ks = append(ks, k)
		add(f.KNN(k))
	}
	return out, skipped
}

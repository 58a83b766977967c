package mask

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// referenceTopK is the definition: sort (|s|, index) ascending, zero the first int((1-k)*n).
func referenceTopK(scores []float32, keep float64) []float32 {
	n := len(scores)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return math.Abs(float64(scores[idx[a]])) < math.Abs(float64(scores[idx[b]]))
	})
	j := int((1 - keep) * float64(n))
	m := make([]float32, n)
	for r, i := range idx {
		if r >= j {
			m[i] = 1
		}
	}
	return m
}

func TestTopKMatchesSortDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var sel Selector
	for trial := 0; trial < 400; trial++ {
		n := 1 + r.IntN(300)
		if trial%50 == 0 {
			n = 5000 + r.IntN(5000)
		}
		keep := []float64{0.8, 0.965, 0.5, 1, 0.01, r.Float64()*0.999 + 0.001}[trial%6]
		s := make([]float32, n)
		for i := range s {
			switch trial % 3 {
			case 0: // continuous
				s[i] = float32(r.NormFloat64())
			case 1: // many ties, both signs, zeros
				s[i] = float32(r.IntN(7) - 3)
			case 2: // ties between +x and -x
				s[i] = float32(r.IntN(3)) * float32(1-2*r.IntN(2)) * 0.25
			}
		}
		m := make([]float32, n)
		j, err := sel.TopK(s, keep, m)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceTopK(s, keep)
		if !slices.Equal(m, want) {
			t.Fatalf("trial %d (n=%d keep=%v): mask differs from the sort definition", trial, n, keep)
		}
		zeros := 0
		for _, v := range m {
			if v == 0 {
				zeros++
			}
		}
		if wantJ := int((1 - keep) * float64(n)); zeros != wantJ || j != wantJ {
			t.Fatalf("trial %d: %d zeros, returned %d, want %d", trial, zeros, j, wantJ)
		}
	}
}

func TestPrunedCounts(t *testing.T) {
	for _, c := range []struct {
		n    int
		keep float64
		want int
	}{
		{54, 0.8, 10},     // int(10.799999999999997)
		{432, 0.8, 86},    // int(86.39999999999998)
		{40, 0.8, 7},      // int(7.999999999999998): Python keeps 33, not 32
		{1000, 0.965, 35}, // int(35.00000000000003)
		{10, 1, 0},
		{0, 0.5, 0},
	} {
		got, err := Pruned(c.n, c.keep)
		if err != nil || got != c.want {
			t.Errorf("Pruned(%d, %v) = %d, %v; want %d", c.n, c.keep, got, err, c.want)
		}
	}
}

func TestBadKeepAndScores(t *testing.T) {
	for _, k := range []float64{0, -0.1, 1.0000001, math.NaN(), math.Inf(1)} {
		if _, err := TopK([]float32{1, 2}, k, make([]float32, 2)); !errors.Is(err, ErrKeep) {
			t.Errorf("keep %v: error %v, want ErrKeep", k, err)
		}
	}
	if _, err := TopK([]float32{1, float32(math.NaN())}, 0.5, make([]float32, 2)); err == nil {
		t.Error("NaN score: no error")
	}
	if _, err := TopK([]float32{1, 2}, 0.5, make([]float32, 3)); err == nil {
		t.Error("mask of the wrong length: no error")
	}
}

func TestKaimingUniformRangeAndSeed(t *testing.T) {
	a := make([]float32, 10000)
	b := make([]float32, 10000)
	if err := KaimingUniformScores(NewRand(7, 3), 25, a); err != nil {
		t.Fatal(err)
	}
	if err := KaimingUniformScores(NewRand(7, 3), 25, b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different scores")
	}
	lo, hi := float32(1), float32(-1)
	for _, v := range a {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < -0.2 || hi > 0.2 || lo > -0.19 || hi < 0.19 {
		t.Errorf("scores span [%v, %v], want about [-0.2, 0.2]", lo, hi)
	}
	if err := KaimingUniformScores(NewRand(1, 1), 0, a); err == nil {
		t.Error("fan-in 0: no error")
	}
}

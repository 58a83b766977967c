package detect

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestKthSmallest: the quickselect gives the sorted slice's k-th value, ties and sizes 1..300
// included.
func TestKthSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 300; n += 7 {
		for _, levels := range []int{3, 1 << 30} { // many ties, then few
			a := make([]float64, n)
			for i := range a {
				a[i] = float64(rng.IntN(levels))
			}
			sorted := slices.Sorted(slices.Values(a))
			for k := 1; k <= n; k += max(1, n/9) {
				b := slices.Clone(a)
				if got := kthSmallest(b, k); got != sorted[k-1] {
					t.Fatalf("n=%d k=%d levels=%d: %v, want %v", n, k, levels, got, sorted[k-1])
				}
			}
		}
	}
}

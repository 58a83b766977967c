package decision

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestWindowOneFollowsEachScore(t *testing.T) {
	d, err := New(5, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		score   float64
		ood     bool
		changed bool
	}{{6, false, false}, {4.9, true, true}, {5, false, true}, {5, false, false}, {-1, true, true}} {
		got, err := d.Add(c.score)
		if err != nil {
			t.Fatal(err)
		}
		if got.OOD != c.ood || got.Changed != c.changed || got.Median != c.score {
			t.Errorf("score %v: %+v, want ood=%v changed=%v", c.score, got, c.ood, c.changed)
		}
	}
}

func TestMedianDebounce(t *testing.T) {
	d, _ := New(0, 3)
	// One low frame among high ones does not raise the alarm; two in a row do.
	scores := []float64{1, -5, 1, 1, -5, -5, 1, 1}
	want := []bool{false, true /* median of {1,-5} = -2 */, false, false, false, true, true, false}
	for i, s := range scores {
		got, _ := d.Add(s)
		if got.OOD != want[i] {
			t.Errorf("frame %d score %v: median %v ood %v, want %v", i, s, got.Median, got.OOD, want[i])
		}
	}
}

func TestMedianMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 5, 8} {
		d, _ := New(0, n)
		var hist []float64
		for i := 0; i < 200; i++ {
			s := math.Round(r.NormFloat64()*4) / 2 // ties on purpose
			hist = append(hist, s)
			got, err := d.Add(s)
			if err != nil {
				t.Fatal(err)
			}
			w := hist[max(0, len(hist)-n):]
			sorted := slices.Sorted(slices.Values(w))
			want := sorted[len(sorted)/2]
			if len(sorted)%2 == 0 {
				want = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
			}
			if got.Median != want || got.Window != len(w) {
				t.Fatalf("n=%d step %d: median %v over %d, want %v over %d", n, i, got.Median, got.Window, want, len(w))
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	for _, c := range []struct {
		th float64
		n  int
	}{{math.NaN(), 1}, {math.Inf(1), 1}, {0, 0}, {0, 1001}} {
		if _, err := New(c.th, c.n); err == nil {
			t.Errorf("New(%v, %d) worked", c.th, c.n)
		}
	}
	d, _ := New(0, 3)
	if _, err := d.Add(math.NaN()); err == nil {
		t.Error("NaN score accepted")
	}
	if got, _ := d.Add(1); got.Window != 1 {
		t.Errorf("NaN entered the window: %+v", got)
	}
}

func TestNoAllocations(t *testing.T) {
	d, _ := New(0, 9)
	i := 0.0
	if a := testing.AllocsPerRun(1000, func() { i++; _, _ = d.Add(math.Sin(i)) }); a != 0 {
		t.Errorf("Add allocates %v times", a)
	}
}

package run

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// ramp returns n 1-channel 4x4 images whose pixel (i,j) of image k is 100k + 10i + j.
func ramp(n int) *Data {
	d := &Data{Name: "ramp", C: 1, H: 4, W: 4, Black: []float32{-1}}
	for k := range n {
		for i := range 4 {
			for j := range 4 {
				d.X = append(d.X, float32(100*k+10*i+j))
			}
		}
		d.Labels = append(d.Labels, k)
	}
	return d
}

func TestAugmentCropAndFlip(t *testing.T) {
	d := ramp(1)
	dst := make([]float32, 16)
	// Find draws that give each case: the crop offsets come first, then the flip.
	seen := map[[3]int]bool{}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 0))
		probe := rand.New(rand.NewPCG(seed, 0))
		dy, dx, flip := probe.IntN(5), probe.IntN(5), probe.IntN(2) == 1
		d.augment(dst, d.X, rng, Augment{Pad: 2, Flip: true})
		for i := range 4 {
			for j := range 4 {
				jj := j
				if flip {
					jj = 3 - j
				}
				sy, sx := i+dy-2, jj+dx-2
				want := float32(-1)
				if sy >= 0 && sy < 4 && sx >= 0 && sx < 4 {
					want = float32(10*sy + sx)
				}
				if got := dst[i*4+j]; got != want {
					t.Fatalf("seed %d (dy %d dx %d flip %v): pixel (%d,%d) = %v, want %v", seed, dy, dx, flip, i, j, got, want)
				}
			}
		}
		f := 0
		if flip {
			f = 1
		}
		seen[[3]int{dy, dx, f}] = true
	}
	if len(seen) < 30 {
		t.Errorf("only %d distinct augmentations in 200 draws", len(seen))
	}
	// No augmentation copies the image.
	d.augment(dst, d.X, rand.New(rand.NewPCG(1, 1)), Augment{})
	if !slices.Equal(dst, d.X) {
		t.Errorf("no augmentation changed the image: %v", dst)
	}
}

func TestEpochShufflesAndDropsLast(t *testing.T) {
	d := ramp(10)
	collect := func(seed uint64, all bool) [][]int {
		var out [][]int
		for b, err := range d.epoch(context.Background(), rand.New(rand.NewPCG(seed, 100)), 3, Augment{}, all) {
			if err != nil {
				t.Fatal(err)
			}
			for k, y := range b.Labels {
				if b.X[k*16] != float32(100*y) {
					t.Fatalf("image %d of the batch is not image %d", k, y)
				}
			}
			out = append(out, slices.Clone(b.Labels))
		}
		return out
	}
	a := collect(1, false)
	if len(a) != 3 {
		t.Fatalf("%d batches of 3 from 10 images, want 3", len(a))
	}
	if b := collect(1, false); !slices.EqualFunc(a, b, slices.Equal) {
		t.Error("the same seed gave another order")
	}
	if b := collect(2, false); slices.EqualFunc(a, b, slices.Equal) {
		t.Error("another seed gave the same order")
	}
	all := collect(1, true)
	if len(all) != 4 || len(all[3]) != 1 {
		t.Fatalf("with the last batch: %v", all)
	}
	var labels []int
	for _, b := range all {
		labels = append(labels, b...)
	}
	slices.Sort(labels)
	if !slices.Equal(labels, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("one pass saw %v", labels)
	}
}

func TestGridCandidates(t *testing.T) {
	got := gridCandidates(0.4, 0.2, []float64{0.5, 1})
	want := []float64{0.1, 0.2, 0.4} // 0.5*0.4 = 1*0.2 appear once
	if len(got) != len(want) {
		t.Fatalf("candidates %+v, want values %v", got, want)
	}
	for i, c := range got {
		if c.value != want[i] {
			t.Errorf("candidate %d = %v (%s), want %v", i, c.value, c.from, want[i])
		}
	}
	if got[1].from != "0.5 x estimate" {
		t.Errorf("0.2 is named %q, want the first source", got[1].from)
	}
}

func TestCheckLabels(t *testing.T) {
	d := ramp(12)
	if err := d.CheckLabels(10); err == nil {
		t.Error("label 11 accepted for 10 classes")
	}
	if err := d.CheckLabels(12); err != nil {
		t.Error(err)
	}
}

package train

import (
	"errors"
	"io"
	"testing"

	"github.com/oodguard/oodguard/dataset"
)

// labelReader yields n samples whose labels are their indices.
type labelReader struct{ i, n int }

func (r *labelReader) Next() (dataset.Sample, error) {
	if r.i >= r.n {
		return dataset.Sample{}, io.EOF
	}
	r.i++
	return dataset.Sample{Label: r.i - 1}, nil
}
func (r *labelReader) Close() error      { return nil }
func (r *labelReader) Len() int          { return r.n }
func (r *labelReader) Classes() []string { return nil }

// TestTrainingSubsetIsTrainLimit: the images `oodguard unleash -limit N -seed S` reads
// (dataset.TrainingSubset over the stream) are exactly those `oodguard train -limit N -seed S`
// trains on (Images.Subset in memory), in the same order.
func TestTrainingSubsetIsTrainLimit(t *testing.T) {
	for _, c := range []struct {
		total, n int
		seed     uint64
	}{{55000, 10000, 1}, {50000, 5000, 3}, {100, 7, 2}, {10, 10, 1}, {10, 0, 1}} {
		imgs := &Images{Shape: [3]int{1, 1, 1}, Pix: make([]uint8, c.total), Labels: make([]int, c.total)}
		for i := range imgs.Labels {
			imgs.Labels[i] = i
		}
		want := imgs.Subset(c.n, c.seed).Labels
		r, err := dataset.TrainingSubset(&labelReader{n: c.total}, c.n, c.seed, "indices")
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for {
			s, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s.Label)
		}
		if r.Len() != len(want) || len(got) != len(want) {
			t.Fatalf("%+v: %d images read (Len %d), train takes %d", c, len(got), r.Len(), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v: image %d of the subset is %d, train's is %d", c, i, got[i], want[i])
			}
		}
	}
}

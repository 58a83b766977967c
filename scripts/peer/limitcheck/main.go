// Command limitcheck compares the subset `oodguard unleash -limit N -seed S` reads
// (dataset.RandomSubset, what cmd/oodguard's -limit applies) with the subset `oodguard train
// -limit N -seed S` trains on (unleash/train Images.Subset), for a training set of LEN images,
// by passing indices through both as labels. It prints how many indices the two share and
// exits 1 when they differ (issue #14 requires them to be the same).
// Usage: go run ./scripts/peer/limitcheck -len 55000 -n 10000 -seed 1
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/unleash/train"
)

// indexReader yields n samples whose labels are their indices.
type indexReader struct{ i, n int }

func (r *indexReader) Next() (dataset.Sample, error) {
	if r.i >= r.n {
		return dataset.Sample{}, io.EOF
	}
	r.i++
	return dataset.Sample{Label: r.i - 1}, nil
}
func (r *indexReader) Close() error      { return nil }
func (r *indexReader) Len() int          { return r.n }
func (r *indexReader) Classes() []string { return nil }

func main() {
	length := flag.Int("len", 55000, "images in the training set")
	n := flag.Int("n", 10000, "-limit")
	seed := flag.Uint64("seed", 1, "-seed")
	flag.Parse()
	sub, err := dataset.TrainingSubset(&indexReader{n: *length}, *n, *seed, "indices") // what unleash -limit reads
	if err != nil {
		fmt.Fprintln(os.Stderr, "limitcheck:", err)
		os.Exit(2)
	}
	unleashSet := map[int]bool{}
	for {
		s, err := sub.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "limitcheck:", err)
			os.Exit(2)
		}
		unleashSet[s.Label] = true
	}
	imgs := &train.Images{Shape: [3]int{1, 1, 1}, Pix: make([]uint8, *length), Labels: make([]int, *length)}
	for i := range imgs.Labels {
		imgs.Labels[i] = i
	}
	shared := 0
	trainIdx := imgs.Subset(*n, *seed).Labels
	for _, i := range trainIdx {
		if unleashSet[i] {
			shared++
		}
	}
	fmt.Printf("len %d limit %d seed %d: train subset %d images, unleash subset %d, shared %d (independent draws share about %d)\n",
		*length, *n, *seed, len(trainIdx), len(unleashSet), shared, *n**n / *length)
	if shared != len(trainIdx) || len(unleashSet) != len(trainIdx) {
		fmt.Println("DIFFERENT: unleash -limit does not train on train -limit's images")
		os.Exit(1)
	}
	fmt.Println("same subset")
}

// Command subset prints, one per line, the indices of the images that `oodguard train -limit N
// -seed S` trains on (unleash/train.Images.Subset), for a training set of LEN images.
// Usage: go run ./scripts/memorisation/subset -len 55000 -n 10000 -seed 1 > subset-1.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/oodguard/oodguard/unleash/train"
)

func main() {
	length := flag.Int("len", 55000, "images in the training set")
	n := flag.Int("n", 10000, "-limit of oodguard train")
	seed := flag.Uint64("seed", 1, "-seed of oodguard train")
	flag.Parse()
	s := &train.Images{Shape: [3]int{1, 1, 1}, Pix: make([]uint8, *length), Labels: make([]int, *length)}
	for i := range s.Labels {
		s.Labels[i] = i // the label carries the index through Subset
	}
	sub := s.Subset(*n, *seed)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, i := range sub.Labels {
		fmt.Fprintln(w, i)
	}
}

// Command subset prints, one per line, the indices of the images that `oodguard train -limit N
// -seed S` trains on (unleash/train.Images.Subset), for a training set of LEN images. With
// -data it reads that dataset in the order train loads it (class folders) and prints
// "index<TAB>label<TAB>name" of each picked image instead (name: the tar entry or file).
// Usage: go run ./scripts/memorisation/subset -len 55000 -n 10000 -seed 1 > subset-1.txt
//
//	go run ./scripts/memorisation/subset -data /work/shared/data/cifar10/train.tar#train -n 5000 -seed 1
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/unleash/train"
)

func main() {
	length := flag.Int("len", 55000, "images in the training set (ignored with -data)")
	n := flag.Int("n", 10000, "-limit of oodguard train")
	seed := flag.Uint64("seed", 1, "-seed of oodguard train")
	data := flag.String("data", "", "training data PATH or PATH#PREFIX, read in train's order (optional)")
	flag.Parse()
	var names []string
	var labels []int
	if *data != "" {
		var err error
		if names, labels, err = readNames(*data); err != nil {
			fmt.Fprintln(os.Stderr, "subset:", err)
			os.Exit(1)
		}
		*length = len(names)
	}
	s := &train.Images{Shape: [3]int{1, 1, 1}, Pix: make([]uint8, *length), Labels: make([]int, *length)}
	for i := range s.Labels {
		s.Labels[i] = i // the label carries the index through Subset
	}
	sub := s.Subset(*n, *seed)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, i := range sub.Labels {
		if names != nil {
			fmt.Fprintf(w, "%d\t%d\t%s\n", i, labels[i], names[i])
		} else {
			fmt.Fprintln(w, i)
		}
	}
}

// readNames lists the samples of path[#prefix] in the order train reads them.
func readNames(spec string) ([]string, []int, error) {
	path, prefix, _ := strings.Cut(spec, "#")
	r, err := dataset.Open(path, dataset.Options{Prefix: prefix, Layout: dataset.LayoutClasses})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var names []string
	var labels []int
	for {
		smp, err := r.Next()
		if errors.Is(err, io.EOF) {
			return names, labels, nil
		}
		if err != nil {
			return nil, nil, err
		}
		names = append(names, smp.Name())
		labels = append(labels, smp.Label)
	}
}

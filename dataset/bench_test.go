package dataset_test

import (
	"errors"
	"io"
	"testing"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/dataset/datasettest"
)

// BenchmarkReaders reads 4096 samples of 28x28 IDX and of CIFAR-10 binary, with a new image per
// sample (fresh) and with Options.ReuseImages (reuse), and reports the time per sample.
func BenchmarkReaders(b *testing.B) {
	const n = 4096
	dir := b.TempDir()
	images, labels := datasettest.WriteIDX(b, dir, "bench", n, 28, 28)
	cifar := datasettest.WriteCIFAR(b, dir, "bench", n)
	for _, c := range []struct {
		name string
		open func(dataset.Options) (dataset.Reader, error)
	}{
		{"idx28", func(o dataset.Options) (dataset.Reader, error) { return dataset.OpenIDX(images, labels, o) }},
		{"cifar", func(o dataset.Options) (dataset.Reader, error) { return dataset.OpenCIFAR([]string{cifar}, o) }},
	} {
		for _, reuse := range []bool{false, true} {
			name := c.name + "/fresh"
			if reuse {
				name = c.name + "/reuse"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					readAll(b, c.open, dataset.Options{ReuseImages: reuse})
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
			})
		}
	}
}

func readAll(b *testing.B, open func(dataset.Options) (dataset.Reader, error), opts dataset.Options) {
	r, err := open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for {
		if _, err := r.Next(); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

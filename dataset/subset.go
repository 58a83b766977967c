package dataset

import (
	"fmt"
	"io"
	"math/rand/v2"
)

// streamSubset is the PCG stream of RandomSubset's generator, so that the same seed used for
// something else (training's shuffling) draws other numbers.
const streamSubset = 0x5375627365740001

// subsetReader yields a random subset of another reader's samples, in that reader's order.
type subsetReader struct {
	r       Reader
	rng     *rand.Rand
	n, left int // samples to yield in all, and still to yield
	seen    int // samples of r read or skipped so far
	total   int // r.Len()
}

// skipper is implemented by readers that can pass over a sample for less than decoding it.
type skipper interface{ skip() error }

// RandomSubset returns a Reader that yields n samples of r drawn uniformly at random without
// replacement, seeded (the same seed and data give the same subset), in r's order. This is what
// "use n images" has to mean for data stored class by class (folders and tar archives of class
// folders), whose first n images are one or two classes. With n <= 0 or n >= r.Len() it returns
// r itself. The subset needs r's length: for a reader that does not know it (gzip-compressed
// CIFAR batches) it returns an error naming the dataset. Closing the subset closes r.
func RandomSubset(r Reader, n int, seed uint64, name string) (Reader, error) {
	total := r.Len()
	if n <= 0 || (total >= 0 && n >= total) {
		return r, nil
	}
	if total < 0 {
		return nil, fmt.Errorf("dataset %s: a random subset of %d images needs the number of images, which this format does not tell without reading it all (decompress gzip-compressed CIFAR batches)", name, n)
	}
	return &subsetReader{r: r, rng: rand.New(rand.NewPCG(seed, streamSubset)), n: n, left: n, total: total}, nil
}

// Next draws the next sample of the subset: each of r's samples is taken with probability
// (samples still wanted)/(samples left), which picks every n-subset with equal chance (Knuth's
// selection sampling) while reading r once, in order.
func (s *subsetReader) Next() (Sample, error) {
	for s.left > 0 && s.seen < s.total {
		take := s.rng.IntN(s.total-s.seen) < s.left
		s.seen++
		if take {
			smp, err := s.r.Next()
			if err != nil {
				return Sample{}, err
			}
			s.left--
			return smp, nil
		}
		var err error
		if sk, ok := s.r.(skipper); ok {
			err = sk.skip()
		} else {
			_, err = s.r.Next()
		}
		if err != nil {
			return Sample{}, err
		}
	}
	return Sample{}, io.EOF
}

// Close closes the underlying reader.
func (s *subsetReader) Close() error { return s.r.Close() }

// Len is the size of the subset.
func (s *subsetReader) Len() int { return s.n }

// Classes returns the classes of the underlying reader.
func (s *subsetReader) Classes() []string { return s.r.Classes() }

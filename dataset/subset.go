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

// skipOne passes over r's next sample: skipped where r can, read and dropped otherwise.
func skipOne(r Reader) error {
	if sk, ok := r.(skipper); ok {
		return sk.skip()
	}
	_, err := r.Next()
	return err
}

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
		if err := skipOne(s.r); err != nil {
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

// trainingStream is the PCG stream of TrainingPick's generator (the stream `oodguard train
// -limit` has always drawn its subset from).
const trainingStream = 1 << 32

// TrainingPick returns which of total images make up the training subset of n images for seed:
// the first n of a seeded random permutation, marked in stored order. `oodguard train -limit`
// and `oodguard unleash -limit` both train on it, so the same -limit and -seed give the same
// images. With n <= 0 or n >= total it returns nil (every image).
func TrainingPick(total, n int, seed uint64) []bool {
	if n <= 0 || n >= total {
		return nil
	}
	keep := make([]bool, total)
	for _, i := range rand.New(rand.NewPCG(seed, trainingStream)).Perm(total)[:n] {
		keep[i] = true
	}
	return keep
}

// TrainingSubset returns a Reader that yields the images of r that TrainingPick marks, in r's
// order (r itself for n <= 0 or n >= r.Len()). Like RandomSubset it needs r's length. Closing
// the subset closes r.
func TrainingSubset(r Reader, n int, seed uint64, name string) (Reader, error) {
	total := r.Len()
	if n <= 0 || (total >= 0 && n >= total) {
		return r, nil
	}
	if total < 0 {
		return nil, fmt.Errorf("dataset %s: a training subset of %d images needs the number of images, which this format does not tell without reading it all (decompress gzip-compressed CIFAR batches)", name, n)
	}
	return &pickReader{r: r, keep: TrainingPick(total, n, seed), n: n}, nil
}

// pickReader yields the samples of r whose index keep marks.
type pickReader struct {
	r    Reader
	keep []bool
	n    int // marked samples
	next int // index in r of the next sample to read or skip
}

// Next reads the next marked sample, skipping the others.
func (p *pickReader) Next() (Sample, error) {
	for p.next < len(p.keep) {
		i := p.next
		p.next++
		if p.keep[i] {
			return p.r.Next()
		}
		if err := skipOne(p.r); err != nil {
			return Sample{}, err
		}
	}
	return Sample{}, io.EOF
}

// Len is the size of the subset.
func (p *pickReader) Len() int { return p.n }

// Classes returns the classes of the underlying reader.
func (p *pickReader) Classes() []string { return p.r.Classes() }

// Close closes the underlying reader.
func (p *pickReader) Close() error { return p.r.Close() }

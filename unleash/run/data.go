package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/unleash"
)

// Data is an image set held in memory, preprocessed as the model expects (normalised NCHW
// float32), with its labels (-1 when unlabelled).
type Data struct {
	Name    string
	X       []float32
	Labels  []int
	C, H, W int
	// Black is the normalised value of a black pixel per channel, (0 - mean_c)/std_c: what
	// RandomCrop's zero padding of a [0,1] image becomes after normalisation.
	Black []float32
}

// Len returns the number of images.
func (d *Data) Len() int { return len(d.Labels) }

func (d *Data) per() int { return d.C * d.H * d.W }

// Load reads up to limit samples of r (all when limit <= 0) and preprocesses them with spec.
// With labelled set, an unlabelled sample is an error.
func Load(ctx context.Context, name string, r dataset.Reader, spec preprocess.Spec, limit int, labelled bool) (*Data, error) {
	pre, err := preprocess.New(spec)
	if err != nil {
		return nil, err
	}
	sh := spec.InputShape()
	d := &Data{Name: name, C: sh[0], H: sh[1], W: sh[2]}
	full := pre.Spec()
	for c := range d.C {
		d.Black = append(d.Black, -full.Mean[c]/full.Std[c])
	}
	if n := r.Len(); n > 0 {
		if limit > 0 {
			n = min(n, limit)
		}
		d.X = make([]float32, 0, n*d.per())
		d.Labels = make([]int, 0, n)
	}
	buf := make([]float32, d.per())
	for limit <= 0 || d.Len() < limit {
		if d.Len()%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if labelled && s.Label < 0 {
			return nil, fmt.Errorf("%s: %s has no label: training data must be labelled", name, s.Name())
		}
		if err := pre.Process(buf, s.Image); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name(), err)
		}
		d.X = append(d.X, buf...)
		d.Labels = append(d.Labels, s.Label)
	}
	if d.Len() == 0 {
		return nil, fmt.Errorf("%s holds no images", name)
	}
	return d, nil
}

// CheckLabels reports an error wrapping unleash.ErrLabel when a label is outside [0, classes).
// classes <= 0 checks nothing (the model file does not state it).
func (d *Data) CheckLabels(classes int) error {
	if classes <= 0 {
		return nil
	}
	for i, l := range d.Labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("%s: image %d: %w: %d, the model has %d classes", d.Name, i, unleash.ErrLabel, l, classes)
		}
	}
	return nil
}

// Head returns the first n images of d (all when n <= 0 or n >= Len), sharing memory.
func (d *Data) Head(n int) *Data {
	if n <= 0 || n >= d.Len() {
		return d
	}
	h := *d
	h.X, h.Labels = d.X[:n*d.per()], d.Labels[:n]
	return &h
}

// Batches returns the images in order, in batches of n; the last one is padded with copies of
// the first image to n, and Batch.Labels lists only the real images.
func (d *Data) Batches(n int) iter.Seq2[unleash.Batch, error] {
	return func(yield func(unleash.Batch, error) bool) {
		per := d.per()
		buf := make([]float32, n*per)
		for i := 0; i < d.Len(); i += n {
			j := min(i+n, d.Len())
			copy(buf, d.X[i*per:j*per])
			for k := j - i; k < n; k++ {
				copy(buf[k*per:(k+1)*per], d.X[:per])
			}
			if !yield(unleash.Batch{X: buf, Labels: d.Labels[i:j]}, nil) {
				return
			}
		}
	}
}

// Augment is the training augmentation of the official code: RandomCrop(size, padding=Pad)
// with zero (black) padding, then RandomHorizontalFlip with probability 1/2 when Flip is set.
type Augment struct {
	Pad  int
	Flip bool
}

// String describes the augmentation for run records.
func (a Augment) String() string {
	switch {
	case a.Pad == 0 && !a.Flip:
		return "none"
	case !a.Flip:
		return fmt.Sprintf("random crop (padding %d, black)", a.Pad)
	case a.Pad == 0:
		return "random horizontal flip"
	}
	return fmt.Sprintf("random crop (padding %d, black) + random horizontal flip", a.Pad)
}

// Epoch returns one epoch of training batches of exactly n images: the images in an order
// shuffled by rng, each augmented with rng. The last len%n images of the shuffled order are
// dropped, so that every batch has the same size (the graphs compile once) and BatchNorm never
// sees a tiny batch; shuffling drops different ones each epoch. The batch buffer is reused.
func (d *Data) Epoch(ctx context.Context, rng *rand.Rand, n int, aug Augment) iter.Seq2[unleash.Batch, error] {
	return d.epoch(ctx, rng, n, aug, false)
}

// epoch is Epoch; with all set, the last, smaller batch is kept.
func (d *Data) epoch(ctx context.Context, rng *rand.Rand, n int, aug Augment, all bool) iter.Seq2[unleash.Batch, error] {
	return func(yield func(unleash.Batch, error) bool) {
		if n <= 0 || (d.Len() < n && !all) {
			yield(unleash.Batch{}, fmt.Errorf("%s: %d images cannot make a batch of %d", d.Name, d.Len(), n))
			return
		}
		order := rng.Perm(d.Len())
		per := d.per()
		x := make([]float32, n*per)
		y := make([]int, n)
		for b := 0; b < len(order); b += n {
			m := min(n, len(order)-b)
			if m < n && !all {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(unleash.Batch{}, err)
				return
			}
			for k, idx := range order[b : b+m] {
				d.augment(x[k*per:(k+1)*per], d.X[idx*per:(idx+1)*per], rng, aug)
				y[k] = d.Labels[idx]
			}
			if !yield(unleash.Batch{X: x[:m*per], Labels: y[:m]}, nil) {
				return
			}
		}
	}
}

// augment writes one augmented image. The crop offset is drawn first (dy, dx in [0, 2*pad]),
// then the flip, as torchvision's RandomCrop then RandomHorizontalFlip do.
func (d *Data) augment(dst, src []float32, rng *rand.Rand, aug Augment) {
	dy, dx := aug.Pad, aug.Pad
	if aug.Pad > 0 {
		dy, dx = rng.IntN(2*aug.Pad+1), rng.IntN(2*aug.Pad+1)
	}
	flip := aug.Flip && rng.IntN(2) == 1
	h, w := d.H, d.W
	for c := range d.C {
		plane, out := src[c*h*w:(c+1)*h*w], dst[c*h*w:(c+1)*h*w]
		for i := range h {
			sy := i + dy - aug.Pad
			for j := range w {
				jj := j
				if flip {
					jj = w - 1 - j
				}
				sx := jj + dx - aug.Pad
				v := d.Black[c]
				if sy >= 0 && sy < h && sx >= 0 && sx < w {
					v = plane[sy*w+sx]
				}
				out[i*w+j] = v
			}
		}
	}
}

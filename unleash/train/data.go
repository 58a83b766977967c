package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"iter"
	"math"
	"math/rand/v2"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/unleash"
)

// Images is a labelled image set held in memory as 8-bit pixels: image i is
// Pix[i*C*H*W : (i+1)*C*H*W] in CHW order. Datasets stream and some are stored grouped by class
// (the CIFAR-10 tar), so training loads them once and shuffles indices each epoch.
type Images struct {
	Pix     []uint8
	Labels  []int
	Shape   [3]int   // channels, height, width
	Classes []string // class names when the dataset has them, else nil
}

// Len returns the number of images.
func (s *Images) Len() int { return len(s.Labels) }

// NumClasses returns the number of classes: len(Classes) when named, else the largest label + 1.
func (s *Images) NumClasses() int {
	if len(s.Classes) > 0 {
		return len(s.Classes)
	}
	k := 0
	for _, l := range s.Labels {
		k = max(k, l+1)
	}
	return k
}

// Subset returns n images drawn at random without replacement (seeded), in their original
// order; all of them when n <= 0 or n >= Len. Pixels are copied.
func (s *Images) Subset(n int, seed uint64) *Images {
	keep := dataset.TrainingPick(s.Len(), n, seed)
	if keep == nil {
		return s
	}
	per := s.Shape[0] * s.Shape[1] * s.Shape[2]
	out := &Images{Shape: s.Shape, Classes: s.Classes, Pix: make([]uint8, 0, n*per), Labels: make([]int, 0, n)}
	for i, k := range keep {
		if k {
			out.Pix = append(out.Pix, s.Pix[i*per:(i+1)*per]...)
			out.Labels = append(out.Labels, s.Labels[i])
		}
	}
	return out
}

// streamEpoch + epoch is the PCG stream of that epoch's shuffling and augmentation (the subset
// is dataset.TrainingPick's, stream 1 << 32).
const streamEpoch = 2 << 32

// Load reads every sample of r into memory at the spec's size and channel count. Images are
// converted and resampled exactly as preprocess does for the spec (gray/RGB conversion, bilinear
// resize), then rounded to 8 bits: an image that already has the model's size keeps its exact
// pixel values. Every sample must be labelled. progress, when not nil, is called every 1024
// images and at the end with the number read.
func Load(ctx context.Context, r dataset.Reader, spec preprocess.Spec, progress func(done int)) (*Images, error) {
	// mean 0, std 1: Process gives v/255, which scales back to the 8-bit value.
	raw := spec
	raw.Mean = make([]float32, spec.Channels)
	raw.Std = make([]float32, spec.Channels)
	for c := range raw.Std {
		raw.Std[c] = 1
	}
	p, err := preprocess.New(raw)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	c, h, w := spec.InputShape()[0], spec.InputShape()[1], spec.InputShape()[2]
	s := &Images{Shape: [3]int{c, h, w}, Classes: r.Classes()}
	if n := r.Len(); n > 0 {
		s.Pix = make([]uint8, 0, n*p.Len())
		s.Labels = make([]int, 0, n)
	}
	buf := make([]float32, p.Len())
	for i := 0; ; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if progress != nil && i > 0 {
				progress(i)
			}
		}
		smp, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if smp.Label < 0 {
			return nil, fmt.Errorf("train: %s: unlabelled image: training needs labels (class folders, IDX labels file)", smp.Name())
		}
		if err := p.Process(buf, smp.Image); err != nil {
			return nil, fmt.Errorf("train: %s: %w", smp.Name(), err)
		}
		for _, v := range buf {
			s.Pix = append(s.Pix, uint8(min(max(math.Round(float64(v)*255), 0), 255)))
		}
		s.Labels = append(s.Labels, smp.Label)
	}
	if progress != nil {
		progress(s.Len())
	}
	if s.Len() == 0 {
		return nil, fmt.Errorf("train: %w", dataset.ErrNoImages)
	}
	return s, nil
}

// Augment is the training-time data augmentation of the official recipe (RandomCrop(size,
// padding) and RandomHorizontalFlip, torchvision semantics).
type Augment struct {
	// Crop is the zero padding of the random crop in pixels: the image is padded with black
	// (8-bit 0, before normalisation, as torchvision pads the PIL image) and a window of the
	// original size is cut at a uniformly drawn offset. 0 turns cropping off.
	Crop int
	// Flip mirrors each image left-right with probability 1/2. Right for objects and clothes;
	// turn it off for digits and text.
	Flip bool
}

// Batcher cuts an in-memory image set into shuffled, augmented, normalised training batches.
type Batcher struct {
	set   *Images
	batch int
	aug   Augment
	seed  uint64
	lut   [3][256]float32
	x     []float32 // the batch being filled, reused
	y     []int
	per   int // values per image
}

// NewBatcher returns a Batcher of batches of size batch, normalised as spec says (the same
// float32 values preprocess gives for those 8-bit pixels).
func NewBatcher(set *Images, spec preprocess.Spec, batch int, aug Augment, seed uint64) (*Batcher, error) {
	if batch < 2 {
		return nil, fmt.Errorf("train: batch size %d: training-mode BatchNorm needs at least 2", batch)
	}
	if set.Len() < batch {
		return nil, fmt.Errorf("train: %d training images are fewer than one batch of %d", set.Len(), batch)
	}
	if spec.InputShape() != set.Shape {
		return nil, fmt.Errorf("train: images are %v, the spec wants %v", set.Shape, spec.InputShape())
	}
	if aug.Crop < 0 || aug.Crop >= min(set.Shape[1], set.Shape[2]) {
		return nil, fmt.Errorf("train: crop padding %d: want 0 to %d", aug.Crop, min(set.Shape[1], set.Shape[2])-1)
	}
	b := &Batcher{set: set, batch: batch, aug: aug, seed: seed, per: set.Shape[0] * set.Shape[1] * set.Shape[2]}
	lut, err := levels(spec)
	if err != nil {
		return nil, err
	}
	b.lut = lut
	b.x = make([]float32, batch*b.per)
	b.y = make([]int, batch)
	return b, nil
}

// levels returns the normalised value of every 8-bit level per channel, computed by the
// Preprocessor itself so that training sees exactly what inference will.
func levels(spec preprocess.Spec) ([3][256]float32, error) {
	var lut [3][256]float32
	s := spec
	s.Width, s.Height = 256, 1
	p, err := preprocess.New(s)
	if err != nil {
		return lut, fmt.Errorf("train: %w", err)
	}
	g := image.NewGray(image.Rect(0, 0, 256, 1))
	for v := range 256 {
		g.Pix[v] = uint8(v)
	}
	out := make([]float32, p.Len())
	if err := p.Process(out, g); err != nil {
		return lut, fmt.Errorf("train: %w", err)
	}
	for c := range spec.Channels {
		copy(lut[c][:], out[c*256:(c+1)*256])
	}
	return lut, nil
}

// Steps returns the number of batches of an epoch: the last partial batch is dropped, so that
// every step has the same size (GoMLX compiles a graph per batch size).
func (b *Batcher) Steps() int { return b.set.Len() / b.batch }

// Epoch returns the batches of epoch (0-based): a fresh permutation and fresh augmentation
// draws, both from the PCG stream (seed, epoch), so a run is reproducible. The batch slices are
// reused from one batch to the next.
func (b *Batcher) Epoch(epoch int) iter.Seq2[unleash.Batch, error] {
	return func(yield func(unleash.Batch, error) bool) {
		r := rand.New(rand.NewPCG(b.seed, streamEpoch+uint64(epoch)))
		perm := r.Perm(b.set.Len())
		for s := range b.Steps() {
			for j := range b.batch {
				i := perm[s*b.batch+j]
				b.y[j] = b.set.Labels[i]
				b.image(b.x[j*b.per:(j+1)*b.per], b.set.Pix[i*b.per:(i+1)*b.per], r)
			}
			if !yield(unleash.Batch{X: b.x, Labels: b.y}, nil) {
				return
			}
		}
	}
}

// image writes the augmented, normalised image src (8-bit CHW) to dst.
func (b *Batcher) image(dst []float32, src []uint8, r *rand.Rand) {
	c, h, w := b.set.Shape[0], b.set.Shape[1], b.set.Shape[2]
	dy, dx := 0, 0
	if p := b.aug.Crop; p > 0 {
		// torchvision: pad by p, take the window at (top, left) in [0, 2p]; as a shift: -p..p.
		dy, dx = r.IntN(2*p+1)-p, r.IntN(2*p+1)-p
	}
	flip := b.aug.Flip && r.IntN(2) == 1
	for ch := range c {
		lut := &b.lut[ch]
		zero := lut[0]
		plane := src[ch*h*w : (ch+1)*h*w]
		out := dst[ch*h*w : (ch+1)*h*w]
		for y := range h {
			sy := y + dy
			row := out[y*w : (y+1)*w]
			if sy < 0 || sy >= h {
				for x := range row {
					row[x] = zero
				}
				continue
			}
			srow := plane[sy*w : (sy+1)*w]
			for x := range row {
				// The flip mirrors the cropped window: output column x reads window column
				// w-1-x.
				wx := x
				if flip {
					wx = w - 1 - x
				}
				sx := wx + dx
				if sx < 0 || sx >= w {
					row[x] = zero
				} else {
					row[x] = lut[srow[sx]]
				}
			}
		}
	}
}

package unleash

import (
	"errors"
	"fmt"
	"iter"
	"math"

	"github.com/gomlx/compute"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// Batch is a batch of images ([n,C,H,W] flat, float32, normalised as the model expects) and
// their labels.
type Batch struct {
	X      []float32
	Labels []int
}

// Slices returns the batches of size n (the last one may be smaller) of x and labels, in order.
func Slices(x []float32, labels []int, n int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		if n <= 0 || len(labels) == 0 || len(x)%len(labels) != 0 {
			yield(Batch{}, fmt.Errorf("unleash: cannot split %d values and %d labels into batches of %d", len(x), len(labels), n))
			return
		}
		per := len(x) / len(labels)
		for i := 0; i < len(labels); i += n {
			j := min(i+n, len(labels))
			if !yield(Batch{X: x[i*per : j*per], Labels: labels[i:j]}, nil) {
				return
			}
		}
	}
}

// EstimateOptions configure EstimateConstraint. The zero value is the official setting.
type EstimateOptions struct {
	// Keep is the fraction of each layer kept by the random mask; 0 means 0.965.
	Keep float64
	// Seed seeds the random scores (kaiming-uniform, as the official code; it sets no seed).
	Seed uint64
	// Backend runs the model; nil uses NewBackend("").
	Backend compute.Backend
}

// DefaultEstimateKeep is the keep ratio of the official constraint estimate.
const DefaultEstimateKeep = 0.965

// EstimateConstraint estimates the loss constraint c as estimate_loss.py does: every Conv,
// Gemm and MatMul weight gets a random per-layer mask keeping opts.Keep (scores drawn
// kaiming-uniform with opts.Seed, top-k of |score|), and c is the mean cross-entropy of the
// masked model over all the images of batches, in inference mode (BatchNorm running stats),
// weighted by image. The official code feeds the augmented training set.
func EstimateConstraint(m *onnxgraph.Model, batches iter.Seq2[Batch, error], opts EstimateOptions) (float64, error) {
	keep := opts.Keep
	if keep == 0 {
		keep = DefaultEstimateKeep
	}
	to := DefaultOptions(UMAP)
	to.Keep, to.Seed, to.Backend, to.ScoreInit = keep, opts.Seed, opts.Backend, mask.KaimingUniform
	t, err := New(m, to)
	if err != nil {
		return 0, err
	}
	return t.MeanCE(batches)
}

// MeanCE returns the mean cross-entropy over all the images of batches, in inference mode, with
// the trainer's current masks (UMAP) or weights (UM). It is computed in float64 from the
// float32 logits.
func (t *Trainer) MeanCE(batches iter.Seq2[Batch, error]) (float64, error) {
	var sum float64
	var n int
	for b, err := range batches {
		if err != nil {
			return 0, err
		}
		if len(b.Labels) == 0 {
			continue
		}
		if _, _, _, err := t.checkBatch(b.X, b.Labels); err != nil {
			return 0, err
		}
		z, err := t.Logits(b.X)
		if err != nil {
			return 0, err
		}
		k := len(z) / len(b.Labels)
		for i, y := range b.Labels {
			sum += crossEntropyRow(z[i*k:(i+1)*k], y)
		}
		n += len(b.Labels)
	}
	if n == 0 {
		return 0, errors.New("unleash: no images to estimate the constraint on")
	}
	return sum / float64(n), nil
}

// EpochResult is what TrainEpoch measured.
type EpochResult struct {
	LR   float64 // the learning rate used
	Loss float64 // the image-weighted mean of the steps' flooded losses
	CE   float64 // the image-weighted mean of the steps' batch CE
	// Correct is the number of images classified right during the steps (training mode, before
	// each step's update); Correct/Images is the running train accuracy.
	Correct int
	Images  int
	Steps   int
}

// TrainEpoch takes one SGD step per batch at the schedule's rate for epoch (LR(epoch), set once
// per epoch as the official code does). Shuffling and augmentation are the caller's. Keep the
// batch size fixed: each new size compiles the graphs again.
func (t *Trainer) TrainEpoch(batches iter.Seq2[Batch, error], epoch int) (EpochResult, error) {
	r := EpochResult{LR: t.LR(epoch)}
	for b, err := range batches {
		if err != nil {
			return r, err
		}
		s, err := t.Step(b.X, b.Labels, r.LR)
		if err != nil {
			return r, err
		}
		n := len(b.Labels)
		r.Loss += s.Loss * float64(n)
		r.CE += s.CE * float64(n)
		r.Correct += s.Correct
		r.Images += n
		r.Steps++
	}
	if r.Images > 0 {
		r.Loss /= float64(r.Images)
		r.CE /= float64(r.Images)
	}
	return r, nil
}

// crossEntropyRow returns -log softmax(z)[y], in float64.
func crossEntropyRow(z []float32, y int) float64 {
	top := math.Inf(-1)
	for _, v := range z {
		top = math.Max(top, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - top)
	}
	return math.Log(s) + top - float64(z[y])
}

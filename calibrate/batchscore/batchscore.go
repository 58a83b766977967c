// Package batchscore scores a whole dataset with an image classifier: it streams samples from a
// dataset.Reader, preprocesses them as the calibration's spec says, runs fixed-size batches
// through ONNX Runtime and keeps, per sample, only the OOD scores, the predicted class and the
// label. Images are never kept, so memory does not grow with the dataset beyond 8 bytes per
// score and 8 per sample.
//
// Reading and preprocessing run in their own goroutine, filling one batch while ONNX Runtime
// runs the previous one (two Runners, each with its own input tensor).
package batchscore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/score"
	ort "github.com/oodguard/oodguard/runtime"
)

// Options tune Run.
type Options struct {
	Batch    int            // images per ONNX Runtime run; 64 when 0
	Scores   []score.Spec   // the scores to compute; energy(T=1) when empty
	Progress func(done int) // called after each batch with the samples scored so far
	Limit    int            // stop after this many samples; 0 means all
}

// Result holds per-sample outputs, in dataset order.
type Result struct {
	Scores [][]float64 // Scores[i][j]: score Options.Scores[i] of sample j
	Pred   []int32     // predicted class (argmax of the logits)
	Labels []int32     // dataset label, -1 when unlabelled
}

// Len returns the number of samples scored.
func (r *Result) Len() int { return len(r.Pred) }

// Accuracy returns the top-1 accuracy over labelled samples and whether there were any.
func (r *Result) Accuracy() (float64, bool) {
	n, ok := 0, 0
	for i, l := range r.Labels {
		if l < 0 {
			continue
		}
		n++
		if r.Pred[i] == l {
			ok++
		}
	}
	if n == 0 {
		return 0, false
	}
	return float64(ok) / float64(n), true
}

// batch is a Runner whose input the reader filled with n samples.
type batch struct {
	r      *ort.Runner
	n      int
	labels []int32
	err    error
}

// Run scores every sample of r. An unreadable sample stops the run with an error naming it.
func Run(ctx context.Context, clf *ort.Classifier, spec preprocess.Spec, r dataset.Reader, opts Options) (*Result, error) {
	if opts.Batch == 0 {
		opts.Batch = 64
	}
	if opts.Batch < 0 {
		return nil, fmt.Errorf("batchscore: batch size %d must be positive", opts.Batch)
	}
	if len(opts.Scores) == 0 {
		opts.Scores = []score.Spec{{Kind: score.KindEnergy, Temperature: 1}}
	}
	funcs := make([]score.Func, len(opts.Scores))
	for i, s := range opts.Scores {
		f, err := s.Func()
		if err != nil {
			return nil, err
		}
		funcs[i] = f
	}
	pre, err := preprocess.New(spec)
	if err != nil {
		return nil, fmt.Errorf("batchscore: %w", err)
	}
	c, h, w := spec.Channels, spec.Height, spec.Width
	if err := clf.CheckInput(c, h, w); err != nil {
		return nil, fmt.Errorf("batchscore: preprocessing gives %dx%dx%d: %w", c, h, w, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	free := make(chan *ort.Runner, 2)
	full := make(chan batch, 2)
	filled := make(chan struct{})
	var runners []*ort.Runner
	defer func() {
		// Stop the reader and wait for it before the runners' tensors go away.
		cancel()
		for range full {
		}
		<-filled
		for _, rn := range runners {
			rn.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		rn, err := clf.NewRunner(opts.Batch)
		if err != nil {
			return nil, err
		}
		runners = append(runners, rn)
		free <- rn
	}
	newRunner := func(n int) (*ort.Runner, error) { // for the last, partial batch
		rn, err := clf.NewRunner(n)
		if err == nil {
			runners = append(runners, rn)
		}
		return rn, err
	}

	go func() {
		defer close(filled)
		fill(ctx, r, pre, opts.Batch, opts.Limit, free, full)
	}()

	res := &Result{Scores: make([][]float64, len(funcs))}
	k := clf.Shape().Classes
	for b := range full {
		if b.err != nil {
			return nil, b.err
		}
		rn := b.r
		if b.n < opts.Batch {
			// A partial batch: copy its samples into a runner of its own size.
			small, err := newRunner(b.n)
			if err != nil {
				return nil, err
			}
			copy(small.Input(), rn.Input()[:small.Batch()*pre.Len()])
			rn = small
		}
		logits, err := rn.Run()
		if err != nil {
			return nil, err
		}
		for j := 0; j < b.n; j++ {
			z := logits[j*k : (j+1)*k]
			for i, f := range funcs {
				s, err := f(z)
				if err != nil {
					return nil, fmt.Errorf("batchscore: sample %d: %w", res.Len(), err)
				}
				res.Scores[i] = append(res.Scores[i], s)
			}
			res.Pred = append(res.Pred, int32(argmax(z)))
		}
		res.Labels = append(res.Labels, b.labels...)
		if opts.Progress != nil {
			opts.Progress(res.Len())
		}
		if b.n == opts.Batch {
			free <- b.r
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// fill reads and preprocesses samples into free runners and hands them on; it closes full at
// the end of the data or on the first error (sent as a batch with err set).
func fill(ctx context.Context, r dataset.Reader, pre *preprocess.Preprocessor, size, limit int, free chan *ort.Runner, full chan<- batch) {
	defer close(full)
	per := pre.Len()
	read := 0
	for {
		var rn *ort.Runner
		select {
		case <-ctx.Done():
			return
		case rn = <-free:
		}
		b := batch{r: rn, labels: make([]int32, 0, size)}
		in := rn.Input()
		send := func(b batch) bool {
			select {
			case full <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for b.n < size && (limit <= 0 || read < limit) {
			s, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				send(batch{err: fmt.Errorf("batchscore: %w", err)})
				return
			}
			if err := pre.Process(in[b.n*per:(b.n+1)*per], s.Image); err != nil {
				send(batch{err: fmt.Errorf("batchscore: %s: %w", s.Name, err)})
				return
			}
			b.labels = append(b.labels, int32(s.Label))
			b.n++
			read++
		}
		if b.n > 0 && !send(b) {
			return
		}
		if b.n < size {
			return
		}
	}
}

func argmax(z []float32) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}

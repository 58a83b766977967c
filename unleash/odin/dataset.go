package odin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
)

// DatasetOptions tune Dataset.
type DatasetOptions struct {
	Batch    int            // images per run; 64 when 0. The last batch is padded to this size.
	Limit    int            // stop after this many samples; 0 means all
	Progress func(done int) // called after each batch with the samples scored so far
}

// Dataset scores every sample of r, preprocessed as spec says (the spec whose Std the scorer
// was given), in dataset order. An unreadable sample stops it with an error naming the sample.
func (s *Scorer) Dataset(ctx context.Context, r dataset.Reader, spec preprocess.Spec, opts DatasetOptions) ([]float64, error) {
	pre, err := preprocess.New(spec)
	if err != nil {
		return nil, err
	}
	if sh := spec.InputShape(); sh != [3]int{s.m.Channels, s.m.Height, s.m.Width} {
		return nil, fmt.Errorf("odin: preprocessing gives %dx%dx%d images, the model takes %dx%dx%d",
			sh[0], sh[1], sh[2], s.m.Channels, s.m.Height, s.m.Width)
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 64
	}
	per := pre.Len()
	x := make([]float32, batch*per)
	var out []float64
	n := 0 // images in the current batch
	flush := func() error {
		if n == 0 {
			return nil
		}
		clear(x[n*per:]) // pad: images are scored independently (inference mode, summed loss)
		sc, err := s.Scores(x)
		if err != nil {
			return err
		}
		out = append(out, sc[:n]...)
		n = 0
		if opts.Progress != nil {
			opts.Progress(len(out))
		}
		return nil
	}
	for opts.Limit <= 0 || len(out)+n < opts.Limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		smp, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := pre.Process(x[n*per:(n+1)*per], smp.Image); err != nil {
			return nil, fmt.Errorf("%s: %w", smp.Name(), err)
		}
		if n++; n == batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// Package odin computes the ODIN out-of-distribution score (Liang et al., ICLR 2018) of an ONNX
// image classifier, as the Unleashing Mask code does it (utils/get_scores.py, method doc §5):
//
//  1. z = model(x), x in [0,1] pixel space; ŷ = argmax z.
//  2. loss = CE(z/T, ŷ); g = ∂loss/∂x; s = +1 where g >= 0, else -1 (a zero gradient gives +1,
//     as torch.ge(g, 0) does).
//  3. x' = x - ε·s: one step that lowers the loss, i.e. raises the softmax of the predicted
//     class. No clamp.
//  4. score = max softmax(model(x')/T). Higher means more in-distribution.
//
// The defaults are the code's: T = 1000, ε = 0.0014.
//
// # Normalisation outside the model
//
// The official models normalise inside forward, so ε is a step in [0,1] pixel space. oodguard
// normalises before the model (device/preprocess: x_n = (x - mean_c)/std_c), so the Scorer
// works on normalised inputs and takes the preprocessing std: a pixel step ε is a step ε/std_c
// in channel c of the normalised input. The sign is the same in both spaces (∂loss/∂x =
// ∂loss/∂x_n / std_c, std_c > 0), so x'_n = x_n - (ε/std_c)·s gives exactly the normalised
// image of the official x'. This is also what the original ODIN code (gradient divided by std)
// and OpenOOD do.
//
// # What differs from the official code
//
//   - The loss is summed over the batch instead of averaged: the per-image gradients are then
//     independent of the batch size (the mean only divides them by N, which leaves every sign
//     unchanged in exact arithmetic, but could flush tiny gradients to zero in float32).
//   - The score is computed in float64 from the float32 logits of x'.
//
// ODIN needs the gradient with respect to the input, which ONNX Runtime cannot give, so the
// model runs on GoMLX through unleash/onnxgraph. It is a host-side score: the edge daemon
// cannot compute it and never links this package.
package odin

import (
	"errors"
	"fmt"
	"math"

	"github.com/gomlx/compute"
	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// Defaults of the official code (utils/get_scores.py).
const (
	DefaultTemperature = 1000
	DefaultEpsilon     = 0.0014
)

// Options configure a Scorer. DefaultOptions gives the official values.
type Options struct {
	// Temperature is T, > 0.
	Temperature float64
	// Epsilon is the perturbation step ε in [0,1] pixel space, >= 0 (0: no perturbation,
	// the score is then the temperature-scaled MSP).
	Epsilon float64
	// Std is the per-channel standard deviation the preprocessing divided the pixels by before
	// the model (device/preprocess.Spec.Std). Nil means the model takes [0,1] pixels (std 1).
	// One value for every channel, or a single value for all.
	Std []float32
	// Backend runs the model; nil uses unleash.NewBackend("") (pure Go).
	Backend compute.Backend
}

// DefaultOptions returns T = 1000, ε = 0.0014, no normalisation.
func DefaultOptions() Options {
	return Options{Temperature: DefaultTemperature, Epsilon: DefaultEpsilon}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if !(o.Temperature > 0) || math.IsInf(o.Temperature, 0) {
		return fmt.Errorf("odin: temperature %v must be finite and > 0", o.Temperature)
	}
	if !(o.Epsilon >= 0) || math.IsInf(o.Epsilon, 0) {
		return fmt.Errorf("odin: epsilon %v must be finite and >= 0", o.Epsilon)
	}
	for _, s := range o.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("odin: std %v must be finite and > 0", s)
		}
	}
	return nil
}

// Name returns how reports name the score: "odin(T=1000,eps=0.0014)".
func (o Options) Name() string {
	return fmt.Sprintf("odin(T=%g,eps=%g)", o.Temperature, o.Epsilon)
}

// Scorer computes ODIN scores of batches. It is not safe for concurrent use.
type Scorer struct {
	m    *onnxgraph.Model
	opts Options
	exec *graph.Exec
	step []float32 // ε/std_c per channel: the step in normalised space
}

// ErrInput is returned for an input that is not a whole number of images of the model's size.
var ErrInput = errors.New("odin: input size does not match the model")

// New prepares a Scorer for model m.
func New(m *onnxgraph.Model, opts Options) (*Scorer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := m.CheckInference(); err != nil {
		return nil, fmt.Errorf("odin: %w", err)
	}
	if len(opts.Std) > 1 && len(opts.Std) != m.Channels {
		return nil, fmt.Errorf("odin: %d std values for a %d-channel model", len(opts.Std), m.Channels)
	}
	b := opts.Backend
	if b == nil {
		var err error
		if b, err = unleash.NewBackend(""); err != nil {
			return nil, err
		}
	}
	s := &Scorer{m: m, opts: opts, step: make([]float32, m.Channels)}
	for c := range s.step {
		std := float32(1)
		switch len(opts.Std) {
		case 1:
			std = opts.Std[0]
		case m.Channels:
			std = opts.Std[c]
		}
		s.step[c] = float32(opts.Epsilon / float64(std))
	}
	// The ONNX Runtime backend cannot run the input-dilated convolution that the gradient of a
	// strided convolution needs, and runs GoMLX's max-pool gradient slowly (and wrongly where
	// windows overlap, see onnxgraph's TestMaxPoolExplicitPadded): give those explicit
	// gradients, and subsample what they do not handle (all exact, see onnxgraph.Options).
	_, sub := b.(*onnxbackend.Backend)
	var err error
	s.exec, err = graph.NewExec(b, func(x *graph.Node) []*graph.Node { return s.build(x, sub) })
	if err != nil {
		return nil, fmt.Errorf("odin: %w", err)
	}
	return s, nil
}

// Options returns the scorer's options.
func (s *Scorer) Options() Options { return s.opts }

// build returns the clean and the perturbed logits of x.
func (s *Scorer) build(x *graph.Node, explicit bool) []*graph.Node {
	bo := onnxgraph.Options{Mode: onnxgraph.Inference, SubsampleStrided: explicit,
		ExplicitConvGradients: explicit, ExplicitMaxPoolGradients: explicit}
	z, _ := s.m.BuildWith(x, nil, bo)
	k := z.Shape().Dimensions[1]
	t := graph.Scalar(x.Graph(), z.DType(), s.opts.Temperature)
	yhat := graph.StopGradient(graph.OneHot(graph.ArgMax(z, -1), k, z.DType()))
	// Sum over the batch of CE(z/T, ŷ): per-image gradients, independent of N.
	loss := graph.Neg(graph.ReduceAllSum(graph.Mul(yhat, graph.LogSoftmax(graph.Div(z, t), -1))))
	g := graph.Gradient(loss, x)[0]
	one := graph.OnesLike(g)
	sign := graph.Where(graph.GreaterOrEqual(g, graph.ZerosLike(g)), one, graph.Neg(one))
	step := graph.Reshape(graph.Const(x.Graph(), s.step), 1, s.m.Channels, 1, 1)
	xp := graph.Sub(x, graph.Mul(step, sign))
	zp, _ := s.m.BuildWith(xp, nil, bo)
	return []*graph.Node{z, zp}
}

// Result is what Run computed for a batch.
type Result struct {
	Scores    []float64 // ODIN score per image
	Logits    []float32 // clean logits, [n,K] flat
	Perturbed []float32 // logits of the perturbed images, [n,K] flat
}

// Run computes the ODIN scores of a batch x of normalised images ([n,C,H,W] flat). Each new
// batch size compiles the graph once more: keep it fixed (pad the last batch).
func (s *Scorer) Run(x []float32) (*Result, error) {
	per := s.m.Channels * s.m.Height * s.m.Width
	if len(x) == 0 || len(x)%per != 0 {
		return nil, fmt.Errorf("%w: %d values is not a whole number of %dx%dx%d images", ErrInput, len(x), s.m.Channels, s.m.Height, s.m.Width)
	}
	n := len(x) / per
	xt := tensors.FromFlatDataAndDimensions(x, n, s.m.Channels, s.m.Height, s.m.Width)
	out, err := s.exec.Call(xt)
	if err != nil {
		return nil, fmt.Errorf("odin: %w", err)
	}
	defer func() {
		for _, o := range out {
			_ = o.FinalizeAll()
		}
	}()
	r := &Result{}
	if r.Logits, err = tensors.CopyFlatData[float32](out[0]); err != nil {
		return nil, err
	}
	if r.Perturbed, err = tensors.CopyFlatData[float32](out[1]); err != nil {
		return nil, err
	}
	k := len(r.Perturbed) / n
	r.Scores = make([]float64, n)
	for i := range n {
		v, err := MaxSoftmax(r.Perturbed[i*k:(i+1)*k], s.opts.Temperature)
		if err != nil {
			return nil, fmt.Errorf("odin: image %d: %w", i, err)
		}
		r.Scores[i] = v
	}
	return r, nil
}

// Scores returns the ODIN scores of a batch (see Run).
func (s *Scorer) Scores(x []float32) ([]float64, error) {
	r, err := s.Run(x)
	if err != nil {
		return nil, err
	}
	return r.Scores, nil
}

// MaxSoftmax returns max_k softmax(z/T)_k = 1/Σ_k exp((z_k - max z)/T), in float64.
func MaxSoftmax(z []float32, t float64) (float64, error) {
	if len(z) == 0 {
		return 0, errors.New("no logits")
	}
	top := math.Inf(-1)
	for _, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, fmt.Errorf("logits are not finite: %v", v)
		}
		top = math.Max(top, float64(v))
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp((float64(v) - top) / t)
	}
	return 1 / sum, nil
}

package unleash

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// Method is the Unleashing Mask variant.
type Method int

const (
	// UMAP learns a per-layer top-k mask over frozen weights (edge-popup scores).
	UMAP Method = iota
	// UM fine-tunes the dense weights; the mask only served to estimate the constraint.
	UM
)

func (m Method) String() string {
	switch m {
	case UMAP:
		return "umap"
	case UM:
		return "um"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Options configure a Trainer. DefaultOptions gives the official code's values.
type Options struct {
	Method Method

	// Keep is the fraction of each masked layer's weights UMAP keeps, in (0,1]; the official
	// prune_rate (0.8). Exactly n - int((1-Keep)*n) weights of an n-weight layer are kept.
	Keep float64
	// ScoreInit is how UMAP scores start: mask.KaimingUniform (official: a random mask) or
	// mask.Magnitude (|w|: the initial mask keeps the largest weights).
	ScoreInit mask.Init
	// Seed seeds the score initialisation.
	Seed uint64

	// Constraint is the flooding level c of L = |CE - c| + c, with CE the batch-mean
	// cross-entropy; c = 0 gives plain cross-entropy. Must be >= 0.
	Constraint float64

	// LR is the base learning rate of the cosine schedule (LR(epoch)); Step takes the rate to use.
	LR float64
	// Epochs is the length of the cosine schedule.
	Epochs int
	// Momentum and WeightDecay are SGD's (PyTorch semantics: coupled decay g += wd*p, then
	// v = momentum*v + g, p -= lr*v; no dampening, no Nesterov). The decay also applies to scores.
	Momentum, WeightDecay float64

	// BatchNormEval keeps BatchNormalization in inference mode while training (running stats,
	// no updates). The official code trains in train mode (false); models whose BatchNorm was
	// folded into the convolutions have no BatchNorm either way.
	BatchNormEval bool

	// Backend runs the graphs; nil uses NewBackend("") (pure Go).
	Backend compute.Backend
	// ConvGradient says how training graphs differentiate convolutions.
	ConvGradient ConvGradient
}

// ConvGradient selects how convolutions are differentiated.
type ConvGradient int

const (
	// ConvGradientAuto uses ConvGradientExplicit on the ONNX Runtime backend, which runs
	// GoMLX's kernel gradient slowly and cannot run the input-dilated convolution of a strided
	// convolution's input gradient, and ConvGradientNative elsewhere.
	ConvGradientAuto ConvGradient = iota
	// ConvGradientNative uses GoMLX's gradients of the backend's convolutions.
	ConvGradientNative
	// ConvGradientSubsample computes a strided convolution as stride 1 then a subsample (about
	// stride² the FLOPs on those layers; the gradient needs no input dilation) and otherwise
	// uses GoMLX's gradients.
	ConvGradientSubsample
	// ConvGradientExplicit gives 2-D convolutions explicit gradients (onnxgraph
	// Options.ExplicitConvGradients): matrix products for the kernel, and for the input of a
	// strided convolution one stride-1 convolution per phase of the stride. Strided
	// convolutions it does not handle (dilated ones) are subsampled. Max pools whose windows
	// tile the input and training-mode BatchNorm get explicit gradients too
	// (Options.ExplicitMaxPoolGradients, ExplicitBatchNormGradients).
	ConvGradientExplicit
)

// DefaultOptions returns the official code's settings for method: keep 0.8, random
// kaiming-uniform scores, lr 0.1 cosine over 100 epochs, momentum 0.9, weight decay 1e-4.
// The constraint must still be set (see EstimateConstraint).
func DefaultOptions(method Method) Options {
	return Options{
		Method: method, Keep: 0.8, ScoreInit: mask.KaimingUniform, Seed: 1,
		LR: 0.1, Epochs: 100, Momentum: 0.9, WeightDecay: 1e-4,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Method != UMAP && o.Method != UM {
		return fmt.Errorf("unleash: unknown method %d", int(o.Method))
	}
	if o.Method == UMAP {
		if err := mask.CheckKeep(o.Keep); err != nil {
			return fmt.Errorf("unleash: %w", err)
		}
		if o.ScoreInit != mask.KaimingUniform && o.ScoreInit != mask.Magnitude {
			return fmt.Errorf("unleash: unknown score init %d", int(o.ScoreInit))
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"constraint", o.Constraint}, {"learning rate", o.LR}, {"momentum", o.Momentum}, {"weight decay", o.WeightDecay}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("unleash: %s %v must be finite and >= 0", f.name, f.v)
		}
	}
	if o.Epochs < 0 {
		return fmt.Errorf("unleash: epochs %d must be >= 0", o.Epochs)
	}
	return nil
}

// ErrLabel is returned for a label outside [0, classes).
var ErrLabel = errors.New("label out of range")

// CosineLR is the official schedule, set once per epoch: 0.5*(1+cos(pi*epoch/epochs))*base.
func CosineLR(base float64, epoch, epochs int) float64 {
	if epochs <= 0 {
		return base
	}
	return 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/float64(epochs))) * base
}

// LR returns the learning rate of epoch (0-based) under the options' cosine schedule.
func (t *Trainer) LR(epoch int) float64 { return CosineLR(t.opts.LR, epoch, t.opts.Epochs) }

// tensorState is one trained tensor: its value and SGD momentum buffer.
type tensorState struct {
	name  string
	dims  []int
	value *tensors.Tensor
	mom   *tensors.Tensor
}

// Trainer runs UM or UMAP on an imported model. It is not safe for concurrent use.
type Trainer struct {
	m       *onnxgraph.Model
	opts    Options
	backend compute.Backend
	classes int

	// params holds the current value of every parameter (weights, biases, BN affine and
	// running stats) that is not trained (UM's trained parameters are in trained only), by
	// initializer name; order lists every parameter in m.Params order.
	params map[string]*tensors.Tensor
	order  []string
	// trained lists the tensors SGD updates: UMAP the scores (by weight name), UM the
	// parameters other than BN running stats.
	trained []*tensorState
	// masked lists the UMAP layers, their masks and the selector that computes them.
	masked []*maskedLayer
	sel    mask.Selector

	stepExec, gradExec, evalExec *graph.Exec
	steps                        int
}

type maskedLayer struct {
	p     *onnxgraph.Param
	score *tensorState
	mask  *tensors.Tensor // 1 kept, 0 pruned: rewritten in place when the scores changed
	keep  int
	dirty bool // scores changed since mask was computed
}

// New prepares a Trainer for model m.
func New(m *onnxgraph.Model, opts Options) (*Trainer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// A model exported in training mode (BatchNorm with batch statistics, Dropout on) trains as
	// any other (its Dropout passes values through, as in the eval-mode export, which has none);
	// Export writes it in inference mode.
	b := opts.Backend
	if b == nil {
		var err error
		if b, err = NewBackend(""); err != nil {
			return nil, err
		}
	}
	t := &Trainer{m: m, opts: opts, backend: b, classes: m.Classes, params: map[string]*tensors.Tensor{}}
	for _, p := range m.Params {
		t.order = append(t.order, p.Name)
		if opts.Method == UM && p.Role != onnxgraph.RoleBNMean && p.Role != onnxgraph.RoleBNVar {
			continue // trained: its value is the tensorState's (paramInput), not held twice
		}
		data, err := m.Values(p.Name)
		if err != nil {
			return nil, fmt.Errorf("unleash: %w", err)
		}
		v, err := t.newTensor(data, p.Dims)
		if err != nil {
			return nil, err
		}
		t.params[p.Name] = v
	}
	switch opts.Method {
	case UMAP:
		for i, p := range m.Maskable() {
			s := make([]float32, p.Size())
			switch opts.ScoreInit {
			case mask.KaimingUniform:
				if err := mask.KaimingUniformScores(mask.NewRand(opts.Seed, uint64(i)), p.FanIn, s); err != nil {
					return nil, fmt.Errorf("unleash: layer %s: %w", p.Name, err)
				}
			case mask.Magnitude:
				w, err := m.Values(p.Name)
				if err != nil {
					return nil, fmt.Errorf("unleash: %w", err)
				}
				mask.MagnitudeScores(w, s)
			}
			st, err := t.newState(p.Name, p.Dims, s)
			if err != nil {
				return nil, err
			}
			t.trained = append(t.trained, st)
			m, err := t.newTensor(nil, p.Dims)
			if err != nil {
				return nil, err
			}
			l := &maskedLayer{p: p, score: st, mask: m, dirty: true}
			pruned, err := mask.Pruned(p.Size(), opts.Keep)
			if err != nil {
				return nil, err
			}
			l.keep = p.Size() - pruned
			t.masked = append(t.masked, l)
		}
		if len(t.masked) == 0 {
			return nil, errors.New("unleash: the model has no Conv, Gemm or MatMul weight to mask")
		}
	case UM:
		for _, p := range m.Params {
			if p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar {
				continue
			}
			data, err := m.Values(p.Name)
			if err != nil {
				return nil, fmt.Errorf("unleash: %w", err)
			}
			st, err := t.newState(p.Name, p.Dims, data)
			if err != nil {
				return nil, err
			}
			t.trained = append(t.trained, st)
		}
		if len(t.trained) == 0 {
			return nil, errors.New("unleash: the model has no parameter to fine-tune")
		}
		// The trained values now live in the backend's buffers, and Export takes them from there:
		// the model's decoded copy is dead weight while training (full-width VGG-11: 112 MB). It
		// reads them from its file again where they are needed (another trainer, the input
		// written unchanged); a model that Parse read keeps them.
		names := make([]string, len(t.trained))
		for i, s := range t.trained {
			names[i] = s.name
		}
		if _, err := m.Release(names...); err != nil {
			return nil, fmt.Errorf("unleash: %w", err)
		}
	}
	// Loading a large model leaves garbage as large as its weights (the decoder's copies): give
	// it back to the OS now, before training adds the backend's buffers on top (full-width
	// VGG-11: about 220 MB of peak RSS).
	debug.FreeOSMemory()
	var err error
	if t.stepExec, err = graph.NewExec(b, t.stepGraph(false)); err != nil {
		return nil, fmt.Errorf("unleash: %w", err)
	}
	if t.gradExec, err = graph.NewExec(b, t.stepGraph(true)); err != nil {
		return nil, fmt.Errorf("unleash: %w", err)
	}
	if t.evalExec, err = graph.NewExec(b, t.evalGraph); err != nil {
		return nil, fmt.Errorf("unleash: %w", err)
	}
	return t, nil
}

func (t *Trainer) newState(name string, dims []int, v []float32) (*tensorState, error) {
	value, err := t.newTensor(v, dims)
	if err != nil {
		return nil, err
	}
	mom, err := t.newTensor(nil, dims)
	if err != nil {
		return nil, err
	}
	return &tensorState{name: name, dims: dims, value: value, mom: mom}, nil
}

// newTensor returns a float32 tensor of dims holding a copy of v (zeros for nil). On a backend
// with shared buffers (ONNX Runtime, Go) it lives in the backend's memory from the start, so the
// values are held once: a local tensor is copied into the backend on first use and held twice
// until the garbage collector frees the local copy (on a full-width VGG-11 that is hundreds of MB).
func (t *Trainer) newTensor(v []float32, dims []int) (*tensors.Tensor, error) {
	tt, err := tensors.FromShapeForBackend(t.backend, 0, shapes.Make(dtypes.Float32, dims...))
	if err != nil {
		return nil, fmt.Errorf("unleash: %w", err)
	}
	if v != nil {
		if err := tensors.MutableFlatData(tt, func(f []float32) { copy(f, v) }); err != nil {
			return nil, fmt.Errorf("unleash: %w", err)
		}
	}
	return tt, nil
}

// Options returns the trainer's options.
func (t *Trainer) Options() Options { return t.opts }

// Model returns the imported model.
func (t *Trainer) Model() *onnxgraph.Model { return t.m }

// Backend returns the backend the trainer runs on.
func (t *Trainer) Backend() compute.Backend { return t.backend }

// Steps returns how many SGD steps have been taken.
func (t *Trainer) Steps() int { return t.steps }

// Masked returns the names of the masked weights (UMAP; nil for UM), in graph order.
func (t *Trainer) Masked() []string {
	var out []string
	for _, l := range t.masked {
		out = append(out, l.p.Name)
	}
	return out
}

func (t *Trainer) layer(name string) (*maskedLayer, error) {
	for _, l := range t.masked {
		if l.p.Name == name {
			return l, nil
		}
	}
	return nil, fmt.Errorf("unleash: %q is not a masked weight", name)
}

// SetScores sets the scores of masked weight name (UMAP).
func (t *Trainer) SetScores(name string, s []float32) error {
	l, err := t.layer(name)
	if err != nil {
		return err
	}
	if len(s) != l.p.Size() {
		return fmt.Errorf("unleash: %s has %d weights, got %d scores", name, l.p.Size(), len(s))
	}
	v, err := t.newTensor(s, l.p.Dims)
	if err != nil {
		return err
	}
	release(l.score.value)
	l.score.value = v
	l.dirty = true
	return nil
}

// Scores returns a copy of the scores of masked weight name (UMAP).
func (t *Trainer) Scores(name string) ([]float32, error) {
	l, err := t.layer(name)
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](l.score.value)
}

// Mask returns a copy of the current mask of masked weight name (UMAP): 1 kept, 0 pruned.
func (t *Trainer) Mask(name string) ([]float32, error) {
	l, err := t.layer(name)
	if err != nil {
		return nil, err
	}
	if err := t.updateMasks(); err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](l.mask)
}

// Value returns a copy of the current value of parameter name: for UM the fine-tuned value,
// for UMAP the (frozen) dense weight; BatchNorm running stats as updated by training.
func (t *Trainer) Value(name string) ([]float32, error) {
	if t.opts.Method == UM {
		for _, s := range t.trained {
			if s.name == name {
				return tensors.CopyFlatData[float32](s.value)
			}
		}
	}
	v, ok := t.params[name]
	if !ok {
		return nil, fmt.Errorf("unleash: no parameter %q", name)
	}
	return tensors.CopyFlatData[float32](v)
}

// updateMasks recomputes the masks of layers whose scores changed: the per-layer top-k of
// |score|, computed in Go (quickselect) between steps, as GetSubnet does on every forward. The
// scores are read and the mask written where they lie (on ONNX Runtime, its buffers): no copies.
func (t *Trainer) updateMasks() error {
	for _, l := range t.masked {
		if !l.dirty {
			continue
		}
		var topErr error
		err := tensors.ConstFlatData(l.score.value, func(s []float32) {
			topErr = tensors.MutableFlatData(l.mask, func(m []float32) {
				_, topErr = t.sel.TopK(s, t.opts.Keep, m)
			})
		})
		if err == nil {
			err = topErr
		}
		if err != nil {
			return fmt.Errorf("unleash: layer %s: %w", l.p.Name, err)
		}
		l.dirty = false
	}
	return nil
}

// Export writes the model: the input file with each masked weight replaced by W*mask (UMAP) or
// each fine-tuned parameter replaced (UM), and the BatchNorm running stats replaced when
// training updated them. Nothing else in the file changes, except in a model exported in
// training mode, whose BatchNorm and Dropout nodes are written in inference mode
// (onnxgraph.Model.MarshalInference): they then normalise with the running statistics as
// training updated them.
func (t *Trainer) Export(w io.Writer) error {
	repl, err := t.Replacements()
	if err != nil {
		return err
	}
	return t.m.WriteInference(w, repl)
}

// Replacements returns the initializer values Export writes, by name.
func (t *Trainer) Replacements() (map[string][]float32, error) {
	repl := map[string][]float32{}
	switch t.opts.Method {
	case UMAP:
		if err := t.updateMasks(); err != nil {
			return nil, err
		}
		for _, l := range t.masked {
			w, err := tensors.CopyFlatData[float32](t.params[l.p.Name])
			if err != nil {
				return nil, err
			}
			if err := tensors.ConstFlatData(l.mask, func(m []float32) {
				for i := range w {
					w[i] *= m[i]
				}
			}); err != nil {
				return nil, err
			}
			repl[l.p.Name] = w
		}
	case UM:
		for _, s := range t.trained {
			v, err := tensors.CopyFlatData[float32](s.value)
			if err != nil {
				return nil, err
			}
			repl[s.name] = v
		}
	}
	if t.steps > 0 && !t.opts.BatchNormEval {
		for _, p := range t.m.Params {
			if p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar {
				v, err := tensors.CopyFlatData[float32](t.params[p.Name])
				if err != nil {
					return nil, err
				}
				repl[p.Name] = v
			}
		}
	}
	return repl, nil
}

// checkBatch validates a batch and returns its tensors.
func (t *Trainer) checkBatch(x []float32, labels []int) (*tensors.Tensor, *tensors.Tensor, int, error) {
	per := t.m.Channels * t.m.Height * t.m.Width
	if len(x) == 0 || len(x)%per != 0 {
		return nil, nil, 0, fmt.Errorf("unleash: %d input values is not a whole number of %dx%dx%d images", len(x), t.m.Channels, t.m.Height, t.m.Width)
	}
	n := len(x) / per
	xt := tensors.FromFlatDataAndDimensions(x, n, t.m.Channels, t.m.Height, t.m.Width)
	if labels == nil {
		return xt, nil, n, nil
	}
	if len(labels) != n {
		return nil, nil, 0, fmt.Errorf("unleash: %d labels for %d images", len(labels), n)
	}
	if t.classes == 0 {
		// The file does not say: run the model once to find K.
		z, err := t.logits(xt, n)
		if err != nil {
			return nil, nil, 0, err
		}
		t.classes = len(z) / n
	}
	y := make([]int32, n)
	for i, l := range labels {
		if l < 0 || l >= t.classes {
			return nil, nil, 0, fmt.Errorf("unleash: image %d: %w: %d, the model has %d classes", i, ErrLabel, l, t.classes)
		}
		y[i] = int32(l)
	}
	return xt, tensors.FromFlatDataAndDimensions(y, n), n, nil
}

// StepResult is what one training step measured (before its update).
type StepResult struct {
	Loss float64 // flooded loss |CE - c| + c
	CE   float64 // batch-mean cross-entropy
	// Correct is how many images of the batch the model (in training mode) classified right:
	// argmax of the logits, the first on ties, equal to the label.
	Correct int
}

// Step takes one SGD step on a batch: x holds the images ([n,C,H,W] flat), labels their classes,
// lr the learning rate (see LR for the schedule).
func (t *Trainer) Step(x []float32, labels []int, lr float64) (StepResult, error) {
	if lr < 0 || math.IsNaN(lr) || math.IsInf(lr, 0) {
		return StepResult{}, fmt.Errorf("unleash: learning rate %v must be finite and >= 0", lr)
	}
	if labels == nil {
		return StepResult{}, errors.New("unleash: no labels")
	}
	xt, yt, _, err := t.checkBatch(x, labels)
	if err != nil {
		return StepResult{}, err
	}
	if err := t.updateMasks(); err != nil {
		return StepResult{}, err
	}
	out, err := t.stepExec.Call(t.stepInputs(xt, yt, lr)...)
	if err != nil {
		return StepResult{}, fmt.Errorf("unleash: step: %w", err)
	}
	res, err := t.applyStep(out)
	if err != nil {
		return StepResult{}, err
	}
	t.steps++
	return res, nil
}

// Gradients is the loss and the gradients of one batch, without an update.
type Gradients struct {
	Loss, CE float64
	// Trained holds the gradient of every trained tensor, by name: UMAP the score gradients
	// (straight-through: sign(s) * dL/dw_eff * w), UM the parameter gradients. No weight decay.
	Trained map[string][]float32
	// Effective holds, for UMAP, dL/dw_eff of every masked weight (w_eff = w*mask).
	Effective map[string][]float32
}

// Gradients computes the loss and gradients of a batch as Step would, without changing anything.
func (t *Trainer) Gradients(x []float32, labels []int) (*Gradients, error) {
	if labels == nil {
		return nil, errors.New("unleash: no labels")
	}
	xt, yt, _, err := t.checkBatch(x, labels)
	if err != nil {
		return nil, err
	}
	if err := t.updateMasks(); err != nil {
		return nil, err
	}
	out, err := t.gradExec.Call(t.stepInputs(xt, yt, 0)...)
	if err != nil {
		return nil, fmt.Errorf("unleash: gradients: %w", err)
	}
	defer func() {
		for _, o := range out {
			release(o)
		}
	}()
	g := &Gradients{Trained: map[string][]float32{}}
	g.Loss, g.CE = scalar(out[0]), scalar(out[1])
	k := 2 + 2*len(t.trained) + t.numBNStats()
	for _, s := range t.trained {
		if g.Trained[s.name], err = tensors.CopyFlatData[float32](out[k]); err != nil {
			return nil, err
		}
		k++
	}
	if t.opts.Method == UMAP {
		g.Effective = map[string][]float32{}
		for _, l := range t.masked {
			if g.Effective[l.p.Name], err = tensors.CopyFlatData[float32](out[k]); err != nil {
				return nil, err
			}
			k++
		}
	}
	return g, nil
}

// Logits returns the model's logits on x in inference mode (BatchNorm running stats), with the
// current masks (UMAP) or weights (UM): [n,K] flat.
func (t *Trainer) Logits(x []float32) ([]float32, error) {
	xt, _, n, err := t.checkBatch(x, nil)
	if err != nil {
		return nil, err
	}
	if err := t.updateMasks(); err != nil {
		return nil, err
	}
	return t.logits(xt, n)
}

func (t *Trainer) logits(xt *tensors.Tensor, n int) ([]float32, error) {
	out, err := t.evalExec.Call(t.evalInputs(xt)...)
	if err != nil {
		return nil, fmt.Errorf("unleash: logits: %w", err)
	}
	defer release(out[0])
	z, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, err
	}
	if t.classes == 0 {
		t.classes = len(z) / n
	}
	return z, nil
}

func scalar(t *tensors.Tensor) float64 {
	v, _ := tensors.CopyFlatData[float32](t)
	return float64(v[0])
}

func (t *Trainer) numBNStats() int {
	if t.opts.BatchNormEval {
		return 0
	}
	return len(t.bnStats())
}

// bnStats returns the BatchNorm running-stat initializer names, in graph order.
func (t *Trainer) bnStats() []string {
	var out []string
	for _, p := range t.m.Params {
		if p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar {
			out = append(out, p.Name)
		}
	}
	return out
}

// Graph inputs, in order: x, labels, lr, constraint; every parameter value (t.order); every
// trained tensor's value and momentum; every UMAP mask.
func (t *Trainer) stepInputs(x, y *tensors.Tensor, lr float64) []any {
	in := []any{x, y, float32(lr), float32(t.opts.Constraint)}
	for _, name := range t.order {
		in = append(in, t.paramInput(name))
	}
	for _, s := range t.trained {
		in = append(in, s.value, s.mom)
	}
	for _, l := range t.masked {
		in = append(in, l.mask)
	}
	return in
}

// release frees a tensor the trainer no longer uses.
func release(t *tensors.Tensor) {
	if t != nil {
		_ = t.FinalizeAll()
	}
}

// paramInput returns the current value of parameter name: UM's trained value for the
// parameters it trains (the step graph reads those through the trained inputs), else params'.
func (t *Trainer) paramInput(name string) *tensors.Tensor {
	if v, ok := t.params[name]; ok {
		return v
	}
	for _, s := range t.trained {
		if s.name == name {
			return s.value
		}
	}
	return nil
}

// Eval inputs: x, every parameter value (UM: the trained value), every UMAP mask.
func (t *Trainer) evalInputs(x *tensors.Tensor) []any {
	in := []any{x}
	for _, name := range t.order {
		in = append(in, t.paramInput(name))
	}
	for _, l := range t.masked {
		in = append(in, l.mask)
	}
	return in
}

// Step outputs: loss, ce, every trained tensor's new value and momentum, every updated BN
// running stat (bnStats order); the gradient graph then adds the trained gradients and, for
// UMAP, the effective-weight gradients; last, the number of correct predictions.
func (t *Trainer) applyStep(out []*tensors.Tensor) (StepResult, error) {
	res := StepResult{Loss: scalar(out[0]), CE: scalar(out[1]), Correct: int(scalar(out[len(out)-1]))}
	release(out[0])
	release(out[1])
	release(out[len(out)-1])
	k := 2
	for _, s := range t.trained {
		release(s.value)
		release(s.mom)
		s.value, s.mom = out[k], out[k+1]
		k += 2
	}
	if !t.opts.BatchNormEval {
		for _, name := range t.bnStats() {
			release(t.params[name])
			t.params[name] = out[k]
			k++
		}
	}
	for _, l := range t.masked {
		l.dirty = true
	}
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return res, fmt.Errorf("unleash: loss is %v", res.Loss)
	}
	return res, nil
}

// values builds the map of parameter nodes given the graph inputs of the parameters.
func (t *Trainer) paramNodes(ins []*graph.Node) map[string]*graph.Node {
	v := map[string]*graph.Node{}
	for i, name := range t.order {
		v[name] = ins[i]
	}
	return v
}

// stepGraph returns the graph function of a training step; withGrads adds the gradients to
// the outputs (and the update is still computed, but Gradients ignores it).
func (t *Trainer) stepGraph(withGrads bool) func([]*graph.Node) []*graph.Node {
	return func(ins []*graph.Node) []*graph.Node {
		x, y, lr, c := ins[0], ins[1], ins[2], ins[3]
		k := 4
		values := t.paramNodes(ins[k : k+len(t.order)])
		k += len(t.order)
		vals := make([]*graph.Node, len(t.trained))
		moms := make([]*graph.Node, len(t.trained))
		for i := range t.trained {
			vals[i], moms[i] = ins[k], ins[k+1]
			k += 2
		}
		var wrt []*graph.Node // the nodes to differentiate with respect to
		var weights []*graph.Node
		switch t.opts.Method {
		case UMAP:
			for i, l := range t.masked {
				w := values[l.p.Name]
				eff := graph.Mul(w, ins[k+i])
				values[l.p.Name] = eff
				wrt = append(wrt, eff)
				weights = append(weights, w)
			}
		case UM:
			for i, s := range t.trained {
				values[s.name] = vals[i]
			}
			wrt = vals
		}
		bo := t.buildOptions()
		logits, updates := t.m.BuildWith(x, values, bo)
		ce := crossEntropy(logits, y)
		loss := graph.Add(graph.Abs(graph.Sub(ce, c)), c)
		grads := graph.Gradient(loss, wrt...)
		if t.opts.Method == UMAP {
			eff := grads
			grads = make([]*graph.Node, len(eff))
			for i := range eff {
				// Straight-through: dL/ds = sign(s) * (dL/dw_eff * w), sign(0) = 0.
				grads[i] = graph.Mul(graph.Sign(vals[i]), graph.Mul(eff[i], weights[i]))
			}
			wrt = eff // reuse: the effective-weight gradients for the outputs below
		}
		out := []*graph.Node{loss, ce}
		mom := graph.Scalar(x.Graph(), dtypes.Float32, t.opts.Momentum)
		wd := graph.Scalar(x.Graph(), dtypes.Float32, t.opts.WeightDecay)
		for i := range t.trained {
			g := graph.Add(grads[i], graph.Mul(wd, vals[i]))
			v := graph.Add(graph.Mul(mom, moms[i]), g)
			p := graph.Sub(vals[i], graph.Mul(lr, v))
			out = append(out, p, v)
		}
		if !t.opts.BatchNormEval {
			byName := map[string]*graph.Node{}
			for _, u := range updates {
				byName[u.Mean], byName[u.Var] = u.NewMean, u.NewVar
			}
			for _, name := range t.bnStats() {
				v, ok := byName[name]
				if !ok {
					v = values[name] // a BN whose stats are shared or unused: unchanged
				}
				out = append(out, v)
			}
		}
		if withGrads {
			out = append(out, grads...)
			if t.opts.Method == UMAP {
				out = append(out, wrt...)
			}
		}
		// Last: the number of correct predictions (StepResult.Correct).
		hit := graph.Equal(graph.ArgMax(logits, 1, dtypes.Int32), y)
		return append(out, graph.ReduceAllSum(graph.ConvertDType(hit, dtypes.Float32)))
	}
}

func (t *Trainer) evalGraph(ins []*graph.Node) *graph.Node {
	x := ins[0]
	values := t.paramNodes(ins[1 : 1+len(t.order)])
	k := 1 + len(t.order)
	for i, l := range t.masked {
		values[l.p.Name] = graph.Mul(values[l.p.Name], ins[k+i])
	}
	logits, _ := t.m.Build(x, values, onnxgraph.Inference)
	return logits
}

// buildOptions returns how training graphs build the model: the BatchNorm mode and the
// convolution gradients of Options.ConvGradient.
func (t *Trainer) buildOptions() onnxgraph.Options {
	bo := onnxgraph.Options{Mode: onnxgraph.Training}
	if t.opts.BatchNormEval {
		bo.Mode = onnxgraph.Inference
	}
	mode := t.opts.ConvGradient
	if mode == ConvGradientAuto {
		mode = ConvGradientNative
		if isONNXBackend(t.backend) {
			mode = ConvGradientExplicit
		}
	}
	switch mode {
	case ConvGradientSubsample:
		bo.SubsampleStrided = true
	case ConvGradientExplicit:
		bo.ExplicitConvGradients, bo.ExplicitMaxPoolGradients, bo.ExplicitBatchNormGradients = true, true, true
		bo.SubsampleStrided = true
	}
	return bo
}

// crossEntropy returns the batch mean of -log softmax(logits)[y]; y is int32 [N].
func crossEntropy(logits, y *graph.Node) *graph.Node {
	k := logits.Shape().Dimensions[1]
	logp := graph.LogSoftmax(logits, -1)
	onehot := graph.OneHot(y, k, logits.DType())
	return graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(onehot, logp), -1)))
}

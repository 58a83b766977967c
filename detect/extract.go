package detect

import (
	"errors"
	"fmt"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	ort "github.com/yalue/onnxruntime_go"

	rt "github.com/oodguard/oodguard/runtime"
)

// Extractor runs a model's features copy (WithFeatures) under ONNX Runtime: one run gives the
// logits and the penultimate features of a batch. Its tensors are allocated once. It is not safe
// for concurrent use.
type Extractor struct {
	sess              *ort.DynamicAdvancedSession
	in, logits, feats *ort.Tensor[float32]
	batch, image      int // images per run, values per image
	dim, classes      int
	inputs, outputs   []ort.Value
	closed            bool
}

// NewExtractor opens the model's features copy for batches of n images with the session
// options of opts (threads, provider). runtime.Init must have been called. The model's input
// must be float32 [N, ...] with every dimension but the batch fixed.
func (m *Model) NewExtractor(n int, opts rt.Options) (*Extractor, error) {
	if n <= 0 {
		return nil, fmt.Errorf("detect: batch size %d must be positive", n)
	}
	if rt.LibraryPath() == "" {
		return nil, errors.New("detect: ONNX Runtime is not initialised (call runtime.Init or runtime.Setup first)")
	}
	in, shape, fixed, err := m.imageInput()
	if err != nil {
		return nil, err
	}
	if fixed > 0 && fixed != int64(n) {
		return nil, fmt.Errorf("detect: the model's input %q has a fixed batch size of %d, cannot run batches of %d", in, fixed, n)
	}
	data, err := m.WithFeatures()
	if err != nil {
		return nil, err
	}
	so, err := rt.NewSessionOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	defer so.Destroy()
	x := &Extractor{batch: n, dim: m.Head.Dim, classes: m.Head.Classes, image: 1}
	for _, d := range shape {
		x.image *= int(d)
	}
	if x.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, []string{in}, []string{m.Head.Logits, FeaturesOutput}, so); err != nil {
		return nil, fmt.Errorf("detect: ONNX Runtime refuses the features copy: %w", err)
	}
	full := append([]int64{int64(n)}, shape...)
	if x.in, err = ort.NewEmptyTensor[float32](ort.NewShape(full...)); err == nil {
		if x.logits, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(x.classes))); err == nil {
			x.feats, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(x.dim)))
		}
	}
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("detect: tensors: %w", err)
	}
	x.inputs = []ort.Value{x.in}
	x.outputs = []ort.Value{x.logits, x.feats}
	return x, nil
}

// imageInput returns the name of the graph's one non-initializer input, its shape without the
// batch axis, and the batch size when it is fixed (else 0).
func (m *Model) imageInput() (string, []int64, int64, error) {
	g := m.proto.GetGraph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var name string
	var shape []int64
	var fixed int64
	count := 0
	for _, v := range g.GetInput() {
		if inits[v.GetName()] {
			continue
		}
		count++
		name = v.GetName()
		tt := v.GetType().GetTensorType()
		if tt == nil || tt.GetElemType() != int32(onnx.TensorProto_FLOAT) {
			return "", nil, 0, fmt.Errorf("%w: input %q is not a float32 tensor", ErrUnsupported, name)
		}
		dims := tt.GetShape().GetDim()
		if len(dims) < 2 {
			return "", nil, 0, fmt.Errorf("%w: input %q has rank %d, want [N, ...]", ErrUnsupported, name, len(dims))
		}
		fixed = dims[0].GetDimValue()
		shape = nil
		for i, d := range dims[1:] {
			if d.GetDimValue() <= 0 {
				return "", nil, 0, fmt.Errorf("%w: input %q has a dynamic dimension %d", ErrUnsupported, name, i+1)
			}
			shape = append(shape, d.GetDimValue())
		}
	}
	if count != 1 {
		return "", nil, 0, fmt.Errorf("%w: the model has %d inputs, want 1", ErrUnsupported, count)
	}
	return name, shape, fixed, nil
}

// Batch returns the number of images per run.
func (x *Extractor) Batch() int { return x.batch }

// Input returns the input tensor's memory, batch images in row-major order, to fill before Run.
func (x *Extractor) Input() []float32 { return x.in.GetData() }

// Run runs the batch and returns the logits (batch×K) and the features (batch×D). The slices
// are reused by the next Run.
func (x *Extractor) Run() (logits, feats []float32, err error) {
	if x.closed {
		return nil, nil, errors.New("detect: extractor is closed")
	}
	if err := x.sess.Run(x.inputs, x.outputs); err != nil {
		return nil, nil, fmt.Errorf("detect: run the features copy: %w", err)
	}
	return x.logits.GetData(), x.feats.GetData(), nil
}

// Images streams preprocessed images: it calls yield with n images (x holds n images in the
// model's input layout, n at most the extractor's batch) and their labels (n values, or nil),
// and returns yield's first error.
type Images func(yield func(x []float32, n int, labels []int) error) error

// Pass returns the Pass that runs each batch of images through the extractor and yields its
// features; a short batch is padded with zeros, and only its own features are yielded.
func (x *Extractor) Pass(images Images) Pass {
	return func(yield func([]float32, []int) error) error {
		return images(func(img []float32, n int, labels []int) error {
			if n < 1 || n > x.batch {
				return fmt.Errorf("a batch of %d images for an extractor of %d", n, x.batch)
			}
			if len(img) != n*x.image {
				return fmt.Errorf("%d values for %d images of %d", len(img), n, x.image)
			}
			dst := x.in.GetData()
			copy(dst, img)
			clear(dst[len(img):])
			_, feats, err := x.Run()
			if err != nil {
				return err
			}
			return yield(feats[:n*x.dim], labels)
		})
	}
}

// Close releases the session and tensors.
func (x *Extractor) Close() error {
	x.closed = true
	var errs []error
	for _, t := range []*ort.Tensor[float32]{x.in, x.logits, x.feats} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	x.in, x.logits, x.feats = nil, nil, nil
	if x.sess != nil {
		errs = append(errs, x.sess.Destroy())
		x.sess = nil
	}
	return errors.Join(errs...)
}

package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"

	ort "github.com/yalue/onnxruntime_go"
	"go.uber.org/zap"
)

// Options configure a session.
type Options struct {
	IntraOpThreads int             // threads inside one operator; 0 lets ONNX Runtime choose
	InterOpThreads int             // threads across operators; 0 lets ONNX Runtime choose
	Provider       ProviderOptions // execution provider; CPU when empty
	Logger         *zap.Logger     // nil logs nothing
}

// MaxThreads is the most intra- or inter-op threads a session may ask for: 4 per core, at least
// 16. More only slows ONNX Runtime down, and an absurd count (100,000) makes it start thousands
// of threads and gigabytes of stacks before anything runs.
func MaxThreads() int { return max(16, 4*goruntime.NumCPU()) }

// MaxInputBytes bounds one batch's input tensor; MaxBatch bounds the images in a batch.
const (
	MaxInputBytes = 1 << 30
	MaxBatch      = 1 << 16
)

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return fmt.Errorf("runtime: thread counts must not be negative (intra %d, inter %d)", o.IntraOpThreads, o.InterOpThreads)
	}
	if m := MaxThreads(); o.IntraOpThreads > m || o.InterOpThreads > m {
		return fmt.Errorf("runtime: %d threads is more than %d (4 per core on this %d-core machine, at least 16)",
			max(o.IntraOpThreads, o.InterOpThreads), m, goruntime.NumCPU())
	}
	return o.Provider.Validate()
}

// CheckBatch reports whether batches of n images of c×h×w fit the bounds (MaxBatch,
// MaxInputBytes), with the largest batch that would.
func CheckBatch(n, c, h, w int) error {
	if n <= 0 {
		return fmt.Errorf("runtime: batch size %d must be positive", n)
	}
	per := int64(c) * int64(h) * int64(w) * 4
	most := min(int64(MaxBatch), MaxInputBytes/max(per, 1))
	if int64(n) > most {
		return fmt.Errorf("runtime: a batch of %d images of %dx%dx%d is too large: at most %d (%d images, %d MiB of input per batch)",
			n, c, h, w, most, MaxBatch, MaxInputBytes>>20)
	}
	return nil
}

// Classifier is an opened image classifier. It is safe for concurrent use; each Runner is not.
type Classifier struct {
	path     string
	sha256   string
	info     ModelInfo
	shape    ClassifierShape
	provider Provider
	meta     map[string]string
	sess     *ort.DynamicAdvancedSession
}

// Inspect reads a model's inputs and outputs without checking what kind of model it is.
// Init must have been called.
func Inspect(path string) (ModelInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("runtime: read model: %w", err)
	}
	info, err := inspectData(data)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("runtime: model %s: %w", path, err)
	}
	return info, nil
}

func inspectData(data []byte) (ModelInfo, error) {
	if !initialized() {
		return ModelInfo{}, errors.New("ONNX Runtime is not initialised (call runtime.Init or runtime.Setup first)")
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("not a valid ONNX model: %w", err)
	}
	return ModelInfo{Inputs: infoFromORT(ins), Outputs: infoFromORT(outs)}, nil
}

func initialized() bool { return LibraryPath() != "" }

// Open loads the image classifier at path. It refuses, with ErrNotClassifier, a model that does
// not have one float32 [N,C,H,W] input and one float32 [N,K] output (besides which it may have
// one float32 [N] score output, see ClassifierShape), and a provider that the library lacks
// unless opts.Provider.FallbackToCPU is set.
func Open(path string, opts Options) (*Classifier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: read model: %w", err)
	}
	info, err := inspectData(data)
	if err != nil {
		return nil, fmt.Errorf("runtime: model %s: %w", path, err)
	}
	shape, err := info.ClassifierShape()
	if err != nil {
		return nil, fmt.Errorf("runtime: model %s: %w", path, err)
	}
	if err := checkInferenceBatchNorm(data); err != nil {
		return nil, fmt.Errorf("runtime: model %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	c := &Classifier{path: path, sha256: hex.EncodeToString(sum[:]), info: info, shape: shape, provider: ProviderCPU}

	sess, err := newSession(data, shape, opts)
	if errors.Is(err, ErrProviderUnavailable) && opts.Provider.FallbackToCPU {
		log.Warn("execution provider unavailable, falling back to CPU", zap.String("provider", string(opts.Provider.Name)), zap.Error(err))
		opts.Provider = ProviderOptions{}
		sess, err = newSession(data, shape, opts)
	} else if err == nil && opts.Provider.Name != "" {
		c.provider = opts.Provider.Name
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: model %s: %w", path, err)
	}
	c.sess = sess
	if c.meta, err = readMetadata(sess); err != nil {
		c.Close()
		return nil, fmt.Errorf("runtime: model %s: metadata: %w", path, err)
	}
	log.Info("model opened", zap.String("path", path), zap.String("sha256", c.sha256),
		zap.Stringer("shape", shape), zap.String("provider", string(c.provider)),
		zap.Int("intra_op_threads", opts.IntraOpThreads), zap.Int("inter_op_threads", opts.InterOpThreads))
	return c, nil
}

// NewSessionOptions returns ONNX Runtime session options with the threads and provider of opts.
// The caller destroys them.
func NewSessionOptions(opts Options) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if opts.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("inter-op threads: %w", err)
		}
	}
	if err := opts.Provider.apply(so); err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}

func newSession(data []byte, shape ClassifierShape, opts Options) (*ort.DynamicAdvancedSession, error) {
	so, err := NewSessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	outs := []string{shape.Output}
	if shape.Score != "" {
		outs = append(outs, shape.Score)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{shape.Input}, outs, so)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return sess, nil
}

// readMetadata returns the model's custom metadata (metadata_props).
func readMetadata(sess *ort.DynamicAdvancedSession) (map[string]string, error) {
	md, err := sess.GetModelMetadata()
	if err != nil {
		return nil, err
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// Metadata returns the value of the model's custom metadata key (ONNX metadata_props), and
// whether the model has it. detect records the detector it wrote into a graph there.
func (c *Classifier) Metadata(key string) (string, bool) {
	v, ok := c.meta[key]
	return v, ok
}

// Path returns the model file's path.
func (c *Classifier) Path() string { return c.path }

// SHA256 returns the hex sha256 of the model file as it was loaded.
func (c *Classifier) SHA256() string { return c.sha256 }

// Info returns the model's inputs and outputs.
func (c *Classifier) Info() ModelInfo { return c.info }

// Shape returns the classifier's input and output shape.
func (c *Classifier) Shape() ClassifierShape { return c.shape }

// Provider returns the execution provider the session runs on.
func (c *Classifier) Provider() Provider { return c.provider }

// CheckInput reports whether images of channels x height x width fit the model's input.
func (c *Classifier) CheckInput(channels, height, width int) error {
	s := c.shape
	if channels != s.Channels || height != s.Height || width != s.Width {
		return fmt.Errorf("runtime: model %s takes %dx%dx%d (CxHxW) images, not %dx%dx%d",
			c.path, s.Channels, s.Height, s.Width, channels, height, width)
	}
	return nil
}

// Close releases the session. Runners must be closed first.
func (c *Classifier) Close() error {
	if c.sess == nil {
		return nil
	}
	err := c.sess.Destroy()
	c.sess = nil
	return err
}

// Runner runs batches of a fixed size through a classifier. Its input and output tensors are
// allocated once; Run makes no allocation. A Runner is not safe for concurrent use: give each
// goroutine its own.
type Runner struct {
	c       *Classifier
	batch   int
	in, out *ort.Tensor[float32]
	score   *ort.Tensor[float32] // the score output, [batch]; nil when the model has none
	binding *ort.IoBinding
}

// NewRunner returns a Runner for batches of n images.
func (c *Classifier) NewRunner(n int) (*Runner, error) {
	s := c.shape
	if err := CheckBatch(n, s.Channels, s.Height, s.Width); err != nil {
		return nil, err
	}
	if s.Batch > 0 && n != s.Batch {
		return nil, fmt.Errorf("runtime: model %s has a fixed batch size of %d, cannot run batches of %d", c.path, s.Batch, n)
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(s.Channels), int64(s.Height), int64(s.Width)))
	if err != nil {
		return nil, fmt.Errorf("runtime: input tensor: %w", err)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(s.Classes)))
	if err != nil {
		in.Destroy()
		return nil, fmt.Errorf("runtime: output tensor: %w", err)
	}
	r := &Runner{c: c, batch: n, in: in, out: out}
	if s.Score != "" {
		if r.score, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(n))); err != nil {
			r.Close()
			return nil, fmt.Errorf("runtime: score tensor: %w", err)
		}
	}
	if r.binding, err = c.sess.CreateIoBinding(); err != nil {
		r.Close()
		return nil, fmt.Errorf("runtime: io binding: %w", err)
	}
	if err := r.binding.BindInput(s.Input, in); err != nil {
		r.Close()
		return nil, fmt.Errorf("runtime: bind input %s: %w", s.Input, err)
	}
	if err := r.binding.BindOutput(s.Output, out); err != nil {
		r.Close()
		return nil, fmt.Errorf("runtime: bind output %s: %w", s.Output, err)
	}
	if r.score != nil {
		if err := r.binding.BindOutput(s.Score, r.score); err != nil {
			r.Close()
			return nil, fmt.Errorf("runtime: bind output %s: %w", s.Score, err)
		}
	}
	return r, nil
}

// Batch returns the number of images per run.
func (r *Runner) Batch() int { return r.batch }

// Classes returns the number of logits per image.
func (r *Runner) Classes() int { return r.c.shape.Classes }

// Input returns the input tensor's memory, [batch,C,H,W] in row-major order, to fill before Run.
func (r *Runner) Input() []float32 { return r.in.GetData() }

// SetInput copies x into the input tensor; x must hold exactly batch*C*H*W values.
func (r *Runner) SetInput(x []float32) error {
	dst := r.in.GetData()
	if len(x) != len(dst) {
		s := r.c.shape
		return fmt.Errorf("runtime: input has %d values, model %s wants %d (%dx%dx%dx%d)",
			len(x), r.c.path, len(dst), r.batch, s.Channels, s.Height, s.Width)
	}
	copy(dst, x)
	return nil
}

// Run runs the model on the input tensor and returns the logits, [batch,K] in row-major order.
// The slice is reused by the next Run; Scores holds the score output of the same run.
func (r *Runner) Run() ([]float32, error) {
	if err := r.c.sess.RunWithBinding(r.binding); err != nil {
		return nil, fmt.Errorf("runtime: run %s: %w", r.c.path, err)
	}
	return r.out.GetData(), nil
}

// Scores returns the score output of the last Run, [batch], or nil when the model has no score
// output (ClassifierShape.Score). The slice is reused by the next Run.
func (r *Runner) Scores() []float32 {
	if r.score == nil {
		return nil
	}
	return r.score.GetData()
}

// Close releases the runner's tensors.
func (r *Runner) Close() error {
	var errs []error
	if r.binding != nil {
		errs = append(errs, r.binding.Destroy())
		r.binding = nil
	}
	if r.in != nil {
		errs = append(errs, r.in.Destroy())
		r.in = nil
	}
	if r.out != nil {
		errs = append(errs, r.out.Destroy())
		r.out = nil
	}
	if r.score != nil {
		errs = append(errs, r.score.Destroy())
		r.score = nil
	}
	return errors.Join(errs...)
}

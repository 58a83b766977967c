// Package arch builds freshly initialised image classifiers as ONNX files, so that
// unleash/onnxgraph can import them into GoMLX, the unleash Trainer can train them from scratch,
// and the trained file is an ordinary ONNX classifier that ONNX Runtime (and the daemon) runs.
//
// Every model takes float32 [N,C,H,W] (batch axis dynamic, named "N"), gives [N,K] logits, uses
// opset 13 and keeps its BatchNormalization nodes (epsilon 1e-5, momentum 0.9, PyTorch's
// defaults), so that training can run them in train mode and update their running statistics.
//
// The architectures are those of testdata/make_models.py:
//
//   - CNN28 (SmallCNN): conv3x3(w)-BN-ReLU-maxpool2, conv3x3(2w)-BN-ReLU-maxpool2,
//     conv3x3/2(4w)-BN-ReLU, global average pool, fully connected. w = 16 is the reference.
//   - ResNet (SmallResNet, a CIFAR-style ResNet): stem conv3x3(w)-BN-ReLU, three stages of basic
//     blocks at widths w, 2w, 4w (the first block of stages 2 and 3 has stride 2), a 1x1
//     convolution + BN projection on every shortcut whose shape changes, global average pool,
//     fully connected. Blocks (1,1,1) at w = 8 is testdata's resnet32.onnx; (3,3,3) at w = 16
//     is ResNet-20.
//   - DenseNet (DenseNet3 of the Unleashing Mask code, method doc §1.1, the paper's model):
//     normalisation by the CIFAR-10 mean and std inside the model, stem conv3x3(2k), three dense
//     blocks of n = (depth-4)/6 bottleneck layers (BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k),
//     concatenated to their input), transitions BN-ReLU-conv1x1(c*reduction)-avgpool2 between
//     them, BN-ReLU, global average pool (avg_pool2d(8) at 32x32), fully connected. BatchNorm is
//     non-affine (its scale 1 and bias 0 are constants, not parameters); no dropout. Width is the
//     growth rate k (12 when 0), Depth the depth (100 when 0), reduction 0.5: DenseNet-BC-100.
//
// Initialisation follows the Unleashing Mask code (method doc §1.1) and PyTorch: convolutions
// kaiming-normal with fan_in (std sqrt(2/fan_in)), no bias; the fully connected layer PyTorch's
// nn.Linear default, weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BatchNorm scale 1,
// bias 0, running mean 0, running variance 1. Values are drawn from PCG seeded with
// (Config.Seed, layer index): the same config gives the same bytes.
package arch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// Names of the architectures.
const (
	CNN28    = "cnn28"
	ResNet   = "resnet"
	DenseNet = "densenet"
)

// Names lists the architectures Build knows.
var Names = []string{CNN28, ResNet, DenseNet}

// Graph input and output names.
const (
	InputName  = "input"
	OutputName = "logits"
)

// ErrArch is returned for an unknown architecture name.
var ErrArch = errors.New("unknown architecture")

// Config says which classifier to build.
type Config struct {
	Arch    string // CNN28 or ResNet
	Classes int    // K, the number of logits; >= 2
	// Input is the image size: channels (1 or 3), height, width (8 to 1024 pixels a side);
	// preprocess.Spec.InputShape gives it.
	Input [3]int
	// Width is the base width w (channels of the first convolution); 16 when 0.
	Width int
	// Blocks is the number of basic blocks in each of the three ResNet stages; (1,1,1) when
	// empty. ResNet only.
	Blocks []int
	// Depth is DenseNet's depth (4 plus a multiple of 6); 100 when 0. DenseNet only.
	Depth int
	// Seed seeds the initialisation.
	Seed uint64
}

// WithDefaults returns c with the zero fields that have defaults filled in.
func (c Config) WithDefaults() Config {
	if c.Width == 0 {
		c.Width = 16
		if c.Arch == DenseNet {
			c.Width = 12
		}
	}
	if c.Arch == DenseNet && c.Depth == 0 {
		c.Depth = 100
	}
	if c.Arch != DenseNet {
		c.Depth = 0
	}
	if c.Arch == ResNet && len(c.Blocks) == 0 {
		c.Blocks = []int{1, 1, 1}
	}
	if c.Arch != ResNet {
		c.Blocks = nil
	}
	return c
}

// Validate reports whether c can be built. Errors name the field.
func (c Config) Validate() error {
	if !slices.Contains(Names, c.Arch) {
		return fmt.Errorf("arch: %w %q (want %s)", ErrArch, c.Arch, strings.Join(Names, " or "))
	}
	if c.Classes < 2 {
		return fmt.Errorf("arch: classes %d: a classifier needs at least 2", c.Classes)
	}
	if ch := c.Input[0]; ch != 1 && ch != 3 {
		return fmt.Errorf("arch: input channels %d: want 1 or 3", ch)
	}
	if h, w := c.Input[1], c.Input[2]; h < 8 || w < 8 || h > 1024 || w > 1024 {
		return fmt.Errorf("arch: input size %dx%d: want 8 to 1024 pixels a side", h, w)
	}
	if c.Width < 1 || c.Width > 1024 {
		return fmt.Errorf("arch: width %d: want 1 to 1024", c.Width)
	}
	if c.Arch == DenseNet {
		if c.Input[0] != 3 {
			return fmt.Errorf("arch: input channels %d: densenet normalises by CIFAR's three channel means inside", c.Input[0])
		}
		if c.Depth < 10 || c.Depth > 250 || (c.Depth-4)%6 != 0 {
			return fmt.Errorf("arch: depth %d: densenet wants 4 plus a multiple of 6, 10 to 250", c.Depth)
		}
		if c.Width > 64 {
			return fmt.Errorf("arch: growth rate (width) %d: want 1 to 64", c.Width)
		}
	}
	if c.Arch == ResNet {
		if len(c.Blocks) != 3 {
			return fmt.Errorf("arch: blocks %v: want one count per stage (3 stages)", c.Blocks)
		}
		for _, b := range c.Blocks {
			if b < 1 || b > 64 {
				return fmt.Errorf("arch: blocks %v: each stage needs 1 to 64 blocks", c.Blocks)
			}
		}
	}
	return nil
}

// String describes the architecture, e.g. "cnn28 w16", "resnet w16 blocks 3,3,3" or
// "densenet w12 depth 100".
func (c Config) String() string {
	s := fmt.Sprintf("%s w%d", c.Arch, c.Width)
	if c.Arch == ResNet {
		b := make([]string, len(c.Blocks))
		for i, n := range c.Blocks {
			b[i] = fmt.Sprint(n)
		}
		s += " blocks " + strings.Join(b, ",")
	}
	if c.Arch == DenseNet {
		s += fmt.Sprintf(" depth %d", c.Depth)
	}
	return s
}

// Build returns the serialized ONNX model of cfg (after WithDefaults), freshly initialised.
func Build(cfg Config) ([]byte, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &graph{seed: cfg.Seed, channels: cfg.Input[0]}
	x := InputName
	w := cfg.Width
	switch cfg.Arch {
	case CNN28:
		x = g.convBN(x, w, 3, 1, true)
		x = g.maxPool2(x)
		x = g.convBN(x, 2*w, 3, 1, true)
		x = g.maxPool2(x)
		x = g.convBN(x, 4*w, 3, 2, true)
	case ResNet:
		x = g.convBN(x, w, 3, 1, true)
		for stage, n := range cfg.Blocks {
			out := w << stage
			for b := range n {
				stride := 1
				if stage > 0 && b == 0 {
					stride = 2
				}
				x = g.basicBlock(x, out, stride)
			}
		}
	case DenseNet:
		x = g.denseNet(x, cfg.Width, cfg.Depth)
	}
	x = g.node("GlobalAveragePool", []string{x}, nil)
	x = g.node("Flatten", []string{x}, []*onnx.AttributeProto{intAttr("axis", 1)})
	g.linear(x, cfg.Classes)
	return g.marshal(cfg)
}

// graph accumulates nodes and initializers. Layers are numbered in the order they are added;
// the number names them and selects their random stream.
type graph struct {
	seed     uint64
	channels int // channels of the current tensor
	layers   int
	values   int
	nodes    []*onnx.NodeProto
	inits    []*onnx.TensorProto
}

func (g *graph) name(prefix string) string {
	g.values++
	return fmt.Sprintf("%s_%d", prefix, g.values)
}

// node adds an op with one output and returns the output's name.
func (g *graph) node(op string, in []string, attrs []*onnx.AttributeProto) string {
	out := g.name(strings.ToLower(op))
	g.nodes = append(g.nodes, &onnx.NodeProto{
		Name: fmt.Sprintf("%s_%d", op, len(g.nodes)), OpType: op, Input: in, Output: []string{out}, Attribute: attrs,
	})
	return out
}

func (g *graph) init(name string, dims []int64, v []float32) string {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	g.inits = append(g.inits, &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw})
	return name
}

// rng returns the random stream of the next layer.
func (g *graph) rng() (*rand.Rand, int) {
	g.layers++
	return rand.New(rand.NewPCG(g.seed, uint64(g.layers))), g.layers
}

// conv adds a bias-free kxk convolution to out channels with padding k/2, kaiming-normal
// (fan_in) initialised.
func (g *graph) conv(x string, out, k, stride int) string {
	r, id := g.rng()
	in := g.channels
	fanIn := in * k * k
	std := math.Sqrt(2 / float64(fanIn))
	wv := make([]float32, out*fanIn)
	for i := range wv {
		wv[i] = float32(r.NormFloat64() * std)
	}
	wName := g.init(fmt.Sprintf("conv%d.weight", id), []int64{int64(out), int64(in), int64(k), int64(k)}, wv)
	p := int64(k / 2)
	g.channels = out
	return g.node("Conv", []string{x, wName}, []*onnx.AttributeProto{
		intsAttr("dilations", 1, 1), intAttr("group", 1), intsAttr("kernel_shape", int64(k), int64(k)),
		intsAttr("pads", p, p, p, p), intsAttr("strides", int64(stride), int64(stride)),
	})
}

// bn adds a BatchNormalization over the current channels: scale 1, bias 0, mean 0, var 1.
func (g *graph) bn(x string) string { return g.batchNorm(x, true) }

// bnNonAffine adds a BatchNormalization without affine parameters (PyTorch's affine=False): its
// scale 1 and bias 0 are constants; the running mean 0 and variance 1 are initializers.
func (g *graph) bnNonAffine(x string) string { return g.batchNorm(x, false) }

// batchNorm adds a BatchNormalization whose scale and bias are parameters (affine) or constants.
func (g *graph) batchNorm(x string, affine bool) string {
	_, id := g.rng()
	c := g.channels
	ones, zeros := make([]float32, c), make([]float32, c)
	for i := range ones {
		ones[i] = 1
	}
	dims := []int64{int64(c)}
	var scale, bias string
	if affine {
		scale = g.init(fmt.Sprintf("bn%d.weight", id), dims, ones)
		bias = g.init(fmt.Sprintf("bn%d.bias", id), dims, zeros)
	} else {
		scale, bias = g.constant(dims, ones), g.constant(dims, zeros)
	}
	in := []string{
		x, scale, bias,
		g.init(fmt.Sprintf("bn%d.running_mean", id), dims, zeros),
		g.init(fmt.Sprintf("bn%d.running_var", id), dims, ones),
	}
	return g.node("BatchNormalization", in, []*onnx.AttributeProto{floatAttr("epsilon", 1e-5), floatAttr("momentum", 0.9)})
}

func (g *graph) relu(x string) string { return g.node("Relu", []string{x}, nil) }

func (g *graph) convBN(x string, out, k, stride int, relu bool) string {
	x = g.bn(g.conv(x, out, k, stride))
	if relu {
		x = g.relu(x)
	}
	return x
}

func (g *graph) maxPool2(x string) string {
	return g.node("MaxPool", []string{x}, []*onnx.AttributeProto{
		intAttr("ceil_mode", 0), intsAttr("kernel_shape", 2, 2), intsAttr("pads", 0, 0, 0, 0), intsAttr("strides", 2, 2),
	})
}

// basicBlock is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1
// convolution + BN when the shape changes.
func (g *graph) basicBlock(x string, out, stride int) string {
	in := g.channels
	y := g.convBN(x, out, 3, stride, true)
	y = g.convBN(y, out, 3, 1, false)
	short := x
	if stride != 1 || in != out {
		g.channels = in
		short = g.convBN(x, out, 1, stride, false)
	}
	return g.relu(g.node("Add", []string{y, short}, nil))
}

// constant adds a Constant node of a float tensor (not an initializer: not a parameter).
func (g *graph) constant(dims []int64, v []float32) string {
	t := &onnx.TensorProto{Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: v}
	return g.node("Constant", nil, []*onnx.AttributeProto{{Name: "value", Type: onnx.AttributeProto_TENSOR, T: t}})
}

// denseNet adds DenseNet3 of the Unleashing Mask code (see the package doc) with growth k.
func (g *graph) denseNet(x string, k, depth int) string {
	mean := []float32{125.3 / 255, 123.0 / 255, 113.9 / 255}
	std := []float32{63.0 / 255, 62.1 / 255, 66.7 / 255}
	x = g.node("Sub", []string{x, g.constant([]int64{1, 3, 1, 1}, mean)}, nil)
	x = g.node("Div", []string{x, g.constant([]int64{1, 3, 1, 1}, std)}, nil)
	n := (depth - 4) / 6
	x = g.conv(x, 2*k, 3, 1)
	for block := range 3 {
		for range n {
			in := g.channels
			y := g.conv(g.relu(g.bnNonAffine(x)), 4*k, 1, 1)
			y = g.conv(g.relu(g.bnNonAffine(y)), k, 3, 1)
			x = g.node("Concat", []string{x, y}, []*onnx.AttributeProto{intAttr("axis", 1)})
			g.channels = in + k
		}
		if block < 2 {
			x = g.conv(g.relu(g.bnNonAffine(x)), g.channels/2, 1, 1)
			x = g.node("AveragePool", []string{x}, []*onnx.AttributeProto{
				intAttr("ceil_mode", 0), intsAttr("kernel_shape", 2, 2), intsAttr("pads", 0, 0, 0, 0), intsAttr("strides", 2, 2),
			})
		}
	}
	return g.relu(g.bnNonAffine(x))
}

// linear adds the classifier: Gemm with transB (PyTorch's nn.Linear layout), default init.
func (g *graph) linear(x string, classes int) {
	r, id := g.rng()
	in := g.channels
	bound := 1 / math.Sqrt(float64(in))
	wv := make([]float32, classes*in)
	for i := range wv {
		wv[i] = float32((2*r.Float64() - 1) * bound)
	}
	bv := make([]float32, classes)
	for i := range bv {
		bv[i] = float32((2*r.Float64() - 1) * bound)
	}
	wName := g.init(fmt.Sprintf("fc%d.weight", id), []int64{int64(classes), int64(in)}, wv)
	bName := g.init(fmt.Sprintf("fc%d.bias", id), []int64{int64(classes)}, bv)
	g.nodes = append(g.nodes, &onnx.NodeProto{
		Name: fmt.Sprintf("Gemm_%d", len(g.nodes)), OpType: "Gemm", Input: []string{x, wName, bName}, Output: []string{OutputName},
		Attribute: []*onnx.AttributeProto{floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transB", 1)},
	})
}

func (g *graph) marshal(cfg Config) ([]byte, error) {
	dim := func(v int) *onnx.TensorShapeProto_Dimension {
		return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}}
	}
	batch := &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	tensor := func(name string, dims ...*onnx.TensorShapeProto_Dimension) *onnx.ValueInfoProto {
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{Dim: dims},
		}}}}
	}
	m := &onnx.ModelProto{
		IrVersion:    7,
		OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: "", Version: 13}},
		ProducerName: "oodguard",
		DocString:    "oodguard arch: " + cfg.String(),
		Graph: &onnx.GraphProto{
			Name:        cfg.Arch,
			Node:        g.nodes,
			Initializer: g.inits,
			Input:       []*onnx.ValueInfoProto{tensor(InputName, batch, dim(cfg.Input[0]), dim(cfg.Input[1]), dim(cfg.Input[2]))},
			Output:      []*onnx.ValueInfoProto{tensor(OutputName, batch, dim(cfg.Classes))},
		},
		MetadataProps: []*onnx.StringStringEntryProto{
			{Key: "oodguard.arch", Value: cfg.String()},
			{Key: "oodguard.seed", Value: fmt.Sprint(cfg.Seed)},
		},
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	return b, nil
}

func intAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func intsAttr(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func floatAttr(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

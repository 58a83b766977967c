package onnxgraph

import (
	"fmt"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads as math
	"github.com/gomlx/gomlx/core/tensors"
	timages "github.com/gomlx/gomlx/core/tensors/images"
	"github.com/gomlx/gomlx/support/exceptions"
)

// panicf panics with a formatted error, the way graph-building functions fail.
var panicf = exceptions.Panicf

// Mode selects how BatchNormalization normalises.
type Mode int

const (
	// Inference normalises with the running statistics (PyTorch eval mode).
	Inference Mode = iota
	// Training normalises with the batch statistics and returns running-stat updates
	// (PyTorch train mode: biased batch variance to normalise, unbiased to update).
	Training
)

// Options configure Build.
type Options struct {
	// Mode selects BatchNormalization's statistics.
	Mode Mode
	// SubsampleStrided computes a strided convolution as a stride-1 convolution followed by a
	// subsample (reshape and slice), and a strided AveragePool by reshaping (window = stride) or
	// stride-1 pooling and a subsample, so that their gradients need neither input dilation nor
	// interior padding (the ONNX Runtime backend has neither). It costs about stride² times the
	// FLOPs on strided convolutions.
	SubsampleStrided bool
	// ExplicitConvGradients gives 2-D convolutions without dilation explicit gradients (see
	// convgrad.go): the kernel gradient as matrix products, the input gradient of strided
	// convolutions as one stride-1 convolution per phase of the stride. The forward pass
	// keeps the native strided convolution. It takes precedence over SubsampleStrided for the
	// convolutions it handles.
	ExplicitConvGradients bool
	// ExplicitMaxPoolGradients gives 2-D max pools whose windows tile the input (kernel =
	// stride, no padding) an explicit gradient (see maxPoolExplicit), with PyTorch's rule for
	// ties: the first maximum of a window in row-major order gets it.
	ExplicitMaxPoolGradients bool
	// ExplicitBatchNormGradients gives training-mode BatchNormalization the closed-form
	// gradient (see batchNormExplicit) instead of GoMLX's differentiation of its parts.
	ExplicitBatchNormGradients bool
}

// BNUpdate is one BatchNormalization's running statistics after a training batch.
type BNUpdate struct {
	Mean, Var       string // the running-stat initializer names
	NewMean, NewVar *Node  // their updated values
}

// Build adds the model to x's graph and returns the logits, [N,K]. x is [N,C,H,W] float32.
// values gives the node to use for a parameter (by initializer name); a parameter missing from
// values is a constant with the file's value. In Training mode it also returns the updated
// running statistics of every BatchNormalization whose statistics are initializers.
//
// Like all graph-building functions it panics on error; the errors name the node.
func (m *Model) Build(x *Node, values map[string]*Node, mode Mode) (logits *Node, updates []BNUpdate) {
	return m.BuildWith(x, values, Options{Mode: mode})
}

// BuildWith is Build with options.
func (m *Model) BuildWith(x *Node, values map[string]*Node, opts Options) (logits *Node, updates []BNUpdate) {
	b := &builder{m: m, g: x.Graph(), values: values, mode: opts.Mode, opts: opts, env: map[string]*Node{m.Input: x}, known: map[string]*constant{}}
	if x.Rank() != 4 || x.Shape().Dimensions[1] != m.Channels || x.Shape().Dimensions[2] != m.Height || x.Shape().Dimensions[3] != m.Width {
		panicf("onnxgraph: input is %s, model takes [N,%d,%d,%d]", x.Shape(), m.Channels, m.Height, m.Width)
	}
	if n := x.Shape().Dimensions[0]; m.Batch > 0 && n != m.Batch {
		panicf("onnxgraph: the model's input %q has a fixed batch size of %d, not %d: use batches of %d (-batch %d), "+
			"or export the model with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={%q: {0: \"N\"}, ...}))",
			m.Input, m.Batch, n, m.Batch, m.Batch, m.Input)
	}
	for _, n := range m.nodes {
		b.node(n)
	}
	out, ok := b.env[m.Output]
	if !ok {
		panicf("onnxgraph: output %q is not computed by any node", m.Output)
	}
	for _, z := range b.zeros { // ties explicit-gradient identities to the output (value 0)
		out = Add(out, z)
	}
	if out.Rank() != 2 {
		panicf("onnxgraph: output %q is %s, want [N,K] logits", m.Output, out.Shape())
	}
	return out, b.updates
}

type builder struct {
	m       *Model
	g       *Graph
	values  map[string]*Node
	mode    Mode
	opts    Options
	env     map[string]*Node
	known   map[string]*constant // shape computations folded on the host (see fold.go)
	updates []BNUpdate
	node0   *onnx.NodeProto
	zeros   []*Node // scalar zeros to add to the output (see convExplicit)
}

func (b *builder) fail(format string, args ...any) {
	n := b.node0
	panicf("onnxgraph: node %q (%s): %s", nodeName(n), n.GetOpType(), fmt.Sprintf(format, args...))
}

// in returns input i of the current node as a graph node.
func (b *builder) in(i int) *Node {
	ins := b.node0.GetInput()
	if i >= len(ins) || ins[i] == "" {
		b.fail("missing input %d", i)
	}
	name := ins[i]
	if v, ok := b.env[name]; ok {
		return v
	}
	if v, ok := b.values[name]; ok {
		b.env[name] = v
		return v
	}
	c, folded := b.known[name]
	ok := folded
	if !ok {
		c, ok = b.m.consts[name]
	}
	if !ok {
		b.fail("input %q is not computed before this node", name)
	}
	var v *Node
	if !c.ints {
		f := c.f32
		if !folded {
			var err error
			if f, err = b.m.floats(name); err != nil { // released values: read again
				b.fail("%v", err)
			}
		}
		v = ConstTensor(b.g, tensors.FromFlatDataAndDimensions(f, c.dims...))
	} else {
		v = ConstTensor(b.g, tensors.FromFlatDataAndDimensions(c.i64, c.dims...))
	}
	b.env[name] = v
	return v
}

// has reports whether the current node has input i.
func (b *builder) has(i int) bool {
	ins := b.node0.GetInput()
	return i < len(ins) && ins[i] != ""
}

// constInts returns input i, which must be a constant integer tensor.
func (b *builder) constInts(i int) []int64 {
	name := b.node0.GetInput()[i]
	c, ok := b.knownInt(name)
	if !ok {
		b.fail("input %q must be a constant integer tensor or a shape computation", name)
	}
	return c.i64
}

func (b *builder) set(v *Node) {
	outs := b.node0.GetOutput()
	b.env[outs[0]] = v
	for _, o := range outs[1:] {
		if o != "" {
			// Extra outputs (BatchNorm training outputs, Dropout mask, MaxPool indices) are not
			// computed: a node that reads one fails with "not computed".
			delete(b.env, o)
		}
	}
}

func (b *builder) node(n *onnx.NodeProto) {
	b.node0 = n
	if b.fold() {
		return
	}
	b.op(n)
	for _, o := range n.GetOutput() {
		if v, ok := b.env[o]; ok && o != "" && !sizeWithin(v.Shape().Dimensions, maxTensorSize) {
			b.fail("output %s is too large", v.Shape())
		}
	}
}

// maxTensorSize bounds the values of any tensor the graph computes (8 GiB of float32), so that a
// corrupt file's absurd pads or shapes fail at once instead of at allocation.
const maxTensorSize = 1 << 31

// sizeWithin reports whether the product of dims is at most limit, without overflowing.
func sizeWithin(dims []int, limit int) bool {
	n := 1
	for _, d := range dims {
		if d < 0 || (d > 0 && n > limit/d) {
			return false
		}
		n *= d
	}
	return n <= limit
}

func (b *builder) op(n *onnx.NodeProto) {
	switch n.GetOpType() {
	case "Constant":
		// Already in m.consts.
	case "Identity", "Dropout":
		b.set(b.in(0))
	case "Cast":
		if to := attrInt(n, "to", 0); to != int(onnx.TensorProto_FLOAT) {
			b.fail("cast of a computed tensor to %s is not supported", onnx.TensorProto_DataType(to))
		}
		b.set(ConvertDType(b.in(0), dtypes.Float32))
	case "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "Gelu":
		b.set(b.activation())
	case "Erf":
		b.set(Erf(b.in(0)))
	case "Sqrt":
		b.set(Sqrt(b.in(0)))
	case "Pow":
		b.set(b.pow())
	case "LayerNormalization":
		b.set(b.layerNorm())
	case "GlobalMaxPool":
		x := b.in(0)
		axes := make([]int, x.Rank()-2)
		for i := range axes {
			axes[i] = i + 2
		}
		b.set(ReduceAndKeep(x, ReduceMax, axes...))
	case "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum":
		b.set(b.reduce())
	case "Concat":
		b.set(b.concat())
	case "Split":
		b.split()
	case "Slice":
		b.set(b.slice())
	case "Transpose":
		b.set(b.transpose())
	case "Unsqueeze", "Squeeze":
		x := b.in(0)
		axes := attrInts(n, "axes")
		if b.has(1) {
			axes = toInts(b.constInts(1))
		}
		b.set(Reshape(x, b.squeezeDims(x.Shape().Dimensions, axes, n.GetOpType() == "Unsqueeze")...))
	case "Gather", "Shape":
		b.fail("only shape computations on known integers are supported")
	case "Relu":
		x := b.in(0)
		// x * [x > 0]: the gradient at 0 is 0, as in PyTorch (Max's would be 1), and both the
		// forward and the backward pass are products, which ONNX Runtime runs about four times
		// faster than Where. (Negative values become -0, which compares equal to 0.)
		b.set(Mul(x, StopGradient(ConvertDType(GreaterThan(x, ScalarZero(x.Graph(), x.DType())), x.DType()))))
	case "Add", "Sub", "Mul", "Div":
		x, y := broadcastPair(b, b.in(0), b.in(1))
		switch n.GetOpType() {
		case "Add":
			b.set(Add(x, y))
		case "Sub":
			b.set(Sub(x, y))
		case "Mul":
			b.set(Mul(x, y))
		case "Div":
			b.set(Div(x, y))
		}
	case "Conv":
		b.set(b.conv())
	case "BatchNormalization":
		b.set(b.batchNorm())
	case "MaxPool":
		b.set(b.pool(true))
	case "AveragePool":
		b.set(b.pool(false))
	case "GlobalAveragePool":
		x := b.in(0)
		axes := make([]int, x.Rank()-2)
		for i := range axes {
			axes[i] = i + 2
		}
		b.set(ReduceAndKeep(x, ReduceMean, axes...))
	case "Flatten":
		x := b.in(0)
		axis := attrInt(n, "axis", 1)
		if axis < 0 {
			axis += x.Rank()
		}
		if axis < 0 || axis > x.Rank() {
			b.fail("axis %d out of range for rank %d", attrInt(n, "axis", 1), x.Rank())
		}
		dims := x.Shape().Dimensions
		outer, inner := 1, 1
		for i, d := range dims {
			if i < axis {
				outer *= d
			} else {
				inner *= d
			}
		}
		b.set(Reshape(x, outer, inner))
	case "Gemm":
		b.set(b.gemm())
	case "MatMul":
		b.set(b.matmul())
	case "Reshape":
		b.set(b.reshape())
	case "Pad":
		b.set(b.pad())
	default:
		b.fail("op is not supported")
	}
}

// broadcastPair applies numpy broadcasting to a binary op's operands.
func broadcastPair(b *builder, x, y *Node) (*Node, *Node) {
	if x.Shape().Equal(y.Shape()) {
		return x, y
	}
	if x.DType() != y.DType() {
		b.fail("operands of different types %s and %s", x.DType(), y.DType())
	}
	r := max(x.Rank(), y.Rank())
	if x.Rank() < r {
		x = ExpandLeftToRank(x, r)
	}
	if y.Rank() < r {
		y = ExpandLeftToRank(y, r)
	}
	dims := make([]int, r)
	for i := range dims {
		dx, dy := x.Shape().Dimensions[i], y.Shape().Dimensions[i]
		switch {
		case dx == dy, dy == 1:
			dims[i] = dx
		case dx == 1:
			dims[i] = dy
		default:
			b.fail("shapes %s and %s do not broadcast", x.Shape(), y.Shape())
		}
	}
	if !equalInts(x.Shape().Dimensions, dims) {
		x = BroadcastToDims(x, dims...)
	}
	if !equalInts(y.Shape().Dimensions, dims) {
		y = BroadcastToDims(y, dims...)
	}
	return x, y
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// spatialPads returns per-spatial-axis (begin, end) paddings from the pads/auto_pad attributes.
func (b *builder) spatialPads(inDims, kernel, strides, dilations []int) [][2]int {
	n := b.node0
	k := len(kernel)
	pads := make([][2]int, k)
	switch ap := attrString(n, "auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		p := attrInts(n, "pads")
		if p != nil && len(p) != 2*k {
			b.fail("pads %v: want %d values", p, 2*k)
		}
		for i := range pads {
			if p != nil {
				pads[i] = [2]int{p[i], p[i+k]}
				if p[i] < 0 || p[i+k] < 0 {
					b.fail("negative pads %v", p)
				}
			}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := range pads {
			out := (inDims[i] + strides[i] - 1) / strides[i]
			total := max(0, (out-1)*strides[i]+(kernel[i]-1)*dilations[i]+1-inDims[i])
			small, big := total/2, total-total/2
			if ap == "SAME_UPPER" {
				pads[i] = [2]int{small, big}
			} else {
				pads[i] = [2]int{big, small}
			}
		}
	default:
		b.fail("auto_pad %q is not supported", ap)
	}
	return pads
}

func onesInts(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

func (b *builder) conv() *Node {
	n := b.node0
	x, w := b.in(0), b.in(1)
	if x.Rank() < 3 || w.Rank() != x.Rank() {
		b.fail("input %s and weight %s: want [N,C,spatial...] and [M,C,kernel...]", x.Shape(), w.Shape())
	}
	groups := attrInt(n, "group", 1)
	if groups < 1 || w.Shape().Dimensions[0]%groups != 0 {
		b.fail("group=%d for a weight %s", groups, w.Shape())
	}
	k := x.Rank() - 2
	kernel := w.Shape().Dimensions[2:]
	if ks := attrInts(n, "kernel_shape"); ks != nil && !equalInts(ks, kernel) {
		b.fail("kernel_shape %v does not match the weight %s", ks, w.Shape())
	}
	if x.Shape().Dimensions[1] != groups*w.Shape().Dimensions[1] {
		b.fail("input has %d channels, weight %s in %d groups wants %d", x.Shape().Dimensions[1], w.Shape(), groups, groups*w.Shape().Dimensions[1])
	}
	strides := attrInts(n, "strides")
	if strides == nil {
		strides = onesInts(k)
	}
	dilations := attrInts(n, "dilations")
	if dilations == nil {
		dilations = onesInts(k)
	}
	if len(strides) != k || len(dilations) != k {
		b.fail("strides %v / dilations %v: want %d values", strides, dilations, k)
	}
	pads := b.spatialPads(x.Shape().Dimensions[2:], kernel, strides, dilations)
	for i := range k {
		span := x.Shape().Dimensions[i+2] + pads[i][0] + pads[i][1]
		if strides[i] < 1 || dilations[i] < 1 || (kernel[i]-1)*dilations[i]+1 > span {
			b.fail("kernel %v, strides %v, dilations %v and pads %v do not fit an input of %v", kernel, strides, dilations, pads, x.Shape().Dimensions[2:])
		}
		// A stride past the padded input gives one output whatever its size: use the smallest
		// such one (the gradients' work grows with the stride).
		strides[i] = min(strides[i], span)
	}
	w, pads = oddKernel(w, kernel, dilations, pads)
	strided := !equalInts(strides, onesInts(k))
	var y *Node
	// Grouped convolutions always take the explicit gradients where they fit: GoMLX
	// differentiates them with one convolution per group.
	if (b.opts.ExplicitConvGradients || groups > 1) && explicitConvFits(x.Shape().Dimensions[2:], w.Shape().Dimensions[2:], strides, dilations, pads) {
		var zero *Node
		y, zero = convExplicit(x, w, strides, pads, groups)
		b.zeros = append(b.zeros, zero)
	} else if strided && b.opts.SubsampleStrided {
		y = Convolve(x, w).ChannelsAxis(timages.ChannelsFirst).DilationPerAxis(dilations...).PaddingPerDim(pads).
			ChannelGroupCount(groups).Done()
		y = subsample(y, strides)
	} else {
		y = Convolve(x, w).ChannelsAxis(timages.ChannelsFirst).StridePerAxis(strides...).
			DilationPerAxis(dilations...).PaddingPerDim(pads).ChannelGroupCount(groups).Done()
	}
	if b.has(2) {
		bias := b.in(2)
		if bias.Rank() != 1 || bias.Shape().Dimensions[0] != w.Shape().Dimensions[0] {
			b.fail("bias %s for %d output channels", bias.Shape(), w.Shape().Dimensions[0])
		}
		dims := onesInts(y.Rank())
		dims[1] = bias.Shape().Dimensions[0]
		y = Add(y, BroadcastToDims(Reshape(bias, dims...), y.Shape().Dimensions...))
	}
	return y
}

// oddKernel works around GoMLX v0.28.8's input gradient of convolutions with an even kernel size,
// which comes out shifted by one pixel (convVJPWrtX pads the reverse convolution for odd kernels
// only). Each even spatial axis of the weight gets one zero tap at its end, and the input one
// more dilation of end padding: the convolution and its output size are the same, and every
// kernel is odd.
func oddKernel(w *Node, kernel, dilations []int, pads [][2]int) (*Node, [][2]int) {
	var cfg []PadAxis
	for i, k := range kernel {
		if k%2 == 1 {
			continue
		}
		if cfg == nil {
			cfg = make([]PadAxis, w.Rank())
			pads = append([][2]int(nil), pads...)
		}
		cfg[i+2] = PadAxis{End: 1}
		pads[i][1] += dilations[i]
	}
	if cfg == nil {
		return w, pads
	}
	return Pad(w, ScalarZero(w.Graph(), w.DType()), cfg...), pads
}

// subsample keeps positions 0, s, 2s, ... of each spatial axis of y ([N,C,spatial...]): the
// output of a strided convolution from the stride-1 one. It uses only edge Pad/Slice and
// Reshape, whose gradients need no interior padding.
func subsample(y *Node, strides []int) *Node {
	for i, s := range strides {
		if s == 1 {
			continue
		}
		y = subsampleAxis(y, i+2, s)
	}
	return y
}

func (b *builder) batchNorm() *Node {
	n := b.node0
	x := b.in(0)
	scale, bias, mean, variance := b.in(1), b.in(2), b.in(3), b.in(4)
	c := x.Shape().Dimensions[1]
	for _, p := range []*Node{scale, bias, mean, variance} {
		if p.Rank() != 1 || p.Shape().Dimensions[0] != c {
			b.fail("parameter %s for %d channels", p.Shape(), c)
		}
	}
	eps := attrFloat(n, "epsilon", 1e-5)
	bshape := onesInts(x.Rank())
	bshape[1] = c
	// [C] as [1,C,1,...]: the binary ops broadcast it, so no activation-sized copy is made.
	bc := func(v *Node) *Node { return Reshape(v, bshape...) }
	if b.mode == Inference {
		// (x - mean) / sqrt(var + eps) * scale + bias, as PyTorch computes it. (Rsqrt has no
		// gradient in GoMLX.)
		return Add(Mul(Div(Sub(x, bc(mean)), bc(Sqrt(AddScalar(variance, eps)))), bc(scale)), bc(bias))
	}
	axes := []int{0}
	count := x.Shape().Dimensions[0]
	for i := 2; i < x.Rank(); i++ {
		axes = append(axes, i)
		count *= x.Shape().Dimensions[i]
	}
	if count < 2 {
		b.fail("training-mode batch statistics need more than one value per channel (got %s)", x.Shape())
	}
	var y, bMean, bVar *Node
	if b.opts.ExplicitBatchNormGradients {
		var zero *Node
		y, bMean, bVar, zero = batchNormExplicit(x, scale, bias, axes, eps)
		b.zeros = append(b.zeros, zero)
	} else {
		bMean = ReduceMean(x, axes...)
		xc := Sub(x, bc(bMean))
		bVar = ReduceMean(Square(xc), axes...)
		// (x - mean) * (scale / sqrt(var + eps)) + bias: the per-channel factor is computed on
		// [C], so the activation-sized work is one product and one sum.
		y = Add(Mul(xc, bc(Div(scale, Sqrt(AddScalar(bVar, eps))))), bc(bias))
	}
	ins := n.GetInput()
	if b.m.params[ins[3]] != nil && b.m.params[ins[4]] != nil {
		mom := attrFloat(n, "momentum", 0.9)
		unbiased := MulScalar(StopGradient(bVar), float64(count)/float64(count-1))
		b.updates = append(b.updates, BNUpdate{
			Mean:    ins[3],
			Var:     ins[4],
			NewMean: Add(MulScalar(mean, mom), MulScalar(StopGradient(bMean), 1-mom)),
			NewVar:  Add(MulScalar(variance, mom), MulScalar(unbiased, 1-mom)),
		})
	}
	return y
}

// pool builds MaxPool (max) or AveragePool.
func (b *builder) pool(isMax bool) *Node {
	n := b.node0
	x := b.in(0)
	k := x.Rank() - 2
	kernel := attrInts(n, "kernel_shape")
	if len(kernel) != k {
		b.fail("kernel_shape %v for %d spatial axes", kernel, k)
	}
	strides := attrInts(n, "strides")
	if strides == nil {
		strides = onesInts(k)
	}
	if d := attrInts(n, "dilations"); d != nil && !equalInts(d, onesInts(k)) {
		b.fail("dilations %v are not supported", d)
	}
	inDims := x.Shape().Dimensions[2:]
	pads := b.spatialPads(inDims, kernel, strides, onesInts(k))
	if len(strides) != k {
		b.fail("strides %v for %d spatial axes", strides, k)
	}
	for i := range k {
		if strides[i] < 1 || kernel[i] < 1 || kernel[i] > inDims[i]+pads[i][0]+pads[i][1] || pads[i][0] >= kernel[i] || pads[i][1] >= kernel[i] {
			b.fail("kernel %v, strides %v and pads %v do not fit an input of %v", kernel, strides, pads, inDims)
		}
	}
	if attrInt(n, "ceil_mode", 0) != 0 {
		for i := range pads {
			span := inDims[i] + pads[i][0] + pads[i][1] - kernel[i]
			out := (span+strides[i]-1)/strides[i] + 1
			// PyTorch/ONNX: the last window must start inside the input or the left padding.
			if (out-1)*strides[i] >= inDims[i]+pads[i][0] {
				out--
			}
			if extra := (out-1)*strides[i] + kernel[i] - (inDims[i] + pads[i][0] + pads[i][1]); extra > 0 {
				if !isMax {
					b.fail("ceil_mode=1 that changes the output size is supported for MaxPool only")
				}
				pads[i][1] += extra
			}
		}
	}
	padded := x
	anyPad := false
	for _, p := range pads {
		anyPad = anyPad || p != [2]int{}
	}
	if anyPad {
		cfg := make([]PadAxis, x.Rank())
		for i, p := range pads {
			cfg[i+2] = PadAxis{Start: p[0], End: p[1]}
		}
		fill := ScalarZero(b.g, x.DType())
		if isMax {
			fill = Infinity(b.g, x.DType(), -1)
		}
		padded = Pad(x, fill, cfg...)
	}
	if isMax {
		if b.opts.ExplicitMaxPoolGradients && k == 2 && !anyPad && equalInts(kernel, strides) && inDims[1] <= maxExplicitWidth {
			y, zero := maxPoolExplicit(x, kernel[0], kernel[1])
			b.zeros = append(b.zeros, zero)
			return y
		}
		if b.opts.ExplicitMaxPoolGradients && k == 2 {
			// Overlapping or padded windows: GoMLX's gradient of such a pool is wrong on the
			// ONNX Runtime backend (TestMaxPoolExplicitPadded).
			y, zero := maxPoolExplicitPadded(x, kernel, strides, pads)
			b.zeros = append(b.zeros, zero)
			return y
		}
		return MaxPool(padded).ChannelsAxis(timages.ChannelsFirst).WindowPerAxis(kernel...).StridePerAxis(strides...).NoPadding().Done()
	}
	var sum *Node
	if b.opts.SubsampleStrided && !equalInts(strides, onesInts(k)) {
		sum = sumPoolNoDilation(padded, kernel, strides)
	} else {
		sum = SumPool(padded).ChannelsAxis(timages.ChannelsFirst).WindowPerAxis(kernel...).StridePerAxis(strides...).NoPadding().Done()
	}
	window := 1
	for _, v := range kernel {
		window *= v
	}
	if !anyPad || attrInt(n, "count_include_pad", 0) != 0 {
		return DivScalar(sum, float64(window))
	}
	// count_include_pad=0: divide by the number of input values under each window.
	outDims := sum.Shape().Dimensions[2:]
	if !sizeWithin(sum.Shape().Dimensions[2:], 1<<24) {
		b.fail("output %s is too large for count_include_pad=0", sum.Shape())
	}
	counts := make([]float32, 1)
	counts[0] = 1
	for i := range k {
		next := make([]float32, 0, len(counts)*outDims[i])
		for _, c := range counts {
			for o := 0; o < outDims[i]; o++ {
				start := o*strides[i] - pads[i][0]
				lo, hi := max(start, 0), min(start+kernel[i], inDims[i])
				next = append(next, c*float32(hi-lo))
			}
		}
		counts = next
	}
	cdims := append([]int{1, 1}, outDims...)
	cnode := ConstTensor(b.g, tensors.FromFlatDataAndDimensions(counts, cdims...))
	return Div(sum, BroadcastToDims(ConvertDType(cnode, x.DType()), sum.Shape().Dimensions...))
}

// sumPoolNoDilation is a strided sum pooling of x ([N,C,spatial...], already padded) whose
// gradient needs no interior padding: where window equals stride on every axis, a reshape and a
// sum; otherwise stride-1 pooling and a subsample.
func sumPoolNoDilation(x *Node, kernel, strides []int) *Node {
	if equalInts(kernel, strides) {
		// Crop each axis to a whole number of windows, then [.., out, k, ..] summed over k.
		specs := make([]SliceAxisSpec, x.Rank())
		for i := range specs {
			specs[i] = AxisRange()
		}
		var split, sumAxes []int
		split = append(split, x.Shape().Dimensions[:2]...)
		crop := false
		for i, kk := range kernel {
			n := x.Shape().Dimensions[i+2]
			out := n / kk
			if out*kk != n {
				specs[i+2] = AxisRange(0, out*kk)
				crop = true
			}
			sumAxes = append(sumAxes, len(split)+1)
			split = append(split, out, kk)
		}
		if crop {
			x = Slice(x, specs...)
		}
		return ReduceSum(Reshape(x, split...), sumAxes...)
	}
	y := SumPool(x).ChannelsAxis(timages.ChannelsFirst).WindowPerAxis(kernel...).StridePerAxis(onesInts(len(kernel))...).NoPadding().Done()
	return subsample(y, strides)
}

func (b *builder) gemm() *Node {
	n := b.node0
	a, w := b.in(0), b.in(1)
	if a.Rank() != 2 || w.Rank() != 2 {
		b.fail("Gemm of %s and %s: want matrices", a.Shape(), w.Shape())
	}
	if attrInt(n, "transA", 0) != 0 {
		a = Transpose(a, 0, 1)
	}
	if attrInt(n, "transB", 0) != 0 {
		w = Transpose(w, 0, 1)
	}
	if a.Shape().Dimensions[1] != w.Shape().Dimensions[0] {
		b.fail("Gemm of %s and %s: inner dimensions differ", a.Shape(), w.Shape())
	}
	y := Dot(a, w).Product()
	if alpha := attrFloat(n, "alpha", 1); alpha != 1 {
		y = MulScalar(y, alpha)
	}
	if b.has(2) {
		c := b.in(2)
		if beta := attrFloat(n, "beta", 1); beta != 1 {
			c = MulScalar(c, beta)
		}
		y, c = broadcastPair(b, y, c)
		y = Add(y, c)
	}
	return y
}

func (b *builder) matmul() *Node {
	a, w := b.in(0), b.in(1)
	if w.Rank() != 2 || a.Rank() < 2 {
		b.fail("MatMul of %s and %s: only [...,K] x [K,M] is supported", a.Shape(), w.Shape())
	}
	kdim := a.Shape().Dimensions[a.Rank()-1]
	if kdim != w.Shape().Dimensions[0] {
		b.fail("MatMul of %s and %s: inner dimensions differ", a.Shape(), w.Shape())
	}
	if a.Rank() == 2 {
		return Dot(a, w).Product()
	}
	lead := a.Shape().Dimensions[:a.Rank()-1]
	y := Dot(Reshape(a, -1, kdim), w).Product()
	return Reshape(y, append(append([]int{}, lead...), w.Shape().Dimensions[1])...)
}

func (b *builder) reshape() *Node {
	x := b.in(0)
	return Reshape(x, b.reshapeDims(x.Shape().Dimensions, b.constInts(1))...)
}

// reshapeDims resolves a Reshape's target shape spec (0 copies a dimension unless allowzero, -1
// is inferred) for an input of dimensions in.
func (b *builder) reshapeDims(in []int, spec []int64) []int {
	allowZero := attrInt(b.node0, "allowzero", 0) != 0
	dims := make([]int, len(spec))
	infer := -1
	known := 1
	for i, s := range spec {
		switch {
		case s == 0 && !allowZero:
			if i >= len(in) {
				b.fail("shape %v copies dimension %d of a rank-%d input", spec, i, len(in))
			}
			dims[i] = in[i]
		case s == -1:
			if infer >= 0 {
				b.fail("shape %v has more than one -1", spec)
			}
			infer = i
			continue
		case s < 0:
			b.fail("shape %v has a negative dimension", spec)
		default:
			dims[i] = int(s)
		}
		known *= dims[i]
	}
	size := 1
	for _, d := range in {
		size *= d
	}
	if infer >= 0 {
		if known == 0 || size%known != 0 {
			b.fail("cannot reshape %v to %v", in, spec)
		}
		dims[infer] = size / known
	} else if known != size {
		b.fail("cannot reshape %v to %v", in, spec)
	}
	return dims
}

func (b *builder) pad() *Node {
	n := b.node0
	x := b.in(0)
	if mode := attrString(n, "mode", "constant"); mode != "constant" {
		b.fail("mode %q is not supported (constant only)", mode)
	}
	var pads []int64
	if b.has(1) {
		pads = b.constInts(1)
	} else {
		for _, v := range attrInts(n, "pads") { // opset < 11
			pads = append(pads, int64(v))
		}
	}
	if b.has(3) {
		b.fail("the axes input is not supported")
	}
	r := x.Rank()
	if len(pads) != 2*r {
		b.fail("pads %v for rank %d", pads, r)
	}
	fill := ScalarZero(b.g, x.DType())
	if b.has(2) {
		name := n.GetInput()[2]
		fill = Scalar(b.g, x.DType(), b.constScalar(name, "constant_value"))
	} else if v := attr(n, "value"); v != nil {
		fill = Scalar(b.g, x.DType(), float64(v.GetF()))
	}
	cfg := make([]PadAxis, r)
	any := false
	for i := range r {
		s, e := pads[i], pads[i+r]
		if s < 0 || e < 0 {
			b.fail("negative pads %v are not supported", pads)
		}
		cfg[i] = PadAxis{Start: int(s), End: int(e)}
		any = any || s != 0 || e != 0
	}
	if !any {
		return x
	}
	return Pad(x, fill, cfg...)
}

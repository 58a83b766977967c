package onnxgraph

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads as math
)

// This file builds the activations, reductions and tensor plumbing of the mobile and dense
// families (MobileNet, EfficientNet, DenseNet, SqueezeNet, ShuffleNet).

// mask returns cond as 0/1 values of x's type, without a gradient.
func mask(x, cond *Node) *Node {
	return StopGradient(ConvertDType(cond, x.DType()))
}

// floatInput returns input i of the current node as a constant float scalar, or def when the
// node has no such input.
func (b *builder) floatInput(i int, def float64) float64 {
	if !b.has(i) {
		return def
	}
	return b.constScalar(b.node0.GetInput()[i], "input")
}

// constScalar returns the value of constant name, which must be a float scalar (what names it
// in the error).
func (b *builder) constScalar(name, what string) float64 {
	c, ok := b.m.consts[name]
	if !ok || c.ints || c.size() != 1 {
		b.fail("%s %q must be a constant float scalar", what, name)
	}
	f, err := b.m.floats(name) // released values: read again
	if err != nil {
		b.fail("%v", err)
	}
	if len(f) != 1 {
		b.fail("%s %q must be a constant float scalar", what, name)
	}
	return float64(f[0])
}

// activation builds Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu and LeakyRelu. The piecewise
// ones are products with 0/1 masks, as Relu is: their gradient is PyTorch's (zero at and beyond
// the clipping bounds) and ONNX Runtime runs products fast.
func (b *builder) activation() *Node {
	n := b.node0
	x := b.in(0)
	g := x.Graph()
	switch n.GetOpType() {
	case "Clip":
		lo, hi := math.Inf(-1), math.Inf(1)
		if a := attr(n, "min"); a != nil { // opset < 11
			lo = float64(a.GetF())
		}
		if a := attr(n, "max"); a != nil {
			hi = float64(a.GetF())
		}
		lo, hi = b.floatInput(1, lo), b.floatInput(2, hi)
		return clip(x, lo, hi)
	case "Sigmoid":
		return Logistic(x)
	case "Tanh":
		return Tanh(x)
	case "HardSigmoid":
		return hardSigmoid(x, attrFloat(n, "alpha", 0.2), attrFloat(n, "beta", 0.5))
	case "HardSwish":
		return Mul(x, hardSigmoid(x, 1.0/6, 0.5))
	case "Gelu": // opset 20
		switch approx := attrString(n, "approximate", "none"); approx {
		case "none": // x/2 * (1 + erf(x/sqrt 2))
			return Mul(MulScalar(x, 0.5), OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))))
		case "tanh": // x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
			inner := MulScalar(Add(x, MulScalar(Mul(Mul(x, x), x), 0.044715)), math.Sqrt(2/math.Pi))
			return Mul(MulScalar(x, 0.5), OnePlus(Tanh(inner)))
		default:
			b.fail("approximate %q is not supported", approx)
		}
	case "LeakyRelu":
		alpha := attrFloat(n, "alpha", 0.01)
		pos := mask(x, GreaterThan(x, ScalarZero(g, x.DType())))
		// x*[x>0] + alpha*x*(1-[x>0])
		return Mul(x, AddScalar(MulScalar(pos, 1-alpha), alpha))
	}
	b.fail("not an activation")
	return nil
}

// clip is min(max(x, lo), hi) with the gradient 1 strictly inside (lo, hi) and 0 elsewhere
// (PyTorch's hardtanh and ReLU6).
func clip(x *Node, lo, hi float64) *Node {
	g := x.Graph()
	inside := x
	var parts []*Node
	var m *Node
	if !math.IsInf(lo, -1) {
		m = mask(x, GreaterThan(x, Scalar(g, x.DType(), lo)))
		parts = append(parts, MulScalar(mask(x, LessOrEqual(x, Scalar(g, x.DType(), lo))), lo))
	}
	if !math.IsInf(hi, 1) {
		below := mask(x, LessThan(x, Scalar(g, x.DType(), hi)))
		if m == nil {
			m = below
		} else {
			m = Mul(m, below)
		}
		parts = append(parts, MulScalar(mask(x, GreaterOrEqual(x, Scalar(g, x.DType(), hi))), hi))
	}
	if m == nil {
		return x
	}
	y := Mul(inside, m)
	for _, p := range parts {
		y = Add(y, p)
	}
	return y
}

// hardSigmoid is max(0, min(1, alpha*x + beta)), with the gradient alpha where 0 < alpha*x+beta < 1.
func hardSigmoid(x *Node, alpha, beta float64) *Node {
	return clip(AddScalar(MulScalar(x, alpha), beta), 0, 1)
}

// axesInput returns a reduction's or squeeze's axes: input 1 when given, else the attribute.
func (b *builder) axesInput(rank int) []int {
	axes := attrInts(b.node0, "axes")
	if b.has(1) {
		axes = toInts(b.constInts(1))
	}
	for i, a := range axes {
		if a < 0 {
			axes[i] = a + rank
		}
		if axes[i] < 0 || axes[i] >= rank {
			b.fail("axis %d out of range for rank %d", a, rank)
		}
	}
	return axes
}

func (b *builder) reduce() *Node {
	n := b.node0
	x := b.in(0)
	axes := b.axesInput(x.Rank())
	if len(axes) == 0 {
		if attrInt(n, "noop_with_empty_axes", 0) != 0 {
			return x
		}
		for i := range x.Rank() {
			axes = append(axes, i)
		}
	}
	keep := attrInt(n, "keepdims", 1) != 0
	var fn func(*Node, ...int) *Node
	switch n.GetOpType() {
	case "ReduceMean":
		fn = ReduceMean
	case "ReduceMax":
		fn = ReduceMax
	case "ReduceMin":
		fn = ReduceMin
	case "ReduceSum":
		fn = ReduceSum
	}
	if keep {
		return ReduceAndKeep(x, fn, axes...)
	}
	return fn(x, axes...)
}

func (b *builder) axisAttr(rank int) int {
	a := attrInt(b.node0, "axis", 0)
	axis := a
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		b.fail("axis %d out of range for rank %d", a, rank)
	}
	return axis
}

func (b *builder) concat() *Node {
	var xs []*Node
	for i := range b.node0.GetInput() {
		if b.has(i) {
			xs = append(xs, b.in(i))
		}
	}
	if len(xs) == 0 {
		b.fail("no inputs")
	}
	axis := b.axisAttr(xs[0].Rank())
	for _, x := range xs[1:] {
		if x.DType() != xs[0].DType() || x.Rank() != xs[0].Rank() {
			b.fail("concatenating %s and %s", xs[0].Shape(), x.Shape())
		}
	}
	if len(xs) == 1 {
		return xs[0]
	}
	return Concatenate(xs, axis)
}

// split sets every output of a Split node.
func (b *builder) split() {
	n := b.node0
	x := b.in(0)
	axis := b.axisAttr(x.Rank())
	outs := n.GetOutput()
	size := x.Shape().Dimensions[axis]
	var sizes []int
	switch {
	case b.has(1):
		sizes = toInts(b.constInts(1))
	case attr(n, "split") != nil: // opset < 13
		sizes = attrInts(n, "split")
	default: // equal parts (num_outputs in opset 18, else one per output); the last may be smaller
		parts := attrInt(n, "num_outputs", len(outs))
		step := (size + parts - 1) / parts
		for start := 0; start < size; start += step {
			sizes = append(sizes, min(step, size-start))
		}
	}
	if len(sizes) != len(outs) {
		b.fail("%d parts for %d outputs", len(sizes), len(outs))
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != size {
		b.fail("parts %v do not add up to dimension %d of %s", sizes, size, x.Shape())
	}
	start := 0
	for i, s := range sizes {
		specs := make([]SliceAxisSpec, x.Rank())
		for j := range specs {
			specs[j] = AxisRange()
		}
		specs[axis] = AxisRange(start, start+s)
		if outs[i] != "" {
			b.env[outs[i]] = Slice(x, specs...)
		}
		start += s
	}
}

func (b *builder) slice() *Node {
	x := b.in(0)
	var starts, ends, axes, steps []int64
	if b.has(1) {
		starts, ends = b.constInts(1), b.constInts(2)
		if b.has(3) {
			axes = b.constInts(3)
		}
		if b.has(4) {
			steps = b.constInts(4)
		}
	} else { // opset < 10: attributes
		for _, v := range attrInts(b.node0, "starts") {
			starts = append(starts, int64(v))
		}
		for _, v := range attrInts(b.node0, "ends") {
			ends = append(ends, int64(v))
		}
		for _, v := range attrInts(b.node0, "axes") {
			axes = append(axes, int64(v))
		}
	}
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		b.fail("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	specs := make([]SliceAxisSpec, x.Rank())
	for j := range specs {
		specs[j] = AxisRange()
	}
	stepOf := make([]int, x.Rank())
	for i := range starts {
		axis := i
		if axes != nil {
			axis = int(axes[i])
			if axis < 0 {
				axis += x.Rank()
			}
		}
		if axis < 0 || axis >= x.Rank() {
			b.fail("axis %d out of range for rank %d", axes[i], x.Rank())
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step <= 0 {
			b.fail("step %d is not supported (positive steps only)", step)
		}
		d := int64(x.Shape().Dimensions[axis])
		s, e := starts[i], ends[i]
		if s < 0 {
			s += d
		}
		if e < 0 {
			e += d
		}
		s, e = min(max(s, 0), d), min(max(e, 0), d)
		if e <= s {
			b.fail("empty slice [%d:%d] of axis %d", starts[i], ends[i], axis)
		}
		specs[axis] = AxisRange(int(s), int(e))
		stepOf[axis] = int(step)
	}
	// Steps are taken by subsampling the contiguous slice (reshape and slice), whose gradient
	// needs no interior padding: ONNX Runtime's Pad has none.
	y := Slice(x, specs...)
	for axis, step := range stepOf {
		if step > 1 {
			y = subsampleAxis(y, axis, step)
		}
	}
	return y
}

// subsampleAxis keeps positions 0, s, 2s, ... of axis of y, by edge padding, a reshape and a
// slice (see subsample).
func subsampleAxis(y *Node, axis, s int) *Node {
	dims := y.Shape().Dimensions
	n := dims[axis]
	out := (n-1)/s + 1
	if n < out*s {
		cfg := make([]PadAxis, y.Rank())
		cfg[axis] = PadAxis{End: out*s - n}
		y = Pad(y, ScalarZero(y.Graph(), y.DType()), cfg...)
	}
	split := append(append(append([]int{}, dims[:axis]...), out, s), dims[axis+1:]...)
	y = Reshape(y, split...)
	specs := make([]SliceAxisSpec, y.Rank())
	for j := range specs {
		specs[j] = AxisRange()
	}
	specs[axis+1] = AxisRange(0, 1)
	merged := append(append(append([]int{}, dims[:axis]...), out), dims[axis+1:]...)
	return Reshape(Slice(y, specs...), merged...)
}

func (b *builder) transpose() *Node {
	x := b.in(0)
	perm := attrInts(b.node0, "perm")
	if perm == nil {
		for i := x.Rank() - 1; i >= 0; i-- {
			perm = append(perm, i)
		}
	}
	if len(perm) != x.Rank() {
		b.fail("perm %v for rank %d", perm, x.Rank())
	}
	seen := make([]bool, len(perm))
	for _, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			b.fail("perm %v is not a permutation", perm)
		}
		seen[p] = true
	}
	return TransposeAllDims(x, perm...)
}

// pow builds x to a constant scalar exponent: a product for 2 (PyTorch's LayerNorm exported at
// opsets before 17 squares with Pow), else GoMLX's Pow.
func (b *builder) pow() *Node {
	x := b.in(0)
	e := b.floatInput(1, math.NaN())
	switch e {
	case 1:
		return x
	case 2:
		return Mul(x, x)
	case 0.5:
		return Sqrt(x)
	}
	return Pow(x, Scalar(x.Graph(), x.DType(), e))
}

// layerNorm builds LayerNormalization (opset 17): normalisation over the axes from axis on by
// the mean and biased variance, then scale and bias.
func (b *builder) layerNorm() *Node {
	n := b.node0
	x := b.in(0)
	axis := attrInt(n, "axis", -1)
	if axis < 0 {
		axis += x.Rank()
	}
	if axis < 0 || axis >= x.Rank() {
		b.fail("axis %d out of range for rank %d", attrInt(n, "axis", -1), x.Rank())
	}
	for _, o := range n.GetOutput()[1:] {
		if o != "" {
			b.fail("the mean and inverse standard deviation outputs are not supported")
		}
	}
	var axes []int
	for i := axis; i < x.Rank(); i++ {
		axes = append(axes, i)
	}
	eps := attrFloat(n, "epsilon", 1e-5)
	mean := ReduceAndKeep(x, ReduceMean, axes...)
	xc := Sub(x, mean)
	variance := ReduceAndKeep(Mul(xc, xc), ReduceMean, axes...)
	y := Div(xc, Sqrt(AddScalar(variance, eps)))
	scale := b.in(1)
	y, scale = broadcastPair(b, y, scale)
	y = Mul(y, scale)
	if b.has(2) {
		bias := b.in(2)
		y, bias = broadcastPair(b, y, bias)
		y = Add(y, bias)
	}
	return y
}

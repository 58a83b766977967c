package onnxgraph

import (
	onnx "github.com/gomlx/compute-onnx/support/protos"
)

// This file evaluates shape computations on the host while the graph is built. PyTorch exports
// x.view(x.size(0), -1) and channel shuffles as Shape, Gather, Unsqueeze, Concat (and Div, Cast)
// of integers feeding a Reshape; with the batch size known when the graph is built, every such
// value is a constant, so the subgraph is folded into the Reshape's target shape.

// knownInt returns the integer tensor name when it is known at build time: an integer constant,
// or a folded value.
func (b *builder) knownInt(name string) (*constant, bool) {
	if c, ok := b.known[name]; ok && c.ints {
		return c, true
	}
	if c, ok := b.m.consts[name]; ok && c.ints {
		return c, true
	}
	return nil, false
}

// fold evaluates the current node on the host when it is a shape computation whose inputs are
// all known integers, and reports whether it did.
func (b *builder) fold() bool {
	n := b.node0
	op := n.GetOpType()
	if !foldable[op] {
		return false
	}
	var ins []*constant
	if op == "Shape" {
		x := b.in(0)
		dims := x.Shape().Dimensions
		start, end := attrInt(n, "start", 0), attrInt(n, "end", len(dims))
		start, end = clampRange(start, len(dims)), clampRange(end, len(dims))
		c := &constant{ints: true, i64: []int64{}}
		for i := start; i < end; i++ {
			c.i64 = append(c.i64, int64(dims[i]))
		}
		c.dims = []int{len(c.i64)}
		b.setKnown(c)
		return true
	}
	for _, name := range n.GetInput() {
		if name == "" {
			ins = append(ins, nil)
			continue
		}
		c, ok := b.knownInt(name)
		if !ok {
			return false
		}
		ins = append(ins, c)
	}
	if len(ins) == 0 {
		return false
	}
	var out *constant
	switch op {
	case "Identity":
		out = ins[0]
	case "Cast":
		switch to := onnx.TensorProto_DataType(attrInt(n, "to", 0)); to {
		case onnx.TensorProto_INT64, onnx.TensorProto_INT32:
			out = ins[0]
		case onnx.TensorProto_FLOAT:
			out = &constant{dims: ins[0].dims, f32: make([]float32, len(ins[0].i64))}
			for i, v := range ins[0].i64 {
				out.f32[i] = float32(v)
			}
		default:
			b.fail("cast of a shape to %s is not supported", to)
		}
	case "Gather":
		out = b.foldGather(ins[0], ins[1], attrInt(n, "axis", 0))
	case "Unsqueeze", "Squeeze":
		axes := attrInts(n, "axes")
		if len(ins) > 1 && ins[1] != nil {
			axes = toInts(ins[1].i64)
		}
		out = &constant{ints: true, i64: ins[0].i64, dims: b.squeezeDims(ins[0].dims, axes, op == "Unsqueeze")}
	case "Concat":
		out = b.foldConcat(ins, attrInt(n, "axis", 0))
	case "Slice":
		out = b.foldSlice(ins)
	case "Add", "Sub", "Mul", "Div":
		out = b.foldArith(op, ins[0], ins[1])
	case "Reshape":
		dims := b.reshapeDims(ins[0].dims, ins[1].i64)
		out = &constant{ints: true, i64: ins[0].i64, dims: dims}
	default:
		return false
	}
	b.setKnown(out)
	return true
}

func (b *builder) setKnown(c *constant) {
	outs := b.node0.GetOutput()
	b.known[outs[0]] = c
	delete(b.env, outs[0])
}

func clampRange(i, n int) int {
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func (b *builder) foldGather(data, idx *constant, axis int) *constant {
	r := len(data.dims)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		b.fail("axis %d out of range for rank %d", axis, r)
	}
	outer, inner := 1, 1
	for i, d := range data.dims {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	n := data.dims[axis]
	out := &constant{ints: true, i64: []int64{}}
	out.dims = append(append(append([]int{}, data.dims[:axis]...), idx.dims...), data.dims[axis+1:]...)
	for o := range outer {
		for _, k := range idx.i64 {
			if k < 0 {
				k += int64(n)
			}
			if k < 0 || k >= int64(n) {
				b.fail("index %d out of range [0,%d)", k, n)
			}
			base := (o*n + int(k)) * inner
			out.i64 = append(out.i64, data.i64[base:base+inner]...)
		}
	}
	return out
}

// squeezeDims returns dims with axes inserted (unsqueeze) or removed (squeeze; all 1s when axes
// is empty).
func (b *builder) squeezeDims(dims, axes []int, unsqueeze bool) []int {
	if unsqueeze {
		r := len(dims) + len(axes)
		ins := make([]bool, r)
		for _, a := range axes {
			if a < 0 {
				a += r
			}
			if a < 0 || a >= r || ins[a] {
				b.fail("axes %v for an output of rank %d", axes, r)
			}
			ins[a] = true
		}
		out := make([]int, 0, r)
		j := 0
		for i := range r {
			if ins[i] {
				out = append(out, 1)
			} else {
				out = append(out, dims[j])
				j++
			}
		}
		return out
	}
	drop := make([]bool, len(dims))
	for _, a := range axes {
		if a < 0 {
			a += len(dims)
		}
		if a < 0 || a >= len(dims) || dims[a] != 1 {
			b.fail("cannot squeeze axes %v of dimensions %v", axes, dims)
		}
		drop[a] = true
	}
	out := []int{}
	for i, d := range dims {
		if (len(axes) == 0 && d == 1) || drop[i] {
			continue
		}
		out = append(out, d)
	}
	return out
}

func (b *builder) foldConcat(ins []*constant, axis int) *constant {
	r := len(ins[0].dims)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		b.fail("axis %d out of range for rank %d", axis, r)
	}
	outer := 1
	for _, d := range ins[0].dims[:axis] {
		outer *= d
	}
	dims := append([]int{}, ins[0].dims...)
	dims[axis] = 0
	for _, c := range ins {
		if c == nil || len(c.dims) != r {
			b.fail("concatenating known integer tensors of different ranks")
		}
		for i, d := range c.dims {
			if i != axis && d != ins[0].dims[i] {
				b.fail("concatenating dimensions %v and %v on axis %d", ins[0].dims, c.dims, axis)
			}
		}
		dims[axis] += c.dims[axis]
	}
	out := &constant{ints: true, dims: dims, i64: []int64{}}
	for o := range outer {
		for _, c := range ins {
			chunk := len(c.i64) / max(outer, 1)
			out.i64 = append(out.i64, c.i64[o*chunk:(o+1)*chunk]...)
		}
	}
	return out
}

func (b *builder) foldSlice(ins []*constant) *constant {
	data := ins[0]
	if len(data.dims) != 1 {
		b.fail("slicing a known integer tensor of rank %d is not supported (rank 1 only)", len(data.dims))
	}
	get := func(i int, def int64) int64 {
		if i < len(ins) && ins[i] != nil && len(ins[i].i64) > 0 {
			if len(ins[i].i64) != 1 {
				b.fail("input %d has %d values for a rank-1 slice", i, len(ins[i].i64))
			}
			return ins[i].i64[0]
		}
		return def
	}
	n := int64(len(data.i64))
	start, end, step := get(1, 0), get(2, n), get(4, 1)
	if axis := get(3, 0); axis != 0 && axis != -1 {
		b.fail("axis %d for a rank-1 slice", axis)
	}
	if step <= 0 {
		b.fail("step %d is not supported", step)
	}
	start, end = int64(clampRange(int(max(min(start, n), -n)), int(n))), int64(clampRange(int(max(min(end, n), -n-1)), int(n)))
	out := &constant{ints: true, i64: []int64{}}
	for i := start; i < end; i += step {
		out.i64 = append(out.i64, data.i64[i])
	}
	out.dims = []int{len(out.i64)}
	return out
}

func (b *builder) foldArith(op string, x, y *constant) *constant {
	if len(x.i64) != len(y.i64) && len(x.i64) != 1 && len(y.i64) != 1 {
		b.fail("integer %s of %v and %v: only equal sizes or a scalar are supported", op, x.dims, y.dims)
	}
	dims := x.dims
	nOut := max(len(x.i64), len(y.i64))
	if len(y.i64) > len(x.i64) || (len(y.i64) == len(x.i64) && len(y.dims) > len(x.dims)) {
		dims = y.dims
	}
	out := &constant{ints: true, dims: dims, i64: make([]int64, nOut)}
	for i := range out.i64 {
		a, c := x.i64[min(i, len(x.i64)-1)], y.i64[min(i, len(y.i64)-1)]
		switch op {
		case "Add":
			out.i64[i] = a + c
		case "Sub":
			out.i64[i] = a - c
		case "Mul":
			out.i64[i] = a * c
		case "Div":
			if c == 0 {
				b.fail("integer division by zero")
			}
			out.i64[i] = a / c // truncates, as ONNX Runtime's integer Div
		}
	}
	return out
}

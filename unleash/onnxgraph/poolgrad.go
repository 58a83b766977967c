package onnxgraph

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads as math
	"github.com/gomlx/gomlx/core/tensors"
	timages "github.com/gomlx/gomlx/core/tensors/images"
)

// maxPoolExplicit is the max pool of x [N,C,H,W] over kh x kw windows that tile it (stride =
// kernel, no padding; rows and columns past the last whole window are left out, as in floor
// mode), with an explicit gradient (Options.ExplicitMaxPoolGradients). GoMLX's gradient of a
// max pool runs on ONNX Runtime as a second MaxPool that returns indices and a scatter, which
// cost about twice the rest of the pool's backward pass. Here, for each window position (i,j)
// in row-major order, the input pixels at that position in their windows are compared with the
// pooled values; the first position holding the maximum gets the gradient (PyTorch's rule for
// ties), and the positions are interleaved back by exact products with 0/1 matrices and a
// reshape. The forward pass is the native MaxPool. The caller adds the returned scalar zero to
// the model's output (see explicitGrad).
func maxPoolExplicit(x *Node, kh, kw int) (y, zero *Node) {
	var e explicitGrad
	var pooled *Node
	e.input(x, func(dy *Node) *Node { return maxPoolGradient(x, pooled, dy, kh, kw) })
	pooled = MaxPool(StopGradient(x)).ChannelsAxis(timages.ChannelsFirst).WindowPerAxis(kh, kw).
		StridePerAxis(kh, kw).NoPadding().Done()
	return e.output(pooled), e.zero
}

// maxPoolGradient returns dL/dx of the tiled max pool of x, whose output is pooled, from
// dy = dL/dpooled.
func maxPoolGradient(x, pooled, dy *Node, kh, kw int) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	n, c, h, w := d[0], d[1], d[2], d[3]
	ho, wo := h/kh, w/kw
	remaining := OnesLike(pooled) // 1 where no earlier position of the window held the maximum
	var rows []*Node
	for i := range kh {
		var row *Node // [N,C,Ho,W]: the gradient of rows i, i+kh, ... of x
		for j := range kw {
			xij := Slice(x, AxisRange(), AxisRange(), AxisRange(i, i+kh*(ho-1)+1).Stride(kh),
				AxisRange(j, j+kw*(wo-1)+1).Stride(kw))
			first := Mul(ConvertDType(Equal(xij, pooled), x.DType()), remaining)
			remaining = Sub(remaining, first)
			gij := Mul(dy, first)
			if kw > 1 || wo != w { // columns m go to kw*m + j
				sel := make([]float32, wo*w)
				for m := range wo {
					sel[m*w+kw*m+j] = 1
				}
				gij = Reshape(gij, n*c*ho, wo)
				gij = MatMul(gij, ConvertDType(Const(g, tensors.FromFlatDataAndDimensions(sel, wo, w)), x.DType()))
				gij = Reshape(gij, n, c, ho, w)
			}
			if row == nil {
				row = gij
			} else {
				row = Add(row, gij)
			}
		}
		rows = append(rows, Reshape(row, n, c, ho, 1, w))
	}
	dx := Reshape(Concatenate(rows, 3), n, c, ho*kh, w) // rows m of position i go to kh*m + i
	if ho*kh < h {
		dx = Pad(dx, ScalarZero(g, x.DType()), PadAxis{}, PadAxis{}, PadAxis{End: h - ho*kh}, PadAxis{})
	}
	return dx
}

// maxPoolExplicitPadded is the max pool of x [N,C,H,W] over any 2-D window, stride and padding
// (pads hold ceil mode's extra end padding too), with an explicit gradient built like
// maxPoolGradient's: per window position (i,j) in row-major order, the padded input's pixels at
// that position are compared with the pooled values, the first position holding a window's
// maximum takes its gradient (PyTorch's rule), and each position's gradient is spread back to
// rows i, i+sh, ... and columns j, j+sw, ... of the padded input by stacking with zeros and
// reshaping (no interior padding, which ONNX Runtime lacks). Overlapping windows add up. The
// forward pass is the native MaxPool of the input padded with -inf. The caller adds the returned
// scalar zero to the model's output (see explicitGrad).
func maxPoolExplicitPadded(x *Node, kernel, strides []int, pads [][2]int) (y, zero *Node) {
	var e explicitGrad
	var pooled *Node
	e.input(x, func(dy *Node) *Node { return maxPoolGradientPadded(x, pooled, dy, kernel, strides, pads) })
	pooled = MaxPool(padNegInf(StopGradient(x), pads)).ChannelsAxis(timages.ChannelsFirst).WindowPerAxis(kernel...).
		StridePerAxis(strides...).NoPadding().Done()
	return e.output(pooled), e.zero
}

// padNegInf pads the spatial axes of x [N,C,H,W] with -inf.
func padNegInf(x *Node, pads [][2]int) *Node {
	if pads[0] == [2]int{} && pads[1] == [2]int{} {
		return x
	}
	return Pad(x, Infinity(x.Graph(), x.DType(), -1), PadAxis{}, PadAxis{},
		PadAxis{Start: pads[0][0], End: pads[0][1]}, PadAxis{Start: pads[1][0], End: pads[1][1]})
}

// maxPoolGradientPadded returns dL/dx of maxPoolExplicitPadded's pool from dy = dL/dpooled.
func maxPoolGradientPadded(x, pooled, dy *Node, kernel, strides []int, pads [][2]int) *Node {
	xp := padNegInf(x, pads)
	d := xp.Shape().Dimensions
	hp, wp := d[2], d[3]
	ho, wo := pooled.Shape().Dimensions[2], pooled.Shape().Dimensions[3]
	kh, kw, sh, sw := kernel[0], kernel[1], strides[0], strides[1]
	remaining := OnesLike(pooled) // 1 where no earlier position of the window held the maximum
	var dxp *Node
	for i := range kh {
		for j := range kw {
			xij := Slice(xp, AxisRange(), AxisRange(), AxisRange(i, i+sh*(ho-1)+1).Stride(sh),
				AxisRange(j, j+sw*(wo-1)+1).Stride(sw))
			first := Mul(ConvertDType(Equal(xij, pooled), x.DType()), remaining)
			remaining = Sub(remaining, first)
			gij := spread(spread(Mul(dy, first), 2, sh, i, hp), 3, sw, j, wp)
			if dxp == nil {
				dxp = gij
			} else {
				dxp = Add(dxp, gij)
			}
		}
	}
	h, w := x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	if hp == h && wp == w {
		return dxp
	}
	return Slice(dxp, AxisRange(), AxisRange(), AxisRange(pads[0][0], pads[0][0]+h), AxisRange(pads[1][0], pads[1][0]+w))
}

// spread moves entry m of v's axis to position s*m + offset of an axis of length size, zeros
// elsewhere: v stacked with s-1 zero blocks after each entry, flattened, then shifted and cut.
// Every value of v must land inside [0, size).
func spread(v *Node, axis, s, offset, size int) *Node {
	d := v.Shape().Dimensions
	n := d[axis]
	if s > 1 {
		withUnit := append(append(append([]int{}, d[:axis+1]...), 1), d[axis+1:]...)
		zerosDims := append([]int{}, withUnit...)
		zerosDims[axis+1] = s - 1
		v = Concatenate([]*Node{Reshape(v, withUnit...), Zeros(v.Graph(), shapes.Make(v.DType(), zerosDims...))}, axis+1)
		merged := append([]int{}, d...)
		merged[axis] = n * s
		v = Reshape(v, merged...)
		n *= s
	}
	end := size - offset - n
	if end < 0 { // only stacked zeros fall past the end: cut them
		specs := make([]SliceAxisSpec, v.Rank())
		for k := range specs {
			specs[k] = AxisRange()
		}
		specs[axis] = AxisRange(0, n+end)
		v = Slice(v, specs...)
		end = 0
	}
	if offset == 0 && end == 0 {
		return v
	}
	cfg := make([]PadAxis, v.Rank())
	cfg[axis] = PadAxis{Start: offset, End: end}
	return Pad(v, ScalarZero(v.Graph(), v.DType()), cfg...)
}

package onnxgraph

import (
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

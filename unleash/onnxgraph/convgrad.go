package onnxgraph

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads as math
	"github.com/gomlx/gomlx/core/tensors"
	timages "github.com/gomlx/gomlx/core/tensors/images"
)

// This file gives 2-D convolutions explicit gradients (Options.ExplicitConvGradients), for
// backends that run GoMLX's own ones slowly or not at all. GoMLX differentiates a convolution
// with two more convolutions. The one for the kernel treats the input channels as a batch and
// the output gradient as a kernel as large as the image; ONNX Runtime runs that shape three to
// six times slower than the forward convolution (measured on the CIFAR ResNet's layers). The
// one for the input of a strided convolution needs input dilation, which ONNX Runtime's Conv
// does not have. Here:
//
//   - the kernel gradient is one matrix product per kernel tap: the output gradient as an
//     [O, N*Ho*Wo] matrix times the input pixels that tap sees as an [N*Ho*Wo, C] matrix;
//   - the input gradient of a strided convolution is the stride-1 convolution of the output
//     gradient with zeros inserted between its pixels (made with reshapes, an edge pad and a
//     product with a 0/1 matrix, all exact) by the flipped, transposed kernel;
//   - the input gradient of a stride-1 convolution is GoMLX's own (a convolution ONNX Runtime
//     runs well), and the forward pass is the native, strided convolution.
//
// GoMLX hands a custom gradient only to identity nodes (IdentityWithCustomGradient), for their
// own input. So the kernel (and, when strided, the input) pass through such identities that feed
// the output only through a zero, 0*sum(identity), added to it, while the convolution itself
// takes them through StopGradient. An identity on the output records the gradient arriving
// there; GoMLX back-propagates in reverse creation order, so that identity, made last, is
// reached before the kernel's and the input's, which use what it recorded.

// explicitConvFits reports whether convExplicit handles a convolution: 2-D, no dilation, and
// start pads smaller than the kernel (the transposed convolution's pads are then not negative).
func explicitConvFits(xDims, kernel, strides, dilations []int, pads [][2]int) bool {
	if len(kernel) != 2 || !equalInts(dilations, onesInts(2)) {
		return false
	}
	for i := range 2 {
		if pads[i][0] < 0 || pads[i][1] < 0 || pads[i][0] > kernel[i]-1 {
			return false
		}
		out := (xDims[i]+pads[i][0]+pads[i][1]-kernel[i])/strides[i] + 1
		if out < 1 {
			return false
		}
		up := strides[i]*(out-1) + 1
		if xDims[i]-up-(kernel[i]-1-pads[i][0])+kernel[i]-1 < 0 { // the transposed end pad
			return false
		}
	}
	return true
}

// convExplicit is the 2-D convolution of x [N,C,H,W] by w [O,C,kh,kw] with strides and pads,
// whose gradients are computed as described above.
func convExplicit(x, w *Node, strides []int, pads [][2]int) *Node {
	var dy *Node // the gradient arriving at the output, recorded during back-propagation
	strided := strides[0] != 1 || strides[1] != 1
	wg := IdentityWithCustomGradient(w, func(_, v *Node) *Node {
		if dy == nil { // no gradient reached the output: v is the zero gradient
			return v
		}
		return kernelGradient(x, dy, w.Shape().Dimensions, strides, pads)
	})
	xIn := x
	zero := MulScalar(ReduceAllSum(wg), 0)
	if strided {
		xg := IdentityWithCustomGradient(x, func(_, v *Node) *Node {
			if dy == nil {
				return v
			}
			return stridedInputGradient(dy, w, x.Shape().Dimensions, strides, pads)
		})
		xIn = StopGradient(x)
		zero = Add(zero, MulScalar(ReduceAllSum(xg), 0))
	}
	y := Convolve(xIn, StopGradient(w)).ChannelsAxis(timages.ChannelsFirst).StridePerAxis(strides...).
		PaddingPerDim(pads).Done()
	y = Add(y, zero)
	return IdentityWithCustomGradient(y, func(_, v *Node) *Node {
		dy = v
		return v
	})
}

// kernelGradient returns dL/dw [O,C,kh,kw] from the input x [N,C,H,W] and dy = dL/dy
// [N,O,Ho,Wo]: for each tap (i,j), dy as [O, N*Ho*Wo] times the padded input at rows
// i, i+s, ... and columns j, j+s, ..., as [N*Ho*Wo, C].
func kernelGradient(x, dy *Node, wDims, strides []int, pads [][2]int) *Node {
	o, c, kh, kw := wDims[0], wDims[1], wDims[2], wDims[3]
	d := dy.Shape().Dimensions
	n, ho, wo := d[0], d[2], d[3]
	m := n * ho * wo
	// Channels last, so that a tap's pixels are rows of a [N*Ho*Wo, C] matrix.
	xt := TransposeAllDims(x, 0, 2, 3, 1)
	xt = Pad(xt, ScalarZero(x.Graph(), x.DType()), PadAxis{},
		PadAxis{Start: pads[0][0], End: pads[0][1]}, PadAxis{Start: pads[1][0], End: pads[1][1]}, PadAxis{})
	dyt := Reshape(TransposeAllDims(dy, 1, 0, 2, 3), o, m)
	taps := make([]*Node, 0, kh*kw)
	for i := range kh {
		for j := range kw {
			tap := Slice(xt, AxisRange(), AxisRange(i, i+strides[0]*(ho-1)+1).Stride(strides[0]),
				AxisRange(j, j+strides[1]*(wo-1)+1).Stride(strides[1]), AxisRange())
			taps = append(taps, Reshape(MatMul(dyt, Reshape(tap, m, c)), o, c, 1))
		}
	}
	return Reshape(Concatenate(taps, 2), o, c, kh, kw)
}

// stridedInputGradient returns dL/dx [N,C,H,W] of a strided convolution: dy with stride-1
// zeros between its pixels, convolved (stride 1) by w flipped in space with its channel axes
// swapped, padded so that the result has the input's size.
func stridedInputGradient(dy, w *Node, xDims, strides []int, pads [][2]int) *Node {
	g := dy.Graph()
	d := dy.Shape().Dimensions
	n, o, ho, wo := d[0], d[1], d[2], d[3]
	kh, kw := w.Shape().Dimensions[2], w.Shape().Dimensions[3]
	sh, sw := strides[0], strides[1]
	hu, wu := sh*(ho-1)+1, sw*(wo-1)+1
	u := dy
	if sh > 1 { // rows: [.., Ho, 1, Wo] padded to [.., Ho, sh, Wo], flattened, cut to hu rows
		u = Reshape(u, n, o, ho, 1, wo)
		u = Pad(u, ScalarZero(g, u.DType()), PadAxis{}, PadAxis{}, PadAxis{}, PadAxis{End: sh - 1}, PadAxis{})
		u = Reshape(u, n, o, ho*sh, wo)
		u = Slice(u, AxisRange(), AxisRange(), AxisRange(0, hu), AxisRange())
	}
	if sw > 1 { // columns: a product with the 0/1 matrix that puts column j at sw*j
		sel := make([]float32, wo*wu)
		for j := range wo {
			sel[j*wu+j*sw] = 1
		}
		rows := u.Shape().Dimensions[2]
		u = Reshape(u, n*o*rows, wo) // a 2-D product: ONNX Runtime runs it as one GEMM, not an Einsum
		u = MatMul(u, ConvertDType(Const(g, tensors.FromFlatDataAndDimensions(sel, wo, wu)), u.DType()))
		u = Reshape(u, n, o, rows, wu)
	}
	wt := Reverse(TransposeAllDims(w, 1, 0, 2, 3), 2, 3) // [C,O,kh,kw], flipped
	pt, pl := kh-1-pads[0][0], kw-1-pads[1][0]
	pb, pr := xDims[2]-hu-pt+kh-1, xDims[3]-wu-pl+kw-1
	return Convolve(u, wt).ChannelsAxis(timages.ChannelsFirst).PaddingPerDim([][2]int{{pt, pb}, {pl, pr}}).Done()
}

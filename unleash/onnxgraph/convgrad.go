package onnxgraph

import (
	"github.com/gomlx/compute/shapes"
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
//     [O, N*Ho*Wo] matrix times the input pixels that tap sees as an [N*Ho*Wo, C] matrix, or,
//     when that moves fewer bytes, one product per kernel row with the output gradient
//     shifted for each column of the kernel, or one product with the input's im2col matrix;
//   - the input gradient of a strided convolution is computed by phases: for each residue of
//     the input rows and columns modulo the stride, a stride-1 convolution of the output
//     gradient by the kernel taps that reach those positions (flipped, channel axes swapped),
//     the phases then interleaved by exact products with 0/1 matrices, edge pads and reshapes;
//   - the input gradient of a stride-1 convolution is GoMLX's own (a convolution ONNX Runtime
//     runs well), and the forward pass is the native, strided convolution.
//
// GoMLX hands a custom gradient only to identity nodes (IdentityWithCustomGradient), for their
// own input. So the kernel (and, when strided, the input) pass through such identities that feed
// the output only through a zero (0 times its first value; see tie) added to the model's output,
// while the convolution itself takes them through StopGradient. An identity on the output
// records the gradient arriving there; GoMLX back-propagates in reverse creation order, so that
// identity, made last, is reached before the kernel's and the input's, which use what it
// recorded.

// maxExplicitWidth is the widest input the explicit gradients take: they interleave columns by
// products with 0/1 matrices of about width² / stride values.
const maxExplicitWidth = 4096

// explicitConvFits reports whether convExplicit handles a convolution: 2-D, no dilation,
// non-negative pads with start pads smaller than the kernel, and no more end padding than a
// stride-1 transposed convolution would crop (the cases TestExplicitConvGradients covers),
// strides up to 4 and inputs up to maxExplicitWidth wide.
// Others keep GoMLX's gradients, subsampled when strided.
func explicitConvFits(xDims, kernel, strides, dilations []int, pads [][2]int) bool {
	if len(kernel) != 2 || !equalInts(dilations, onesInts(2)) {
		return false
	}
	// The input gradient takes stride² phases, each with a 0/1 matrix as wide as the input:
	// past stride 4 (no common classifier has one) the subsampled path is the better deal.
	if strides[0] > 4 || strides[1] > 4 || xDims[1] > maxExplicitWidth {
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

// explicitGrad gives one operation explicit gradients by the mechanism described above: its
// inputs pass through identities whose custom gradient is computed from the gradient recorded
// at its output, and zero ties those identities to the loss. Call input for every input first,
// then output: back-propagation reaches the output identity, made last, first.
type explicitGrad struct {
	dy   *Node // the gradient arriving at the output, recorded during back-propagation
	zero *Node // the scalar zero the caller adds to the model's output
}

// input gives n the gradient grad(dy). The operation itself must take n through StopGradient.
func (e *explicitGrad) input(n *Node, grad func(dy *Node) *Node) {
	id := IdentityWithCustomGradient(n, func(_, v *Node) *Node {
		if e.dy == nil { // no gradient reached the output: v is the zero gradient
			return v
		}
		return grad(e.dy)
	})
	if e.zero == nil {
		e.zero = tie(id)
	} else {
		e.zero = Add(e.zero, tie(id))
	}
}

// output returns y through the identity that records the gradient arriving at it. It needs no
// tie: GoMLX marks as worth differentiating every node that consumes a differentiated one,
// StopGradient or not, and the operation consumes its differentiated inputs.
func (e *explicitGrad) output(y *Node) *Node {
	return IdentityWithCustomGradient(y, func(_, v *Node) *Node {
		e.dy = v
		return v
	})
}

// convExplicit is the 2-D convolution of x [N,C,H,W] by w [O,C,kh,kw] with strides and pads,
// whose gradients are computed as described above. The caller must add the returned scalar
// zero to the model's output.
//
// With groups > 1 (grouped and depthwise convolutions) the kernel gradient is one batched
// product per kernel tap (groupedKernelGradient), and the input gradient, strided or not, is
// computed by phases as a grouped convolution.
func convExplicit(x, w *Node, strides []int, pads [][2]int, groups int) (y, zero *Node) {
	var e explicitGrad
	e.input(w, func(dy *Node) *Node {
		if groups > 1 {
			return groupedKernelGradient(x, dy, w.Shape().Dimensions, strides, pads, groups)
		}
		return kernelGradient(x, dy, w.Shape().Dimensions, strides, pads)
	})
	xIn := x
	if strides[0] != 1 || strides[1] != 1 || groups > 1 {
		e.input(x, func(dy *Node) *Node { return stridedInputGradient(dy, w, x.Shape().Dimensions, strides, pads, groups) })
		xIn = StopGradient(x)
	}
	y = Convolve(xIn, StopGradient(w)).ChannelsAxis(timages.ChannelsFirst).StridePerAxis(strides...).
		PaddingPerDim(pads).ChannelGroupCount(groups).Done()
	return e.output(y), e.zero
}

// groupedKernelGradient returns dL/dw [O,C/G,kh,kw] of a convolution in G groups: per kernel
// tap, one product batched over the groups of dy as [G, O/G, N*Ho*Wo] and the input pixels the
// tap sees as [G, C/G, N*Ho*Wo].
func groupedKernelGradient(x, dy *Node, wDims, strides []int, pads [][2]int, groups int) *Node {
	o, cg, kh, kw := wDims[0], wDims[1], wDims[2], wDims[3]
	d := dy.Shape().Dimensions
	n, ho, wo := d[0], d[2], d[3]
	m := n * ho * wo
	xc := padHW(TransposeAllDims(x, 1, 0, 2, 3), 2, pads) // [C, N, Hp, Wp]
	dyg := Reshape(TransposeAllDims(dy, 1, 0, 2, 3), groups, o/groups, m)
	taps := make([]*Node, 0, kh*kw)
	for i := range kh {
		for j := range kw {
			tap := Slice(xc, AxisRange(), AxisRange(), AxisRange(i, i+strides[0]*(ho-1)+1).Stride(strides[0]),
				AxisRange(j, j+strides[1]*(wo-1)+1).Stride(strides[1]))
			g := DotGeneral(dyg, []int{2}, []int{0}, Reshape(tap, groups, cg, m), []int{2}, []int{0}) // [G, O/G, C/G]
			taps = append(taps, Reshape(g, o, cg, 1))
		}
	}
	return Reshape(Concatenate(taps, 2), o, cg, kh, kw)
}

// tie returns a scalar zero computed from n: 0 times its first element. Added to the loss, it
// puts n on a path to the loss, so that GoMLX back-propagates to n's custom gradient, at the
// cost of reading one value. (The gradient it sends n, zero, is ignored by the custom gradients,
// so ONNX Runtime prunes it.)
func tie(n *Node) *Node {
	first := make([]SliceAxisSpec, n.Rank())
	for i := range first {
		first[i] = AxisRange(0, 1)
	}
	return MulScalar(Reshape(Slice(n, first...)), 0)
}

// kernelGradient returns dL/dw [O,C,kh,kw] from the input x [N,C,H,W] and dy = dL/dy
// [N,O,Ho,Wo], by whichever of three layouts moves fewer bytes: one product per kernel tap,
// per kernel row (kernelGradientByRows) or in all (kernelGradientIm2col). Per tap takes the
// input channels last and padded, xt [N,Hp,Wp,C], so that the pixels a kernel tap sees are the
// rows of an [N*Ho*Wo, C] matrix; the other two take it channels-first.
func kernelGradient(x, dy *Node, wDims, strides []int, pads [][2]int) *Node {
	o, c, kh, kw := wDims[0], wDims[1], wDims[2], wDims[3]
	// Values read and written per output pixel, in units of one channel of it. Per tap: a
	// copied slice of the input (read, written) and a product that reads dy and packs the slice
	// (once per thread, two here). Per kernel row: the same with kw copies of dy, shifted and
	// stacked once (read, written). That count was made for an earlier channels-last version,
	// which copied more; it is kept, so the choices are those that version was measured on
	// (by rows for the ResNet's stride-1 layers). Im2col: the taps' slices and their concatenation (read,
	// written), one product that reads dy once and packs the stack (two threads), and the
	// input's transpose and pad.
	// By rows needs column stride 1 and more than one column.
	perTap := kh * kw * (o + 4*c)
	byRows := perTap
	if strides[1] == 1 && kw > 1 {
		byRows = 4*kw*o + kh*(kw*o+4*c)
	}
	im2col := o + 6*kh*kw*c + 4*c
	switch {
	case im2col < min(perTap, byRows):
		return kernelGradientIm2col(padHW(TransposeAllDims(x, 1, 0, 2, 3), 2, pads), dy, wDims, strides)
	case byRows < perTap:
		return kernelGradientByRows(x, dy, wDims, strides[0], pads)
	default:
		return kernelGradientPerTap(padHW(TransposeAllDims(x, 0, 2, 3, 1), 1, pads), dy, wDims, strides)
	}
}

// padHW pads n's two spatial axes, hAxis and the one after it, with zeros by pads.
func padHW(n *Node, hAxis int, pads [][2]int) *Node {
	if pads[0] == [2]int{} && pads[1] == [2]int{} {
		return n
	}
	axes := make([]PadAxis, n.Rank())
	axes[hAxis] = PadAxis{Start: pads[0][0], End: pads[0][1]}
	axes[hAxis+1] = PadAxis{Start: pads[1][0], End: pads[1][1]}
	return Pad(n, ScalarZero(n.Graph(), n.DType()), axes...)
}

// kernelGradientPerTap computes the kernel gradient with one product per kernel tap (i,j): dy
// as [O, N*Ho*Wo] times the padded input at rows i, i+s, ... and columns j, j+s, ..., as
// [N*Ho*Wo, C].
func kernelGradientPerTap(xt, dy *Node, wDims, strides []int) *Node {
	o, c, kh, kw := wDims[0], wDims[1], wDims[2], wDims[3]
	d := dy.Shape().Dimensions
	n, ho, wo := d[0], d[2], d[3]
	m := n * ho * wo
	hp, wp := xt.Shape().Dimensions[1], xt.Shape().Dimensions[2]
	dyt := Reshape(TransposeAllDims(dy, 1, 0, 2, 3), o, m)
	taps := make([]*Node, 0, kh*kw)
	for i := range kh {
		for j := range kw {
			tap := xt
			if i != 0 || j != 0 || ho != hp || wo != wp || strides[0] != 1 || strides[1] != 1 {
				tap = Slice(xt, AxisRange(), AxisRange(i, i+strides[0]*(ho-1)+1).Stride(strides[0]),
					AxisRange(j, j+strides[1]*(wo-1)+1).Stride(strides[1]), AxisRange())
			}
			taps = append(taps, Reshape(MatMul(dyt, Reshape(tap, m, c)), o, c, 1))
		}
	}
	return Reshape(Concatenate(taps, 2), o, c, kh, kw)
}

// kernelGradientByRows computes the kernel gradient of a convolution with column stride 1 with
// one product per kernel row i, which serves all the taps (i,j) of that row. The input goes
// channels-first and padded in rows only, xc [C,N,Hp,W]; its rows i, i+s, ... are one
// [C, N*Ho*W] matrix. dy [O,N,Ho,Wo] is shifted per kernel column j onto the input's W columns,
// S_j[.., w] = dy[.., w+pl-j] (zero outside; pl the left pad), and the shifts are stacked once
// into a [kw*O, N*Ho*W] matrix. Each row's product reads its input matrix transposed (ONNX
// Runtime's FusedMatMul). The input is sliced kh times instead of kh*kw, every copy of it is of
// whole rows or planes, and it needs no channels-last transpose; the price is
// the stacked dy (kw-1 shifted copies and a concatenation), so it pays when C is not much
// smaller than O (the caller's byte count decides). On the CIFAR ResNet (batch 64) this is about
// 2% of the training step faster than the same with the input channels-last and padded in
// columns, dy padded per shift (6 interleaved pairs).
func kernelGradientByRows(x, dy *Node, wDims []int, sh int, pads [][2]int) *Node {
	o, c, kh, kw := wDims[0], wDims[1], wDims[2], wDims[3]
	d := dy.Shape().Dimensions
	n, ho, wo := d[0], d[2], d[3]
	w := x.Shape().Dimensions[3]
	zero := ScalarZero(dy.Graph(), dy.DType())
	dyt := TransposeAllDims(dy, 1, 0, 2, 3) // [O, N, Ho, Wo]
	shifted := make([]*Node, kw)
	for j := range kw {
		start := j - pads[1][0] // zeros before dy's first column (negative: columns cropped)
		end := w - wo - start   // zeros after its last (negative: cropped)
		s := dyt
		switch {
		case start == 0 && end == 0:
		case negativePads(dy) || (start >= 0 && end >= 0): // one copy, cropping where negative
			s = Pad(s, zero, PadAxis{}, PadAxis{}, PadAxis{}, PadAxis{Start: start, End: end})
		default: // a crop and a pad
			s = Slice(s, AxisRange(), AxisRange(), AxisRange(), AxisRange(max(-start, 0), wo-max(-end, 0)))
			if start > 0 || end > 0 {
				s = Pad(s, zero, PadAxis{}, PadAxis{}, PadAxis{}, PadAxis{Start: max(start, 0), End: max(end, 0)})
			}
		}
		shifted[j] = s
	}
	stacked := Reshape(Concatenate(shifted, 0), kw*o, n*ho*w)
	xc := TransposeAllDims(x, 1, 0, 2, 3) // [C, N, H, W]
	padded := padRows(xc, pads[0])
	rows := make([]*Node, kh)
	for i := range kh {
		xi := xc // the row tap that sees exactly the input's rows needs no slice
		if i != pads[0][0] || sh != 1 || ho != x.Shape().Dimensions[2] {
			xi = Slice(padded, AxisRange(), AxisRange(), AxisRange(i, i+sh*(ho-1)+1).Stride(sh), AxisRange())
		}
		g := DotGeneral(stacked, []int{1}, nil, Reshape(xi, c, n*ho*w), []int{1}, nil) // [kw*O, C]
		rows[i] = Reshape(g, 1, kw, o, c)
	}
	return TransposeAllDims(Concatenate(rows, 0), 2, 3, 0, 1)
}

// padRows pads axis 2 of n [A,B,H,W] with p[0] zero rows before and p[1] after, as a
// concatenation with zero blocks: each (a, b) plane is one contiguous copy, which ONNX Runtime's
// Concat makes 1.7 times faster than its Pad (365 vs 612 µs on [16,64,32,32]).
func padRows(n *Node, p [2]int) *Node {
	if p == [2]int{} {
		return n
	}
	d := n.Shape().Dimensions
	parts := []*Node{n}
	if p[0] > 0 {
		parts = append([]*Node{Zeros(n.Graph(), shapes.Make(n.DType(), d[0], d[1], p[0], d[3]))}, parts...)
	}
	if p[1] > 0 {
		parts = append(parts, Zeros(n.Graph(), shapes.Make(n.DType(), d[0], d[1], p[1], d[3])))
	}
	return Concatenate(parts, 2)
}

// negativePads reports whether n's graph runs on a backend whose Pad crops where a pad is
// negative, as ONNX's Pad does: ONNX Runtime. GoMLX's Go backend panics on negative pads.
func negativePads(n *Node) bool {
	return n.Graph().Backend().Name() == "onnxruntime"
}

// kernelGradientIm2col computes the kernel gradient with one product: dy as [O, N*Ho*Wo]
// times the transposed im2col matrix of the input, [kh*kw*C, N*Ho*Wo] built channels-first
// (each tap a slice of xc, the padded input as [C,N,Hp,Wp], stacked). That reads dy once instead of once
// per tap, which pays when the input has few channels (a network's first convolution). ONNX
// Runtime fuses the transpose into the product (FusedMatMul), so the stack is not copied again.
// On the CIFAR ResNet's 3-channel stem: 2.2 ms against 5 ms per tap (profiled, batch 64).
func kernelGradientIm2col(xc, dy *Node, wDims, strides []int) *Node {
	o, c, kh, kw := wDims[0], wDims[1], wDims[2], wDims[3]
	d := dy.Shape().Dimensions
	n, ho, wo := d[0], d[2], d[3]
	m := n * ho * wo
	taps := make([]*Node, 0, kh*kw)
	for i := range kh {
		for j := range kw {
			tap := Slice(xc, AxisRange(), AxisRange(), AxisRange(i, i+strides[0]*(ho-1)+1).Stride(strides[0]),
				AxisRange(j, j+strides[1]*(wo-1)+1).Stride(strides[1]))
			taps = append(taps, Reshape(tap, c, m))
		}
	}
	cols := Concatenate(taps, 0) // [kh*kw*C, M], rows (i, j, c)
	dyt := Reshape(TransposeAllDims(dy, 1, 0, 2, 3), o, m)
	g := DotGeneral(dyt, []int{1}, nil, cols, []int{1}, nil) // [O, kh*kw*C]
	return TransposeAllDims(Reshape(g, o, kh, kw, c), 0, 3, 1, 2)
}

// axisPhase is, along one spatial axis of a strided convolution's input gradient, the
// positions h = s*m + r of one residue r: they are reached by the kernel taps q, q+s, ... (taps
// of them), and are the stride-1 correlation of dy by those taps reversed, with dy padded by
// start and end (negative: cropped).
type axisPhase struct {
	r, q, taps int
	count      int // positions with this residue in the input
	start, end int
}

// axisPhases splits an axis of size in (output size out, kernel k, stride s, start pad p) into
// its s residues.
func axisPhases(in, out, k, s, p int) []axisPhase {
	ph := make([]axisPhase, s)
	for r := range s {
		q := (r + p) % s
		taps := 0
		if q < k {
			taps = (k - q + s - 1) / s
		}
		c := (r + p - q) / s
		start := taps - 1 - c
		count := max(0, (in-r+s-1)/s)
		ph[r] = axisPhase{r: r, q: q, taps: taps, count: count, start: start, end: count - out - start + taps - 1}
	}
	return ph
}

// stridedInputGradient returns dL/dx [N,C,H,W] of a strided convolution, by phases: the input
// positions of each pair of row and column residues modulo the stride take a stride-1
// convolution of dy by the kernel taps that reach them (flipped, channel axes swapped), which
// does the FLOPs of the forward convolution in all; the phases are then interleaved by
// products with 0/1 matrices along the columns and an edge pad and reshape along the rows, all
// exact. (Convolving dy with zeros inserted between its pixels gives the same numbers with
// stride² the work.)
//
// A convolution in groups > 1 has a grouped input gradient: the kernel taps of each group, with
// their channel axes swapped, form the kernel of a grouped convolution of dy.
func stridedInputGradient(dy, w *Node, xDims, strides []int, pads [][2]int, groups int) *Node {
	g := dy.Graph()
	d := dy.Shape().Dimensions
	n, ho, wo := d[0], d[2], d[3]
	c, h, wd := xDims[1], xDims[2], xDims[3]
	kh, kw := w.Shape().Dimensions[2], w.Shape().Dimensions[3]
	sh, sw := strides[0], strides[1]
	rowPh := axisPhases(h, ho, kh, sh, pads[0][0])
	colPh := axisPhases(wd, wo, kw, sw, pads[1][0])
	zero := ScalarZero(g, dy.DType())
	rowsM := rowPh[0].count // the most positions of any row residue
	var rows []*Node        // per row residue: [N, C, rowsM, W]
	sels := map[int]*Node{} // per column residue, the 0/1 matrix that spreads its columns
	for _, rp := range rowPh {
		var row *Node
		for _, cp := range colPh {
			if rp.count == 0 || cp.count == 0 || rp.taps == 0 || cp.taps == 0 {
				continue
			}
			u := dy
			if rp.start < 0 || rp.end < 0 || cp.start < 0 || cp.end < 0 {
				u = Slice(dy, AxisRange(), AxisRange(), AxisRange(max(0, -rp.start), ho-max(0, -rp.end)),
					AxisRange(max(0, -cp.start), wo-max(0, -cp.end)))
			}
			sub := Slice(w, AxisRange(), AxisRange(), AxisRange(rp.q, rp.q+sh*(rp.taps-1)+1).Stride(sh),
				AxisRange(cp.q, cp.q+sw*(cp.taps-1)+1).Stride(sw))
			wt := Reverse(swapGroupedChannels(sub, groups), 2, 3) // [C,O/G,taps,taps], flipped
			ph := Convolve(u, wt).ChannelsAxis(timages.ChannelsFirst).
				PaddingPerDim([][2]int{{max(0, rp.start), max(0, rp.end)}, {max(0, cp.start), max(0, cp.end)}}).
				ChannelGroupCount(groups).Done()
			// Columns m of this phase go to s*m + r': a product with a 0/1 matrix.
			if sw > 1 {
				if sels[cp.r] == nil {
					sel := make([]float32, cp.count*wd)
					for m := range cp.count {
						sel[m*wd+sw*m+cp.r] = 1
					}
					sels[cp.r] = ConvertDType(Const(g, tensors.FromFlatDataAndDimensions(sel, cp.count, wd)), dy.DType())
				}
				ph = Reshape(ph, n*c*rp.count, cp.count)
				ph = MatMul(ph, sels[cp.r])
				ph = Reshape(ph, n, c, rp.count, wd)
			}
			if row == nil {
				row = ph
			} else {
				row = Add(row, ph)
			}
		}
		if row == nil {
			row = BroadcastToDims(zero, n, c, rowsM, wd)
		} else if rp.count < rowsM {
			row = Pad(row, zero, PadAxis{}, PadAxis{}, PadAxis{End: rowsM - rp.count}, PadAxis{})
		}
		rows = append(rows, Reshape(row, n, c, rowsM, 1, wd))
	}
	if sh == 1 {
		return Reshape(rows[0], n, c, h, wd)
	}
	// Rows m of residue r go to s*m + r: stacked on an axis after the rows, flattened, cut.
	x := Reshape(Concatenate(rows, 3), n, c, rowsM*sh, wd)
	if rowsM*sh == h {
		return x // a Slice that keeps everything would still copy it
	}
	return Slice(x, AxisRange(), AxisRange(), AxisRange(0, h), AxisRange())
}

// swapGroupedChannels turns a kernel [O, C/G, kh, kw] of a convolution in G groups into the
// kernel [C, O/G, kh, kw] of the grouped convolution that runs it backwards: within each group,
// the input and output channel axes swapped.
func swapGroupedChannels(w *Node, groups int) *Node {
	d := w.Shape().Dimensions
	if groups == 1 {
		return TransposeAllDims(w, 1, 0, 2, 3)
	}
	o, cg, kh, kw := d[0], d[1], d[2], d[3]
	g := Reshape(w, groups, o/groups, cg, kh, kw)
	return Reshape(TransposeAllDims(g, 0, 2, 1, 3, 4), groups*cg, o/groups, kh, kw)
}

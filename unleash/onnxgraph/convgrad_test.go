package onnxgraph_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	timages "github.com/gomlx/gomlx/core/tensors/images"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestExplicitConvGradients checks the explicit convolution gradients (convgrad.go) against
// GoMLX's own on the pure-Go backend, which runs the input-dilated convolution of a strided
// convolution's gradient natively, for strides 1 to 3, square and oblong kernels and inputs, and
// symmetric and lopsided pads (kernels made odd as the importer does); and runs them on the ONNX Runtime backend too, where GoMLX's own
// cannot run for strided convolutions. The loss is sum(conv(x, w) * r) with random r. Grouped
// and depthwise convolutions (groups > 1) are checked against one ungrouped convolution per group,
// concatenated, differentiated by GoMLX.
func TestExplicitConvGradients(t *testing.T) {
	backends := bothBackends(t)
	for _, c := range []struct {
		x, w    [4]int
		strides []int
		pads    [][2]int
		groups  int
	}{
		{[4]int{2, 3, 7, 7}, [4]int{4, 3, 3, 3}, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, 1},
		{[4]int{2, 3, 8, 8}, [4]int{4, 3, 3, 3}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, 1},
		{[4]int{2, 3, 7, 7}, [4]int{4, 3, 3, 3}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, 1},
		{[4]int{2, 3, 9, 8}, [4]int{5, 3, 1, 1}, []int{2, 2}, [][2]int{{0, 0}, {0, 0}}, 1},
		{[4]int{2, 3, 10, 9}, [4]int{4, 3, 5, 3}, []int{3, 2}, [][2]int{{2, 1}, {0, 2}}, 1},
		{[4]int{1, 2, 6, 6}, [4]int{3, 2, 3, 3}, []int{2, 2}, [][2]int{{0, 0}, {1, 1}}, 1},
		{[4]int{2, 2, 6, 5}, [4]int{3, 2, 2, 2}, []int{2, 1}, [][2]int{{0, 0}, {0, 1}}, 1},
		{[4]int{1, 2, 5, 5}, [4]int{2, 2, 3, 3}, []int{1, 1}, [][2]int{{0, 2}, {2, 0}}, 1},
		{[4]int{1, 2, 3, 3}, [4]int{2, 2, 3, 3}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, 1},
		{[4]int{1, 2, 9, 10}, [4]int{3, 2, 3, 3}, []int{4, 3}, [][2]int{{0, 0}, {0, 0}}, 1},
		{[4]int{2, 3, 5, 6}, [4]int{2, 3, 1, 1}, []int{3, 3}, [][2]int{{0, 0}, {0, 0}}, 1},
		// By kernel rows (kernelGradientByRows): row stride 2, and an even kernel with lopsided pads.
		{[4]int{2, 4, 7, 6}, [4]int{4, 4, 3, 3}, []int{2, 1}, [][2]int{{1, 1}, {1, 1}}, 1},
		{[4]int{1, 4, 6, 5}, [4]int{2, 4, 2, 2}, []int{1, 1}, [][2]int{{0, 1}, {1, 0}}, 1},
		// By one im2col product (kernelGradientIm2col): one input channel, strided and lopsided.
		{[4]int{2, 1, 7, 6}, [4]int{8, 1, 3, 3}, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, 1},
		{[4]int{2, 1, 9, 8}, [4]int{8, 1, 3, 2}, []int{2, 1}, [][2]int{{2, 0}, {0, 1}}, 1},
		// Grouped (groupedKernelGradient, grouped phases): two groups, and depthwise with a
		// channel multiplier of 1 and 2, stride 1 and 2, a 5x5 kernel and an even one.
		{[4]int{2, 4, 7, 7}, [4]int{6, 2, 3, 3}, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, 2},
		{[4]int{2, 4, 8, 7}, [4]int{6, 2, 3, 3}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, 2},
		{[4]int{2, 5, 7, 7}, [4]int{5, 1, 3, 3}, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, 5},
		{[4]int{2, 5, 8, 8}, [4]int{5, 1, 3, 3}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, 5},
		{[4]int{2, 3, 9, 9}, [4]int{6, 1, 5, 5}, []int{2, 2}, [][2]int{{2, 2}, {2, 2}}, 3},
		{[4]int{1, 4, 6, 6}, [4]int{4, 1, 2, 2}, []int{1, 1}, [][2]int{{0, 1}, {1, 0}}, 4},
	} {
		groups := max(c.groups, 1)
		name := fmt.Sprintf("x%v-w%v-s%v-p%v-g%d", c.x, c.w, c.strides, c.pads, groups)
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			type array struct {
				v []float32
				d [4]int
			}
			rnd := func(d [4]int) array {
				v := make([]float32, d[0]*d[1]*d[2]*d[3])
				for i := range v {
					v[i] = float32(r.NormFloat64())
				}
				return array{v, d}
			}
			tensor := func(a array) *tensors.Tensor { return tensors.FromFlatDataAndDimensions(a.v, a.d[:]...) }
			x, w := rnd(c.x), rnd(c.w)
			ho := (c.x[2]+c.pads[0][0]+c.pads[0][1]-c.w[2])/c.strides[0] + 1
			wo := (c.x[3]+c.pads[1][0]+c.pads[1][1]-c.w[3])/c.strides[1] + 1
			rt := rnd([4]int{c.x[0], c.w[0], ho, wo})
			grads := func(b compute.Backend, explicit bool) (dx, dw []float32) {
				t.Helper()
				out, err := graph.NewExec(b, func(x, w, r *graph.Node) []*graph.Node {
					// As the importer does: even kernels get a zero tap (GoMLX's own input gradient
					// of even kernels is shifted by a pixel).
					kw, pads := onnxgraph.OddKernel(w, c.w[2:], []int{1, 1}, c.pads)
					var y, zero *graph.Node
					conv := func(x, w *graph.Node) *graph.Node {
						return graph.Convolve(x, w).ChannelsAxis(timages.ChannelsFirst).StridePerAxis(c.strides...).
							PaddingPerDim(pads).Done()
					}
					switch {
					case explicit:
						y, zero = onnxgraph.ConvExplicit(x, kw, c.strides, pads, groups)
					case groups == 1:
						y = conv(x, kw)
					default:
						cg, og := c.x[1]/groups, c.w[0]/groups
						var ys []*graph.Node
						for g := range groups {
							xg := graph.Slice(x, graph.AxisRange(), graph.AxisRange(g*cg, (g+1)*cg))
							wg := graph.Slice(kw, graph.AxisRange(g*og, (g+1)*og))
							ys = append(ys, conv(xg, wg))
						}
						y = graph.Concatenate(ys, 1)
					}
					loss := graph.ReduceAllSum(graph.Mul(y, r))
					if zero != nil {
						loss = graph.Add(loss, zero)
					}
					return append([]*graph.Node{y}, graph.Gradient(loss, x, w)...)
				})
				if err != nil {
					t.Fatal(err)
				}
				defer out.Finalize()
				res, err := out.Call(tensor(x), tensor(w), tensor(rt)) // fresh tensors: each backend keeps its own
				if err != nil {
					t.Fatal(err)
				}
				return tensors.MustCopyFlatData[float32](res[1]), tensors.MustCopyFlatData[float32](res[2])
			}
			wantX, wantW := grads(backends[0].be, false)
			for _, b := range backends {
				gotX, gotW := grads(b.be, true)
				if d := relDiff(gotX, wantX); d > 1e-5 {
					t.Errorf("%s backend: input gradient differs by %.3g (relative to its largest value)", b.name, d)
				}
				if d := relDiff(gotW, wantW); d > 1e-5 {
					t.Errorf("%s backend: kernel gradient differs by %.3g", b.name, d)
				}
			}
		})
	}
}

// relDiff returns max |a-b| / max |b|.
func relDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var worst, scale float64
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	if scale == 0 {
		return math.Inf(1)
	}
	return worst / scale
}

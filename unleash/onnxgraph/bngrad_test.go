package onnxgraph_test

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestBatchNormExplicit checks the closed-form BatchNorm gradient (Options.
// ExplicitBatchNormGradients) against GoMLX's differentiation of the same formula, on both
// backends: values, batch statistics and the gradients with respect to x, scale and bias, for
// 4-D and 3-D inputs with a non-zero mean.
func TestBatchNormExplicit(t *testing.T) {
	backends := bothBackends(t)
	for _, dims := range [][]int{{4, 3, 5, 6}, {6, 2, 7}} {
		r := rand.New(rand.NewPCG(11, 12))
		n := 1
		for _, d := range dims {
			n *= d
		}
		c := dims[1]
		x, up := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64()*2 + 1.5)
			up[i] = float32(r.NormFloat64())
		}
		scale, bias := make([]float32, c), make([]float32, c)
		for i := range scale {
			scale[i], bias[i] = float32(0.5+r.Float64()), float32(r.NormFloat64())
		}
		axes := []int{0}
		for i := 2; i < len(dims); i++ {
			axes = append(axes, i)
		}
		run := func(b compute.Backend, explicit bool) [][]float32 {
			t.Helper()
			exec, err := graph.NewExec(b, func(x, s, bi, up *graph.Node) []*graph.Node {
				var y, mean, variance, zero *graph.Node
				if explicit {
					y, mean, variance, zero = onnxgraph.BatchNormExplicit(x, s, bi, axes, 1e-5)
				} else {
					bshape := make([]int, len(dims))
					for i := range bshape {
						bshape[i] = 1
					}
					bshape[1] = c
					bc := func(v *graph.Node) *graph.Node { return graph.Reshape(v, bshape...) }
					mean = graph.ReduceMean(x, axes...)
					xc := graph.Sub(x, bc(mean))
					variance = graph.ReduceMean(graph.Square(xc), axes...)
					y = graph.Add(graph.Mul(xc, bc(graph.Div(s, graph.Sqrt(graph.AddScalar(variance, 1e-5))))), bc(bi))
				}
				loss := graph.ReduceAllSum(graph.Mul(y, up))
				if zero != nil {
					loss = graph.Add(loss, zero)
				}
				return append([]*graph.Node{y, mean, variance}, graph.Gradient(loss, x, s, bi)...)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer exec.Finalize()
			out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, dims...), tensors.FromFlatDataAndDimensions(scale, c),
				tensors.FromFlatDataAndDimensions(bias, c), tensors.FromFlatDataAndDimensions(up, dims...))
			if err != nil {
				t.Fatal(err)
			}
			var res [][]float32
			for _, o := range out {
				res = append(res, tensors.MustCopyFlatData[float32](o))
			}
			return res
		}
		want := run(backend(t), false)
		names := []string{"y", "mean", "variance", "dx", "dscale", "dbias"}
		for _, b := range backends {
			got := run(b.be, true)
			for i := range want {
				if d := relDiff(got[i], want[i]); d > 1e-5 {
					t.Errorf("%v, %s backend: %s differs by %.3g (relative to its largest value)", dims, b.name, names[i], d)
				}
			}
		}
	}
}

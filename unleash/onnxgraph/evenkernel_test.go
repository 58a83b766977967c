package onnxgraph_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestEvenKernelInputGradient checks the input gradient of a model with a 2x2 convolution
// (testdata/unleash/odineven.onnx) against central finite differences. GoMLX v0.28.8 alone
// shifts it by one pixel; the importer's zero-tap padding (oddKernel) makes it right.
func TestEvenKernelInputGradient(t *testing.T) {
	m, err := onnxgraph.Load(modelPath(t, "unleash/odineven.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	n := m.Channels * m.Height * m.Width
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	// f(x) = sum_k w_k * logit_k, with fixed random weights w.
	var weights []float32
	b := backend(t)
	f := func(x *graph.Node) (*graph.Node, *graph.Node) {
		z, _ := m.Build(x, nil, onnxgraph.Inference)
		if weights == nil {
			k := z.Shape().Dimensions[1]
			for i := 0; i < k; i++ {
				weights = append(weights, float32(r.NormFloat64()))
			}
		}
		w := graph.Const(x.Graph(), tensors.FromFlatDataAndDimensions(weights, 1, len(weights)))
		return graph.ReduceAllSum(graph.Mul(z, w)), z
	}
	gradExec, err := graph.NewExec(b, func(x *graph.Node) []*graph.Node {
		y, _ := f(x)
		return []*graph.Node{y, graph.Gradient(y, x)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gradExec.Finalize()
	eval := func(x []float32) float64 {
		out, err := gradExec.Call(tensors.FromFlatDataAndDimensions(x, 1, m.Channels, m.Height, m.Width))
		if err != nil {
			t.Fatal(err)
		}
		return float64(tensors.MustCopyFlatData[float32](out[0])[0])
	}
	out, err := gradExec.Call(tensors.FromFlatDataAndDimensions(x, 1, m.Channels, m.Height, m.Width))
	if err != nil {
		t.Fatal(err)
	}
	grad := tensors.MustCopyFlatData[float32](out[1])

	const h = 1e-2
	var worst, scale float64
	for _, i := range []int{0, 1, n / 3, n / 2, n/2 + 1, n - 2, n - 1} {
		xp := append([]float32(nil), x...)
		xm := append([]float32(nil), x...)
		xp[i] += h
		xm[i] -= h
		fd := (eval(xp) - eval(xm)) / (2 * h)
		worst = math.Max(worst, math.Abs(fd-float64(grad[i])))
		scale = math.Max(scale, math.Abs(fd))
	}
	if scale == 0 {
		t.Fatal("the checked pixels have no gradient; the test would prove nothing")
	}
	if worst > 2e-2*scale {
		t.Errorf("input gradient differs from finite differences by %.3g (scale %.3g)", worst, scale)
	}
}

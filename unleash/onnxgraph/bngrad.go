package onnxgraph

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads as math
)

// batchNormExplicit is training-mode BatchNormalization of x [N,C,...] over axes (all but the
// channels) with the closed-form gradient, for Options.ExplicitBatchNormGradients. With
// xc = x - mean, rstd = 1/sqrt(var + eps), a = scale*rstd and y = xc*a + bias:
//
//	dbias  = sum(dy)
//	dscale = rstd * sum(dy*xc)
//	dx     = a*dy - xc * (a*rstd²*mean(dy*xc)) - a*mean(dy)
//
// (sums and means over axes, per channel). That is seven activation-sized passes where GoMLX's
// differentiation of the mean, the variance and the product takes about eleven, with two
// broadcasts it materialises. It returns y, the batch mean and the biased batch variance (for
// the running statistics), and the scalar zero the caller adds to the model's output (see
// explicitGrad).
func batchNormExplicit(x, scale, bias *Node, axes []int, eps float64) (y, mean, variance, zero *Node) {
	bshape := onesInts(x.Rank())
	bshape[1] = x.Shape().Dimensions[1]
	bc := func(v *Node) *Node { return Reshape(v, bshape...) }
	count := 1
	for _, a := range axes {
		count *= x.Shape().Dimensions[a]
	}
	xs := StopGradient(x)
	mean = ReduceMean(xs, axes...)
	xc := Sub(xs, bc(mean))
	variance = ReduceMean(Square(xc), axes...)
	rstd := Inverse(Sqrt(AddScalar(variance, eps)))
	a := Mul(StopGradient(scale), rstd)
	out := Add(Mul(xc, bc(a)), bc(StopGradient(bias)))

	var e explicitGrad
	var sumDy, sumDyXc *Node // computed once, by whichever gradient back-propagation reaches first
	sums := func(dy *Node) {
		if sumDy == nil {
			sumDy = ReduceSum(dy, axes...)
			sumDyXc = ReduceSum(Mul(dy, xc), axes...)
		}
	}
	e.input(x, func(dy *Node) *Node {
		sums(dy)
		k := Mul(Mul(a, Square(rstd)), DivScalar(sumDyXc, float64(count)))
		return Sub(Sub(Mul(dy, bc(a)), Mul(xc, bc(k))), bc(Mul(a, DivScalar(sumDy, float64(count)))))
	})
	e.input(scale, func(dy *Node) *Node { sums(dy); return Mul(sumDyXc, rstd) })
	e.input(bias, func(dy *Node) *Node { sums(dy); return sumDy })
	return e.output(out), mean, variance, e.zero
}

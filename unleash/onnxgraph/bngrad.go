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
// the running statistics), and the scalar zero that ties the custom-gradient identities to the
// loss (see convExplicit), which the caller adds to the model's output.
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

	var dy, sumDy, sumDyXc *Node // recorded and computed during back-propagation
	sums := func() {
		if sumDy == nil {
			sumDy = ReduceSum(dy, axes...)
			sumDyXc = ReduceSum(Mul(dy, xc), axes...)
		}
	}
	xg := IdentityWithCustomGradient(x, func(_, v *Node) *Node {
		if dy == nil {
			return v
		}
		sums()
		k := Mul(Mul(a, Square(rstd)), DivScalar(sumDyXc, float64(count)))
		return Sub(Sub(Mul(dy, bc(a)), Mul(xc, bc(k))), bc(Mul(a, DivScalar(sumDy, float64(count)))))
	})
	sg := IdentityWithCustomGradient(scale, func(_, v *Node) *Node {
		if dy == nil {
			return v
		}
		sums()
		return Mul(sumDyXc, rstd)
	})
	bg := IdentityWithCustomGradient(bias, func(_, v *Node) *Node {
		if dy == nil {
			return v
		}
		sums()
		return sumDy
	})
	zero = Add(Add(tie(xg), tie(sg)), tie(bg))
	y = IdentityWithCustomGradient(out, func(_, v *Node) *Node {
		dy = v
		return v
	})
	return y, mean, variance, zero
}

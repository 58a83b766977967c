package onnxgraph_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestMaxPoolExplicit checks the explicit max-pool gradient (Options.ExplicitMaxPoolGradients)
// against a direct computation on both backends: values drawn from four levels, so that windows
// often hold several equal maxima, whose gradient must go to the first in row-major order only
// (PyTorch's rule), and sizes that leave rows and columns outside the last window.
func TestMaxPoolExplicit(t *testing.T) {
	backends := bothBackends(t)
	for _, c := range []struct {
		dims   [4]int
		kh, kw int
	}{
		{[4]int{2, 3, 8, 8}, 2, 2},
		{[4]int{2, 2, 7, 9}, 2, 2},
		{[4]int{1, 2, 9, 7}, 3, 2},
		{[4]int{1, 2, 6, 5}, 1, 2},
	} {
		t.Run(fmt.Sprintf("%v-k%dx%d", c.dims, c.kh, c.kw), func(t *testing.T) {
			n, ch, h, w := c.dims[0], c.dims[1], c.dims[2], c.dims[3]
			ho, wo := h/c.kh, w/c.kw
			r := rand.New(rand.NewPCG(7, 8))
			x := make([]float32, n*ch*h*w)
			for i := range x {
				x[i] = float32(r.IntN(4)) - 1 // -1, 0, 1, 2: many ties
			}
			up := make([]float32, n*ch*ho*wo) // the gradient arriving at the output
			for i := range up {
				up[i] = float32(r.NormFloat64())
			}
			wantY := make([]float32, len(up))
			wantDX := make([]float32, len(x))
			for p := range n * ch {
				for oy := range ho {
					for ox := range wo {
						best := -1
						for i := range c.kh {
							for j := range c.kw {
								at := p*h*w + (oy*c.kh+i)*w + ox*c.kw + j
								if best < 0 || x[at] > x[best] {
									best = at
								}
							}
						}
						o := p*ho*wo + oy*wo + ox
						wantY[o] = x[best]
						wantDX[best] += up[o]
					}
				}
			}
			for _, b := range backends {
				exec, err := graph.NewExec(b.be, func(x, up *graph.Node) []*graph.Node {
					y, zero := onnxgraph.MaxPoolExplicit(x, c.kh, c.kw)
					loss := graph.Add(graph.ReduceAllSum(graph.Mul(y, up)), zero)
					return []*graph.Node{y, graph.Gradient(loss, x)[0]}
				})
				if err != nil {
					t.Fatal(err)
				}
				out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, c.dims[:]...),
					tensors.FromFlatDataAndDimensions(up, n, ch, ho, wo))
				exec.Finalize()
				if err != nil {
					t.Fatal(err)
				}
				if got := tensors.MustCopyFlatData[float32](out[0]); !slices.Equal(got, wantY) {
					t.Errorf("%s backend: pooled values differ", b.name)
				}
				if got := tensors.MustCopyFlatData[float32](out[1]); !slices.Equal(got, wantDX) {
					t.Errorf("%s backend: gradient differs (ties must send it to the first maximum only)", b.name)
				}
			}
		})
	}
}

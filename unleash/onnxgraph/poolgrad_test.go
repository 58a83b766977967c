package onnxgraph_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	timages "github.com/gomlx/gomlx/core/tensors/images"
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

// TestMaxPoolExplicitPadded checks the explicit gradient of max pools with overlapping, strided
// and padded windows (ResNet's and DenseNet's 3x3/2 pad 1 stem pool, SqueezeNet's 3x3/2 in ceil
// mode) against a direct computation on both backends, with many ties (first maximum in
// row-major order wins, overlapping windows add up). It logs how GoMLX's own gradient of the
// same pool compares on each backend.
func TestMaxPoolExplicitPadded(t *testing.T) {
	backends := bothBackends(t)
	for _, c := range []struct {
		dims    [4]int
		kernel  [2]int
		strides [2]int
		pads    [][2]int
	}{
		{[4]int{2, 3, 8, 8}, [2]int{3, 3}, [2]int{2, 2}, [][2]int{{1, 1}, {1, 1}}},
		{[4]int{1, 2, 7, 7}, [2]int{3, 3}, [2]int{2, 2}, [][2]int{{0, 0}, {0, 0}}},
		{[4]int{1, 2, 8, 8}, [2]int{3, 3}, [2]int{2, 2}, [][2]int{{0, 1}, {0, 1}}}, // ceil mode
		{[4]int{2, 2, 6, 7}, [2]int{3, 2}, [2]int{1, 2}, [][2]int{{1, 1}, {0, 1}}},
		{[4]int{1, 2, 5, 5}, [2]int{2, 2}, [2]int{2, 2}, [][2]int{{1, 0}, {1, 0}}},
	} {
		t.Run(fmt.Sprintf("%v-k%v-s%v-p%v", c.dims, c.kernel, c.strides, c.pads), func(t *testing.T) {
			n, ch, h, w := c.dims[0], c.dims[1], c.dims[2], c.dims[3]
			kh, kw, sh, sw := c.kernel[0], c.kernel[1], c.strides[0], c.strides[1]
			ho := (h+c.pads[0][0]+c.pads[0][1]-kh)/sh + 1
			wo := (w+c.pads[1][0]+c.pads[1][1]-kw)/sw + 1
			r := rand.New(rand.NewPCG(9, 10))
			x := make([]float32, n*ch*h*w)
			for i := range x {
				x[i] = float32(r.IntN(4)) - 1
			}
			up := make([]float32, n*ch*ho*wo)
			for i := range up {
				up[i] = float32(r.NormFloat64())
			}
			wantY := make([]float32, len(up))
			wantDX := make([]float32, len(x))
			for p := range n * ch {
				for oy := range ho {
					for ox := range wo {
						best := -1
						for i := range kh {
							for j := range kw {
								iy, ix := oy*sh+i-c.pads[0][0], ox*sw+j-c.pads[1][0]
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								at := p*h*w + iy*w + ix
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
				for _, explicit := range []bool{true, false} {
					exec, err := graph.NewExec(b.be, func(x, up *graph.Node) []*graph.Node {
						var y, zero *graph.Node
						if explicit {
							y, zero = onnxgraph.MaxPoolExplicitPadded(x, c.kernel[:], c.strides[:], c.pads)
						} else {
							xp := graph.Pad(x, graph.Infinity(x.Graph(), x.DType(), -1), graph.PadAxis{}, graph.PadAxis{},
								graph.PadAxis{Start: c.pads[0][0], End: c.pads[0][1]}, graph.PadAxis{Start: c.pads[1][0], End: c.pads[1][1]})
							y = graph.MaxPool(xp).ChannelsAxis(timages.ChannelsFirst).WindowPerAxis(c.kernel[:]...).
								StridePerAxis(c.strides[:]...).NoPadding().Done()
						}
						loss := graph.ReduceAllSum(graph.Mul(y, up))
						if zero != nil {
							loss = graph.Add(loss, zero)
						}
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
					gotY, gotDX := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
					if !explicit {
						t.Logf("%s backend, GoMLX's own gradient: pooled values equal %v, gradient off by %.3g", b.name,
							slices.Equal(gotY, wantY), relDiff(gotDX, wantDX))
						continue
					}
					if !slices.Equal(gotY, wantY) {
						t.Errorf("%s backend: pooled values differ", b.name)
					}
					if d := relDiff(gotDX, wantDX); d > 1e-6 {
						t.Errorf("%s backend: gradient differs by %.3g (ties must send it to the first maximum only)", b.name, d)
					}
				}
			}
		})
	}
}

package preprocess

import (
	"image"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/oodguard/oodguard/dataset"
)

// FuzzPathsAgree builds an image of a fuzzed type, size, origin and content and checks that the
// direct path gives bit-for-bit what the generic At path gives, at the input size and resampled,
// for 1 and 3 channels. It reaches what TestPathsAgree's fixed sizes do not: odd sizes and
// origins (negative ones too) for every YCbCr subsampling, planes and translucent RGBA. An image
// whose pixel slices do not cover its bounds must be refused with an error, never a panic.
func FuzzPathsAgree(f *testing.F) {
	f.Add(uint8(0), uint8(7), uint8(5), int8(0), int8(0), uint8(3), uint8(4), uint64(1))
	f.Add(uint8(1), uint8(9), uint8(6), int8(-3), int8(5), uint8(4), uint8(4), uint64(2))
	f.Add(uint8(4), uint8(13), uint8(3), int8(1), int8(-2), uint8(6), uint8(2), uint64(3))
	f.Add(uint8(8), uint8(1), uint8(1), int8(-1), int8(-1), uint8(2), uint8(3), uint64(4))
	f.Fuzz(func(t *testing.T, kind, w, h uint8, x0, y0 int8, ow, oh uint8, seed uint64) {
		w, h, ow, oh = 1+w%24, 1+h%24, 1+ow%12, 1+oh%12
		r := image.Rect(int(x0), int(y0), int(x0)+int(w), int(y0)+int(h))
		img := fuzzImage(kind, r, rand.New(rand.NewPCG(seed, 7)))
		for _, c := range []int{1, 3} {
			for _, size := range [][2]int{{int(w), int(h)}, {int(ow), int(oh)}} {
				s := spec(size[0], size[1], c, 0.3, 0.2)
				if c == 3 {
					s.Mean, s.Std = []float32{0.3, 0.5, 0.1}, []float32{0.2, 0.25, 0.3}
				}
				if seed%2 == 1 {
					s.Resize = ResizeCenterCrop
				}
				pre, err := New(s)
				if err != nil {
					t.Fatal(err)
				}
				direct := make([]float32, pre.Len())
				if err := pre.Process(direct, img); err != nil {
					// Only an image whose pixels do not cover its bounds may be refused (the
					// image package's own At would index out of range on it).
					if checkPixels(img, img.Bounds()) == nil {
						t.Fatalf("%T %v: %v", img, r, err)
					}
					return
				}
				if generic := process(t, s, opaque{img}); !slices.Equal(direct, generic) {
					t.Fatalf("%T %v, %d channels, %dx%d: the direct path differs from the At path", img, r, c, size[0], size[1])
				}
			}
		}
	})
}

// fuzzImage returns an image of one of the directly read types with bounds r and random pixels.
func fuzzImage(kind uint8, r image.Rectangle, rng *rand.Rand) image.Image {
	fill := func(p []uint8) {
		for i := range p {
			p[i] = uint8(rng.Uint32())
		}
	}
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411,
		image.YCbCrSubsampleRatio410}
	switch k := int(kind) % 10; {
	case k < len(ratios):
		m := image.NewYCbCr(r, ratios[k])
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		return m
	case k == 6:
		m := image.NewGray(r)
		fill(m.Pix)
		return m
	case k == 7:
		m := image.NewNRGBA(r)
		fill(m.Pix)
		return m
	case k == 8: // premultiplied: no colour value above its alpha
		m := image.NewRGBA(r)
		for i := 0; i < len(m.Pix); i += 4 {
			a := uint8(rng.Uint32())
			for c := range 3 {
				m.Pix[i+c] = uint8(rng.UintN(uint(a) + 1))
			}
			m.Pix[i+3] = a
		}
		return m
	default:
		m := dataset.NewPlanarRGB(r)
		fill(m.Pix)
		return m
	}
}

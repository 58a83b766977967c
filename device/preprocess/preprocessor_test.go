package preprocess

import (
	"image"
	"image/color"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/dataset"
)

// spec returns a stretch spec of w x h with c channels, mean and std per channel.
func spec(w, h, c int, mean, std float32) Spec {
	return Spec{Width: w, Height: h, Channels: c, Mean: slices.Repeat([]float32{mean}, c), Std: slices.Repeat([]float32{std}, c)}
}

// process runs a new Preprocessor for s on img and returns the tensor.
func process(t testing.TB, s Spec, img image.Image) []float32 {
	t.Helper()
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, p.Len())
	if err := p.Process(dst, img); err != nil {
		t.Fatal(err)
	}
	return dst
}

// levels undoes a mean 0, std 1 normalisation: it returns the tensor scaled back to 0..255.
func levels(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x) * 255
	}
	return out
}

// near reports whether got and want agree within tol everywhere.
func near(got, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			return false
		}
	}
	return true
}

func TestExactValues(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 2, 2))
	copy(g.Pix, []uint8{0, 255, 51, 204})
	got := process(t, spec(2, 2, 1, 0.5, 0.25), g)
	if want := []float32{-2, 2, -1.2, 1.2}; !slices.Equal(got, want) {
		t.Errorf("gray: got %v, want %v", got, want)
	}

	m := image.NewRGBA(image.Rect(0, 0, 1, 1))
	copy(m.Pix, []uint8{255, 0, 51, 255})
	s := Spec{Width: 1, Height: 1, Channels: 3, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.25, 0.5}}
	if got, want := process(t, s, m), []float32{1, -2, -0.6}; !slices.Equal(got, want) {
		t.Errorf("rgb: got %v, want %v", got, want)
	}
}

func TestGrayToRGB(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(g.Pix, []uint8{0, 10, 20, 30, 40, 255})
	s := Spec{Width: 3, Height: 2, Channels: 3, Mean: []float32{0, 0.1, 0.2}, Std: []float32{1, 0.5, 0.25}}
	got := process(t, s, g)
	for c := range 3 {
		for i, v := range g.Pix {
			want := (float64(v)/255 - float64(s.Mean[c])) / float64(s.Std[c])
			if math.Abs(float64(got[c*6+i])-want) > 1e-6 {
				t.Errorf("channel %d pixel %d = %v, want %v", c, i, got[c*6+i], want)
			}
		}
	}
}

func TestRGBToGray(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	copy(m.Pix, []uint8{255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 10, 200, 30, 255})
	got := levels(process(t, spec(4, 1, 1, 0, 1), m))
	// 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, 0.299*10+0.587*200+0.114*30 = 123.8.
	if want := []float64{76, 150, 29, 124}; !near(got, want, 1e-4) {
		t.Errorf("luma %v, want %v", got, want)
	}
	// The fixed-point weights stay within 0.003 of 0.299, 0.587, 0.114 scaled to 255.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		r, g, b := uint8(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32())
		exact := 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
		if got := luma(r, g, b); math.Abs(float64(got)-exact) > 0.5+0.003 {
			t.Fatalf("luma(%d, %d, %d) = %d, want %.3f rounded", r, g, b, got, exact)
		}
	}
}

// columns returns a w x h gray image whose pixel (x, y) is 10*x + 50*y.
func columns(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.SetGray(x, y, color.Gray{uint8(10*x + 50*y)})
		}
	}
	return g
}

func TestResizeGeometry(t *testing.T) {
	crop := func(w, h int) Spec { s := spec(w, h, 1, 0, 1); s.Resize = ResizeCenterCrop; return s }
	for _, tc := range []struct {
		name string
		s    Spec
		img  image.Image
		want []float64
	}{
		// 4x2 to 2x2: the shorter side already fits; crop columns 1 and 2.
		{"crop-wide", crop(2, 2), columns(4, 2), []float64{10, 20, 60, 70}},
		// 2x4 to 2x2: crop rows 1 and 2.
		{"crop-tall", crop(2, 2), columns(2, 4), []float64{50, 60, 100, 110}},
		// 8x4 to 2x2: scale by 1/2, window of 4x4 at x=2: each output averages 2x2 pixels.
		{"crop-scale", crop(2, 2), columns(8, 4), []float64{50, 70, 150, 170}},
		// 4x2 to 2x1 keeps the aspect ratio: the window is the whole frame.
		{"crop-same-aspect", crop(2, 1), columns(4, 2), []float64{30, 50}},
		// 4x4 stretched to 2x2: averages of 2x2 blocks.
		{"stretch-down", spec(2, 2, 1, 0, 1), columns(4, 4), []float64{30, 50, 130, 150}},
		// 2x1 stretched to 4x1: source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
		{"stretch-up", spec(4, 1, 1, 0, 1), columns(2, 1), []float64{0, 2.5, 7.5, 10}},
		// 4x1 stretched to 2x3: rows are all the single source row.
		{"stretch-rows", spec(2, 3, 1, 0, 1), columns(4, 1), []float64{5, 25, 5, 25, 5, 25}},
	} {
		if got := levels(process(t, tc.s, tc.img)); !near(got, tc.want, 1e-4) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// opaque hides an image's concrete type, forcing the generic At path.
type opaque struct{ image.Image }

// testImages returns random images of w x h of each directly-read type, some with
// translucent pixels, and one sub-image whose bounds do not start at the origin.
func testImages(w, h int) map[string]image.Image {
	rng := rand.New(rand.NewPCG(3, 4))
	r := image.Rect(0, 0, w, h)
	gray, rgba, nrgba := image.NewGray(r), image.NewRGBA(r), image.NewNRGBA(r)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(rng.Uint32())
	}
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(rng.Uint32())
	}
	for i := 0; i < len(rgba.Pix); i += 4 {
		a := uint8(rng.Uint32())
		if i%8 == 0 {
			a = 255
		}
		for c := range 3 {
			rgba.Pix[i+c] = uint8(rng.UintN(uint(a) + 1))
		}
		rgba.Pix[i+3] = a
	}
	imgs := map[string]image.Image{"gray": gray, "rgba": rgba, "nrgba": nrgba}
	for name, ratio := range map[string]image.YCbCrSubsampleRatio{
		"420": image.YCbCrSubsampleRatio420, "444": image.YCbCrSubsampleRatio444, "422": image.YCbCrSubsampleRatio422,
		"440": image.YCbCrSubsampleRatio440, "411": image.YCbCrSubsampleRatio411, "410": image.YCbCrSubsampleRatio410,
	} {
		y := image.NewYCbCr(r, ratio)
		for _, p := range [][]uint8{y.Y, y.Cb, y.Cr} {
			for i := range p {
				p[i] = uint8(rng.Uint32())
			}
		}
		imgs["ycbcr"+name] = y
	}
	big := image.NewRGBA(image.Rect(-3, -2, w+5, h+4))
	for i := range big.Pix {
		big.Pix[i] = uint8(rng.Uint32()) | 1
	}
	imgs["sub-rgba"] = big.SubImage(image.Rect(1, 1, w+1, h+1))
	bigY := image.NewYCbCr(image.Rect(0, 0, w+3, h+3), image.YCbCrSubsampleRatio420)
	for _, p := range [][]uint8{bigY.Y, bigY.Cb, bigY.Cr} {
		for i := range p {
			p[i] = uint8(rng.Uint32())
		}
	}
	imgs["sub-ycbcr"] = bigY.SubImage(image.Rect(1, 3, w+1, h+3))
	planar := dataset.NewPlanarRGB(image.Rect(2, -1, w+2, h-1)) // CIFAR's layout, off the origin
	for i := range planar.Pix {
		planar.Pix[i] = uint8(rng.Uint32())
	}
	imgs["planar"] = planar
	return imgs
}

func TestPathsAgree(t *testing.T) {
	const w, h = 7, 5
	for _, c := range []int{1, 3} {
		s := spec(w, h, c, 0.3, 0.2)
		if c == 3 { // a different normalisation per channel, so that a channel mix-up shows
			s.Mean, s.Std = []float32{0.3, 0.5, 0.1}, []float32{0.2, 0.25, 0.3}
		}
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		for name, img := range testImages(w, h) {
			fast, generic, resampled := make([]float32, p.Len()), make([]float32, p.Len()), make([]float32, p.Len())
			if err := p.Process(fast, img); err != nil {
				t.Fatal(err)
			}
			if err := p.Process(generic, opaque{img}); err != nil {
				t.Fatal(err)
			}
			p.resample(resampled, img, img.Bounds()) // the resampling path at the identity size
			if !slices.Equal(fast, generic) {
				t.Errorf("%d channels, %s: the direct path differs from the At path", c, name)
			}
			if !slices.Equal(fast, resampled) {
				t.Errorf("%d channels, %s: the identity path differs from the resampling path", c, name)
			}
		}
		// Resampling reads the direct types and the At path identically too.
		for _, mode := range []ResizeMode{ResizeStretch, ResizeCenterCrop} {
			s := spec(3, 4, c, 0.3, 0.2)
			if c == 3 {
				s.Mean, s.Std = []float32{0.3, 0.5, 0.1}, []float32{0.2, 0.25, 0.3}
			}
			s.Resize = mode
			for name, img := range testImages(w, h) {
				if a, b := process(t, s, img), process(t, s, opaque{img}); !slices.Equal(a, b) {
					t.Errorf("%d channels, %s, %s: resampling differs between the direct and At paths", c, mode, name)
				}
			}
		}
	}
}

// TestYCbCrTables checks the table path of gatherYCbCr against color.YCbCrToRGB and luma for
// every (y, cb, cr).
func TestYCbCrTables(t *testing.T) {
	for y := range 256 {
		for cb := range 256 {
			for cr := range 256 {
				r, g, b := color.YCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				ir, ig, ib := ycbcrIndices(uint8(y), uint8(cb), uint8(cr))
				if clamp8[ir] != r || clamp8[ig] != g || clamp8[ib] != b {
					t.Fatalf("(%d, %d, %d): tables give %d %d %d, want %d %d %d", y, cb, cr, clamp8[ir], clamp8[ig], clamp8[ib], r, g, b)
				}
				if l := tableLuma(ir, ig, ib); l != luma(r, g, b) {
					t.Fatalf("(%d, %d, %d): table luma %d, want %d", y, cb, cr, l, luma(r, g, b))
				}
			}
		}
	}
}

func TestUnpremultiply(t *testing.T) {
	for a := range 256 {
		for v := 0; v <= a; v++ {
			want := color.NRGBAModel.Convert(color.RGBA{uint8(v), 0, uint8(v), uint8(a)}).(color.NRGBA)
			if r, _, b := unpremultiply(uint8(v), 0, uint8(v), uint8(a)); r != want.R || b != want.B {
				t.Fatalf("unpremultiply(%d, alpha %d) = %d, want %d", v, a, r, want.R)
			}
		}
	}
}

func TestProcessErrors(t *testing.T) {
	p, err := New(spec(2, 2, 1, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Process(make([]float32, 3), columns(2, 2)); err == nil {
		t.Error("short dst accepted")
	}
	if err := p.Process(make([]float32, 4), image.NewGray(image.Rect(0, 0, 0, 3))); err == nil {
		t.Error("empty image accepted")
	}
	if err := p.Process(make([]float32, 4), nil); err == nil {
		t.Error("nil image accepted")
	}
	// Pixel data that does not cover the bounds: cut short, and a 4:1:1 image two pixels wide
	// left of the origin, whose chroma planes image.NewYCbCr sizes to zero columns.
	short := image.NewGray(image.Rect(0, 0, 2, 2))
	short.Pix = short.Pix[:3]
	for _, img := range []image.Image{short, image.NewYCbCr(image.Rect(-3, 0, -1, 2), image.YCbCrSubsampleRatio411),
		&dataset.PlanarRGB{Pix: make([]uint8, 11), Rect: image.Rect(0, 0, 2, 2)}} {
		if err := p.Process(make([]float32, 4), img); err == nil || !strings.Contains(err.Error(), "does not cover") {
			t.Errorf("%T %v with short pixel data: %v, want an error", img, img.Bounds(), err)
		}
	}
	if _, err := New(Spec{Width: 1}); err == nil {
		t.Error("New accepted an invalid spec")
	}
	if got := p.Spec(); got.Layout != LayoutNCHW || got.Resize != ResizeStretch {
		t.Errorf("Spec defaults: layout %q resize %q", got.Layout, got.Resize)
	}
}

// smooth returns opaque w x h images of each directly-read type with smooth, camera-like
// content, for the allocation test and the benchmarks.
func smooth(w, h int) map[string]image.Image {
	r := image.Rect(0, 0, w, h)
	gray, rgba, nrgba := image.NewGray(r), image.NewRGBA(r), image.NewNRGBA(r)
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	planar := dataset.NewPlanarRGB(r)
	pr, pg, pb, _ := planar.Planes()
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(255 * x / w), uint8(255 * y / h), uint8(128 + 100*math.Sin(float64(x+y)/9)), 255}
			pr[y*w+x], pg[y*w+x], pb[y*w+x] = c.R, c.G, c.B
			rgba.SetRGBA(x, y, c)
			nrgba.SetNRGBA(x, y, color.NRGBA(c))
			gray.SetGray(x, y, color.Gray{luma(c.R, c.G, c.B)})
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)] = yy
			ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = cb, cr
		}
	}
	return map[string]image.Image{"Gray": gray, "RGBA": rgba, "NRGBA": nrgba, "YCbCr420": ycc, "Planar": planar}
}

// allocCases are the images the allocation test and the benchmarks feed a 32x32 model:
// 32x32 images (no resampling) and 640x480 frames (resampled).
func allocCases() map[string]image.Image {
	cases := smooth(32, 32)
	for name, img := range smooth(640, 480) {
		cases["Resize-"+name] = img
	}
	cases["Generic-NRGBA"] = opaque{cases["NRGBA"]}
	return cases
}

func TestZeroAllocs(t *testing.T) {
	for _, c := range []int{1, 3} {
		for _, mode := range []ResizeMode{ResizeStretch, ResizeCenterCrop} {
			s := spec(32, 32, c, 0.5, 0.25)
			s.Resize = mode
			p, err := New(s)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, p.Len())
			for name, img := range allocCases() {
				if name == "Generic-NRGBA" {
					continue // At allocates
				}
				if err := p.Process(dst, img); err != nil {
					t.Fatal(err)
				}
				if n := testing.AllocsPerRun(20, func() { p.Process(dst, img) }); n != 0 {
					t.Errorf("%d channels, %s, %s: %v allocations per call, want 0", c, mode, name, n)
				}
			}
		}
	}
}

func BenchmarkProcess(b *testing.B) {
	for _, c := range []int{1, 3} {
		s := spec(32, 32, c, 0.5, 0.25)
		s.Resize = ResizeCenterCrop
		p, err := New(s)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, p.Len())
		cases := allocCases()
		for _, name := range slices.Sorted(maps.Keys(cases)) {
			img := cases[name]
			b.Run(name+"/"+[]string{"", "gray", "", "rgb"}[c], func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p.Process(dst, img)
				}
			})
		}
	}
}

// BenchmarkSampleFrames preprocesses frames like the daemon's sample frames (28x28 gray PNG,
// 64x64 4:2:0 JPEG) for the two test models' specs: Fashion-MNIST (28x28 gray) and CIFAR-10
// (32x32 RGB).
func BenchmarkSampleFrames(b *testing.B) {
	frames := map[string]image.Image{"gray28": smooth(28, 28)["Gray"], "ycbcr64": smooth(64, 64)["YCbCr420"]}
	for _, s := range []struct {
		name string
		spec Spec
	}{{"fashion", FashionMNIST()}, {"cifar", CIFAR10()}} {
		p, err := New(s.spec)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, p.Len())
		for _, name := range []string{"gray28", "ycbcr64"} {
			img := frames[name]
			b.Run(name+"/"+s.name, func(b *testing.B) {
				for b.Loop() {
					p.Process(dst, img)
				}
			})
		}
	}
}

package source

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/preprocess"
)

// testImage returns a w x h picture that compresses like a camera frame: smooth ramps, a disc
// and mild noise, different for each seed.
func testImage(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy, r := w/3+int(seed%7)*w/20, h/2, h/4
	for y := range h {
		for x := range w {
			n := rng.IntN(17) - 8
			v := [3]int{255*x/w + n, 255*y/h + n, 128 + n}
			if (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r {
				v = [3]int{230 + n, 60 + n, 40 + n}
			}
			for c := range 3 {
				img.Pix[y*img.Stride+4*x+c] = uint8(min(255, max(0, v[c])))
			}
			img.Pix[y*img.Stride+4*x+3] = 255
		}
	}
	return img
}

// encodeJPEG returns img as a JPEG (4:2:0, as Go's encoder writes).
func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// encodePNG returns img as a PNG.
func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeFiles writes name -> contents into a new temporary folder and returns it.
func writeFiles(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// goImageTestdata returns the path of a file of Go's own image test data, skipping the test
// when the Go installation has none.
func goImageTestdata(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(runtime.GOROOT(), "src", "image", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("Go's image test data is not installed: %v", err)
	}
	return p
}

// readFile returns the contents of path.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tensor returns the preprocessed tensor of img for spec.
func tensor(t testing.TB, spec preprocess.Spec, img image.Image) []float32 {
	t.Helper()
	p, err := preprocess.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, p.Len())
	if err := p.Process(out, img); err != nil {
		t.Fatal(err)
	}
	return out
}

// maxDiff returns the largest absolute difference between a and b, which have equal lengths.
func maxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		m = max(m, d, -d)
	}
	return m
}

// next calls src.Next with a background context and fails the test on an error.
func next(t testing.TB, src device.Source, f *device.Frame) {
	t.Helper()
	if err := src.Next(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

// rgbaAt returns the 8-bit non-premultiplied colour of img at x, y.
func rgbaAt(img image.Image, x, y int) color.NRGBA {
	return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
}

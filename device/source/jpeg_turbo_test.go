//go:build turbojpeg && cgo

package source

import (
	"fmt"
	"image"
	"testing"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/preprocess"
)

// planeDiff returns the largest difference between two images' samples of the same type.
func planeDiff(a, b image.Image) (int, error) {
	diff := func(x, y []byte, stride, stride2, w, h int) int {
		m := 0
		for r := range h {
			for c := range w {
				m = max(m, abs(int(x[r*stride+c])-int(y[r*stride2+c])))
			}
		}
		return m
	}
	switch x := a.(type) {
	case *image.YCbCr:
		y, ok := b.(*image.YCbCr)
		if !ok || x.SubsampleRatio != y.SubsampleRatio {
			return 0, fmt.Errorf("%T %v vs %T", a, x.SubsampleRatio, b)
		}
		w, h := x.Rect.Dx(), x.Rect.Dy()
		cw := y.COffset(w-1, 0) + 1                             // chroma samples per row
		ch := (y.COffset(0, h-1)-y.COffset(0, 0))/y.CStride + 1 // chroma rows
		m := diff(x.Y, y.Y, x.YStride, y.YStride, w, h)
		m = max(m, diff(x.Cb, y.Cb, x.CStride, y.CStride, cw, ch))
		return max(m, diff(x.Cr, y.Cr, x.CStride, y.CStride, cw, ch)), nil
	case *image.Gray:
		y, ok := b.(*image.Gray)
		if !ok {
			return 0, fmt.Errorf("%T vs %T", a, b)
		}
		return diff(x.Pix, y.Pix, x.Stride, y.Stride, x.Rect.Dx(), x.Rect.Dy()), nil
	}
	return 0, nil
}

// TestTurboMatchesStd decodes Go's JPEG test images with both decoders: the same image types,
// samples within a few levels (the two IDCTs round differently), tensors close.
func TestTurboMatchesStd(t *testing.T) {
	for _, name := range []string{
		"video-001.q50.444.jpeg", "video-001.q50.422.jpeg", "video-001.q50.420.jpeg",
		"video-001.q50.440.jpeg", "video-001.q50.411.jpeg", "video-001.q50.410.jpeg",
		"video-001.q50.420.progressive.jpeg", "video-001.jpeg", "video-001.restart2.jpeg",
		"video-005.gray.jpeg", "video-001.cmyk.jpeg", "video-001.rgb.jpeg",
	} {
		t.Run(name, func(t *testing.T) {
			data := readFile(t, goImageTestdata(t, "testdata/"+name))
			std, _ := newFrameDecoder(JPEGStd)
			turbo, err := newFrameDecoder(JPEGTurbo)
			if err != nil {
				t.Fatal(err)
			}
			defer turbo.close()
			a, _, err := std.decode(data)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := turbo.decode(data)
			if err != nil {
				t.Fatal(err)
			}
			d, err := planeDiff(a, b)
			if err != nil {
				t.Fatal(err)
			}
			td := maxDiff(tensor(t, preprocess.CIFAR10(), a), tensor(t, preprocess.CIFAR10(), b))
			t.Logf("%T: samples differ by at most %d levels; CIFAR-10 tensor by %.4f", b, d, td)
			if d > 4 {
				t.Errorf("samples differ by %d levels", d)
			}
		})
	}
}

func TestTurboErrorsAndReuse(t *testing.T) {
	jpg := encodeJPEG(t, testImage(64, 48, 1), 85)
	d, err := newFrameDecoder(JPEGTurbo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if _, _, err := d.decode(jpg[:len(jpg)*2/3]); err == nil {
		t.Error("truncated JPEG decoded")
	}
	a, _, err := d.decode(jpg)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := d.decode(jpg)
	if a != b {
		t.Error("the decoder did not reuse its image")
	}
}

func TestTurboAllocs(t *testing.T) {
	dir, _ := folderOf(t, 3, 640, 480)
	s := openFolder(t, dir, FolderOptions{Loop: true, CacheBytes: -1, JPEGDecoder: JPEGTurbo})
	var f device.Frame
	for range 3 {
		next(t, s, &f)
	}
	n := testing.AllocsPerRun(30, func() { next(t, s, &f) })
	t.Logf("jpeg turbojpeg: %v allocations per frame", n)
	if n != 0 {
		t.Errorf("%v allocations per frame, want 0", n)
	}
}

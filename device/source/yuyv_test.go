package source

import (
	"bytes"
	"image"
	"strings"
	"testing"
)

func TestConvertYUYVFullRange(t *testing.T) {
	// 4x2 pixels: per row two pairs Y0 Cb Y1 Cr.
	src := []byte{
		10, 100, 20, 200, 30, 110, 40, 210,
		50, 120, 60, 220, 70, 130, 80, 230,
	}
	img, err := ConvertYUYV(nil, src, YUYVFormat{Width: 4, Height: 2, FullRange: true})
	if err != nil {
		t.Fatal(err)
	}
	want := &image.YCbCr{
		Y:  []byte{10, 20, 30, 40, 50, 60, 70, 80},
		Cb: []byte{100, 110, 120, 130},
		Cr: []byte{200, 210, 220, 230},
	}
	if img.SubsampleRatio != image.YCbCrSubsampleRatio422 || img.Rect != image.Rect(0, 0, 4, 2) {
		t.Fatalf("got %v %v, want 4:2:2 4x2", img.SubsampleRatio, img.Rect)
	}
	if !bytes.Equal(img.Y, want.Y) || !bytes.Equal(img.Cb, want.Cb) || !bytes.Equal(img.Cr, want.Cr) {
		t.Errorf("planes Y %v Cb %v Cr %v, want %v %v %v", img.Y, img.Cb, img.Cr, want.Y, want.Cb, want.Cr)
	}
}

// TestConvertYUYVStudioRange checks the stretch from studio to full range on hand-computed
// values, and the colours those give.
func TestConvertYUYVStudioRange(t *testing.T) {
	// Y: 16 -> 0, 235 -> 255, 126 -> 110*255/219 = 128.08 -> 128.
	// C: 16 -> 0, 240 -> 255, 128 -> 128, 184 -> 56*255/224+128 = 191.75 -> 192.
	src := []byte{16, 128, 235, 128, 126, 16, 126, 240, 0, 184, 255, 72}
	img, err := ConvertYUYV(nil, src, YUYVFormat{Width: 6, Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 255, 128, 128, 0, 255}; !bytes.Equal(img.Y, want) {
		t.Errorf("Y = %v, want %v", img.Y, want)
	}
	// 72 -> -56*255/224+128 = 64.25 -> 64.
	if wantCb, wantCr := []byte{128, 0, 192}, []byte{128, 255, 64}; !bytes.Equal(img.Cb, wantCb) || !bytes.Equal(img.Cr, wantCr) {
		t.Errorf("Cb %v Cr %v, want %v %v", img.Cb, img.Cr, wantCb, wantCr)
	}
	for _, tc := range []struct {
		x       int
		r, g, b int
	}{
		{0, 0, 0, 0},       // studio black
		{1, 255, 255, 255}, // studio white
		// Y 128, Cb 0, Cr 255: R = 128 + 1.402*127 = 306 -> 255;
		// G = 128 + 0.344136*128 - 0.714136*127 = 128 + 44.05 - 90.70 = 81.35; B = 128 - 1.772*128 < 0 -> 0.
		{2, 255, 81, 0},
	} {
		c := rgbaAt(img, tc.x, 0)
		if d := max(abs(int(c.R)-tc.r), abs(int(c.G)-tc.g), abs(int(c.B)-tc.b)); d > 1 {
			t.Errorf("pixel %d = %v, want about (%d, %d, %d)", tc.x, c, tc.r, tc.g, tc.b)
		}
	}
}

func abs(v int) int { return max(v, -v) }

func TestConvertYUYVStrideAndOddWidth(t *testing.T) {
	// 3x2, stride 10: each row is two pairs (8 bytes; the last pair's second Y is outside the
	// frame) and 2 bytes of padding.
	src := []byte{
		1, 101, 2, 201, 3, 103, 99, 203, 0xee, 0xee,
		4, 104, 5, 204, 6, 106, 99, 206, 0xee, 0xee,
	}
	img, err := ConvertYUYV(nil, src, YUYVFormat{Width: 3, Height: 2, Stride: 10, FullRange: true})
	if err != nil {
		t.Fatal(err)
	}
	var y, cb, cr []byte
	for row := range 2 {
		y = append(y, img.Y[row*img.YStride:row*img.YStride+3]...)
		cb = append(cb, img.Cb[row*img.CStride:row*img.CStride+2]...)
		cr = append(cr, img.Cr[row*img.CStride:row*img.CStride+2]...)
	}
	if !bytes.Equal(y, []byte{1, 2, 3, 4, 5, 6}) || !bytes.Equal(cb, []byte{101, 103, 104, 106}) || !bytes.Equal(cr, []byte{201, 203, 204, 206}) {
		t.Errorf("Y %v Cb %v Cr %v", y, cb, cr)
	}
	// The last row needs no padding.
	if _, err := ConvertYUYV(nil, src[:18], YUYVFormat{Width: 3, Height: 2, Stride: 10}); err != nil {
		t.Errorf("frame without padding after its last row: %v", err)
	}
}

func TestConvertYUYVErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		f    YUYVFormat
		want string
	}{
		{"short", 640*480*2 - 1, YUYVFormat{Width: 640, Height: 480}, "short"},
		{"empty", 0, YUYVFormat{Width: 2, Height: 1}, "short"},
		{"zero width", 10, YUYVFormat{Width: 0, Height: 1}, "out of range"},
		{"negative height", 10, YUYVFormat{Width: 2, Height: -1}, "out of range"},
		{"huge", 10, YUYVFormat{Width: 1 << 20, Height: 1 << 20}, "out of range"},
		{"stride too small", 100, YUYVFormat{Width: 4, Height: 2, Stride: 6}, "stride"},
		{"stride overflow", 100, YUYVFormat{Width: 2, Height: 1 << 24, Stride: 1 << 40}, "short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConvertYUYV(nil, make([]byte, tc.n), tc.f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConvertYUYVReuses(t *testing.T) {
	f := YUYVFormat{Width: 640, Height: 480}
	src := bytes.Repeat([]byte{16, 128, 235, 128}, 640*480/2)
	dst, err := ConvertYUYV(nil, src, f)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ConvertYUYV(dst, src, f)
	if again != dst {
		t.Error("a matching dst was not reused")
	}
	if n := testing.AllocsPerRun(20, func() { dst, _ = ConvertYUYV(dst, src, f) }); n != 0 {
		t.Errorf("%v allocations per frame, want 0", n)
	}
	other, _ := ConvertYUYV(dst, src[:320*240*2], YUYVFormat{Width: 320, Height: 240})
	if other == dst || other.Rect.Dx() != 320 {
		t.Error("a dst of another size was reused")
	}
}

// FuzzConvertYUYV checks that no size, stride or buffer length makes ConvertYUYV panic, and
// that what it returns has the size asked for.
func FuzzConvertYUYV(f *testing.F) {
	f.Add(make([]byte, 16), 4, 2, 0, false)
	f.Add(make([]byte, 20), 3, 2, 10, true)
	f.Add(make([]byte, 7), 3, 1, 0, false)
	f.Add([]byte{}, 1, 1, 1, false)
	f.Add(make([]byte, 64), -3, 7, -1, true)
	var dst *image.YCbCr
	f.Fuzz(func(t *testing.T, src []byte, w, h, stride int, full bool) {
		img, err := ConvertYUYV(dst, src, YUYVFormat{Width: w, Height: h, Stride: stride, FullRange: full})
		if err != nil {
			return
		}
		if img.Rect != image.Rect(0, 0, w, h) {
			t.Fatalf("got %v for %dx%d", img.Rect, w, h)
		}
		dst = img
	})
}

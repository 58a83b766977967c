package source

import (
	"fmt"
	"image"
	"math"
)

// YUYVFormat describes packed YUYV 4:2:2 frames (V4L2_PIX_FMT_YUYV, what most USB cameras send
// uncompressed): each pair of pixels is the four bytes Y0 Cb Y1 Cr.
type YUYVFormat struct {
	Width, Height int
	Stride        int  // bytes per row (V4L2's bytesperline); 0: the packed row, 4 bytes per pixel pair
	FullRange     bool // samples use 0..255; false: studio range (Y 16..235, Cb and Cr 16..240), stretched to 0..255
}

// rowBytes returns the bytes of one packed row: whole pixel pairs.
func (f YUYVFormat) rowBytes() int { return 4 * ((f.Width + 1) / 2) }

// fits reports whether n bytes hold a frame: Height-1 strides and a last, unpadded row. It
// divides rather than multiplies, so that no size overflows.
func (f YUYVFormat) fits(n int) bool {
	return n >= f.rowBytes() && (f.Height == 1 || f.Stride <= (n-f.rowBytes())/(f.Height-1))
}

func (f YUYVFormat) withDefaults() YUYVFormat {
	if f.Stride == 0 {
		f.Stride = f.rowBytes()
	}
	return f
}

// Range tables. V4L2 means studio range for YUYV unless the driver says otherwise, while
// image.YCbCr (and device/preprocess) use the full range of JPEG (JFIF), so studio samples are
// stretched: Y' = (Y-16)·255/219 and C' = (C-128)·255/224 + 128, rounded half to even (which
// keeps the chroma ends symmetric: 16 → 0, 240 → 255), clamped.
var (
	fullTable    [256]uint8 // identity
	studioLuma   [256]uint8
	studioChroma [256]uint8
)

func init() {
	clamp := func(v float64) uint8 { return uint8(math.Min(255, math.Max(0, math.RoundToEven(v)))) }
	for i := range 256 {
		fullTable[i] = uint8(i)
		studioLuma[i] = clamp(float64(i-16) * 255 / 219)
		studioChroma[i] = clamp(float64(i-128)*255/224 + 128)
	}
}

// ConvertYUYV converts one YUYV frame into a 4:2:2 *image.YCbCr. It reuses dst when dst has
// the frame's size and 4:2:2 subsampling (pass the previous result; nil the first time), and
// then makes no allocation; otherwise it allocates a new image. A frame shorter than f needs,
// or a format out of range, is an error: it never panics. Bytes after the frame are ignored.
func ConvertYUYV(dst *image.YCbCr, src []byte, f YUYVFormat) (*image.YCbCr, error) {
	f = f.withDefaults()
	if f.Width < 1 || f.Height < 1 || int64(f.Width)*int64(f.Height) > MaxFramePixels {
		return dst, fmt.Errorf("YUYV: size %dx%d out of range", f.Width, f.Height)
	}
	if f.Stride < f.rowBytes() {
		return dst, fmt.Errorf("YUYV: stride %d is less than the %d bytes of a %d-pixel row", f.Stride, f.rowBytes(), f.Width)
	}
	if !f.fits(len(src)) {
		return dst, fmt.Errorf("YUYV: frame of %d bytes is short: %dx%d needs %d rows of %d bytes (the last may be %d)",
			len(src), f.Width, f.Height, f.Height, f.Stride, f.rowBytes())
	}
	r := image.Rect(0, 0, f.Width, f.Height)
	if dst == nil || dst.Rect != r || dst.SubsampleRatio != image.YCbCrSubsampleRatio422 ||
		dst.YStride < f.Width || dst.CStride < (f.Width+1)/2 ||
		len(dst.Y) < dst.YStride*f.Height || len(dst.Cb) < dst.CStride*f.Height || len(dst.Cr) < dst.CStride*f.Height {
		dst = image.NewYCbCr(r, image.YCbCrSubsampleRatio422)
	}
	ty, tc := &studioLuma, &studioChroma
	if f.FullRange {
		ty, tc = &fullTable, &fullTable
	}
	pairs, odd := f.Width/2, f.Width%2 == 1
	for y := range f.Height {
		row := src[y*f.Stride : y*f.Stride+f.rowBytes()]
		yo := dst.Y[y*dst.YStride : y*dst.YStride+f.Width]
		co := y * dst.CStride
		cb := dst.Cb[co : co+(f.Width+1)/2]
		cr := dst.Cr[co : co+(f.Width+1)/2]
		for p := range pairs {
			q := row[4*p : 4*p+4 : 4*p+4]
			yo[2*p], yo[2*p+1] = ty[q[0]], ty[q[2]]
			cb[p], cr[p] = tc[q[1]], tc[q[3]]
		}
		if odd { // the last pair's second pixel is outside the frame
			q := row[4*pairs : 4*pairs+4 : 4*pairs+4]
			yo[2*pairs] = ty[q[0]]
			cb[pairs], cr[pairs] = tc[q[1]], tc[q[3]]
		}
	}
	return dst, nil
}

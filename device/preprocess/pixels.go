package preprocess

import (
	"fmt"
	"image"
	"image/color"
)

// checkPixels reports an image of a directly read type whose pixel slices do not cover its
// bounds (which the image package's own At would index out of range on): a hand-made image with
// short slices, or a YCbCr image with negative coordinates, for which image.NewYCbCr can size
// the chroma planes smaller than COffset reads. The offsets grow with x and y, so the corners
// bound them.
func checkPixels(img image.Image, b image.Rectangle) error {
	last := b.Max.Sub(image.Pt(1, 1))
	in := func(lo, hi, n int) bool { return lo >= 0 && hi < n }
	ok := true
	switch m := img.(type) {
	case *image.Gray:
		ok = in(m.PixOffset(b.Min.X, b.Min.Y), m.PixOffset(last.X, last.Y), len(m.Pix))
	case *image.RGBA:
		ok = in(m.PixOffset(b.Min.X, b.Min.Y), m.PixOffset(last.X, last.Y)+3, len(m.Pix))
	case *image.NRGBA:
		ok = in(m.PixOffset(b.Min.X, b.Min.Y), m.PixOffset(last.X, last.Y)+3, len(m.Pix))
	case *image.YCbCr:
		lo, hi := m.COffset(b.Min.X, b.Min.Y), m.COffset(last.X, last.Y)
		ok = in(m.YOffset(b.Min.X, b.Min.Y), m.YOffset(last.X, last.Y), len(m.Y)) &&
			in(lo, hi, len(m.Cb)) && in(lo, hi, len(m.Cr))
	case Planar:
		r, g, bl, stride := m.Planes()
		n := (b.Dy()-1)*stride + b.Dx() // the planes start at the top-left pixel
		ok = stride >= b.Dx() && len(r) >= n && len(g) >= n && len(bl) >= n
	}
	if !ok {
		return fmt.Errorf("preprocess: %T with bounds %v: its pixel data does not cover its bounds", img, b)
	}
	return nil
}

// Planar is an opaque RGB image stored as three 8-bit planes, as dataset.PlanarRGB (CIFAR-10
// records) is: Planes returns the red, green and blue planes, each starting at the image's
// top-left pixel, and their row length. Such images are read from their planes directly.
type Planar interface {
	image.Image
	Planes() (r, g, b []uint8, stride int)
}

// gather converts the pixels (x0+xs[i], y) of img, xs relative to the left edge x0, into
// 8-bit values with c channels (1 or 3), packed into dst (len(xs)*c bytes). For an
// *image.YCbCr, cxs holds chromaCols of xs. See
// Preprocessor for the colour rules. The four common image types are read directly;
// others go through At, which allocates.
func gather(dst []uint8, img image.Image, y, x0 int, xs, cxs []int, c int) {
	switch m := img.(type) {
	case *image.Gray:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride+x0-m.Rect.Min.X:]
		if c == 1 {
			for i, x := range xs {
				dst[i] = row[x]
			}
			return
		}
		for i, x := range xs {
			v := row[x]
			dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
		}
	case *image.RGBA:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride+4*(x0-m.Rect.Min.X):]
		for i, x := range xs {
			px := row[4*x : 4*x+4 : 4*x+4]
			r, g, b := unpremultiply(px[0], px[1], px[2], px[3])
			put(dst, i, c, r, g, b)
		}
	case *image.NRGBA:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride+4*(x0-m.Rect.Min.X):]
		for i, x := range xs {
			px := row[4*x : 4*x+3 : 4*x+3]
			put(dst, i, c, px[0], px[1], px[2])
		}
	case *image.YCbCr:
		gatherYCbCr(dst, m, y, x0, xs, cxs, c)
	case Planar:
		r, g, b, stride := m.Planes()
		o := img.Bounds().Min
		off := (y-o.Y)*stride + x0 - o.X
		r, g, b = r[off:], g[off:], b[off:]
		for i, x := range xs {
			put(dst, i, c, r[x], g[x], b[x])
		}
	default:
		for i, x := range xs {
			n := color.NRGBAModel.Convert(img.At(x0+x, y)).(color.NRGBA)
			put(dst, i, c, n.R, n.G, n.B)
		}
	}
}

// put stores pixel i as RGB (c == 3) or as its luma (c == 1).
func put(dst []uint8, i, c int, r, g, b uint8) {
	if c == 1 {
		dst[i] = luma(r, g, b)
		return
	}
	dst[3*i], dst[3*i+1], dst[3*i+2] = r, g, b
}

// luma returns the ITU-R BT.601 luma 0.299R + 0.587G + 0.114B rounded to 8 bits, with
// Pillow's fixed-point weights (they sum to 65536, so gray stays gray).
func luma(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 1<<15) >> 16)
}

// unpremultiply returns the non-premultiplied colour of a premultiplied RGBA pixel,
// exactly as color.NRGBAModel computes it.
func unpremultiply(r, g, b, a uint8) (uint8, uint8, uint8) {
	switch a {
	case 0xff:
		return r, g, b
	case 0:
		return 0, 0, 0
	}
	a16 := uint32(a) * 0x101
	f := func(v uint8) uint8 { return uint8((uint32(v) * 0x101 * 0xffff / a16) >> 8) }
	return f(r), f(g), f(b)
}

// gatherYCbCr is gather for *image.YCbCr, with cxs[i] the offset of pixel x0+xs[i]'s chroma
// sample within its chroma row (see chromaCols).
func gatherYCbCr(dst []uint8, m *image.YCbCr, y, x0 int, xs, cxs []int, c int) {
	yRow := m.Y[(y-m.Rect.Min.Y)*m.YStride+x0-m.Rect.Min.X:]
	cRow := m.COffset(m.Rect.Min.X, y) // the row part of COffset (its column part is 0 at Min.X)
	cb, cr := m.Cb[cRow:], m.Cr[cRow:]
	cxs = cxs[:len(xs)]
	if c == 1 {
		dst = dst[:len(xs)]
		for i, x := range xs {
			ci := cxs[i]
			dst[i] = tableLuma(ycbcrIndices(yRow[x], cb[ci], cr[ci]))
		}
		return
	}
	dst = dst[:3*len(xs)]
	for i, x := range xs {
		ci := cxs[i]
		ir, ig, ib := ycbcrIndices(yRow[x], cb[ci], cr[ci])
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0], d[1], d[2] = clamp8[ir], clamp8[ig], clamp8[ib]
	}
}

// chromaCols fills cxs[i] with the column part of m.COffset(x0+xs[i], y), the same for every
// row: COffset is the sum of a row part and a column part, and the row part is 0 at Rect.Min.Y.
func chromaCols(cxs []int, m *image.YCbCr, x0 int, xs []int) {
	for i, x := range xs {
		cxs[i] = m.COffset(x0+x, m.Rect.Min.Y)
	}
}

// ycbcrIndices returns the red, green and blue of color.YCbCrToRGB (JFIF full-range BT.601, its
// fixed-point arithmetic) before clamping, offset by 256 into the tables below: the unclamped
// values lie in -227..481, so the biased sums are positive and shift as unsigned, and the mask
// to the tables' size lets the compiler drop bounds checks. clamp8 then gives exactly
// color.YCbCrToRGB's values, and the luma tables luma's of them (TestYCbCrTables, all inputs).
func ycbcrIndices(y, cb, cr uint8) (ir, ig, ib uint32) {
	const bias = 256 << 16
	yy := int32(y)*0x10101 + bias
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	ir = uint32(yy+91881*cr1) >> 16 & 1023
	ig = uint32(yy-22554*cb1-46802*cr1) >> 16 & 1023
	ib = uint32(yy+116130*cb1) >> 16 & 1023
	return ir, ig, ib
}

// clamp8[v+256] is v clamped to 0..255; lumaR, lumaG and lumaB hold the same times luma's
// fixed-point weights.
var clamp8, lumaR, lumaG, lumaB = func() (c [1024]uint8, r, g, b [1024]uint32) {
	for i := range c {
		c[i] = uint8(min(max(i-256, 0), 255))
		r[i], g[i], b[i] = 19595*uint32(c[i]), 38470*uint32(c[i]), 7471*uint32(c[i])
	}
	return c, r, g, b
}()

// tableLuma is luma of the clamped colour at table indices ir, ig, ib (see ycbcrIndices).
func tableLuma(ir, ig, ib uint32) uint8 {
	return uint8((lumaR[ir] + lumaG[ig] + lumaB[ib] + 1<<15) >> 16)
}

// clampF holds clamp8's values as float32, for interpolating without a conversion.
var clampF = func() (f [1024]float32) {
	for i, v := range clamp8 {
		f[i] = float32(v)
	}
	return f
}()

package source

import (
	"image"
	"image/color"
)

// normalizer turns decoded images into the types that device/preprocess reads without
// allocating (*image.Gray, *image.RGBA, *image.NRGBA, *image.YCbCr), in buffers it reuses.
// Those four pass through untouched. The converted pixels are those preprocess would read
// through At, so the tensors do not change.
type normalizer struct {
	nrgba *image.NRGBA
	gray  *image.Gray
}

func (n *normalizer) normalize(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.Gray, *image.RGBA, *image.NRGBA, *image.YCbCr:
		return img
	case *image.Gray16: // 16-bit gray PNG: the high byte, as color.NRGBAModel gives
		dst := n.grayFor(m.Rect)
		for y := 0; y < m.Rect.Dy(); y++ {
			src, out := m.Pix[y*m.Stride:], dst.Pix[y*dst.Stride:]
			for x := range m.Rect.Dx() {
				out[x] = src[2*x]
			}
		}
		return dst
	case *image.Paletted: // palette PNG: one conversion per palette entry
		var pal [256]color.NRGBA // entries past the palette stay black, as Go's PNG decoder makes them
		for i, c := range m.Palette {
			if i < len(pal) && c != nil {
				pal[i] = toNRGBA(c)
			}
		}
		dst := n.nrgbaFor(m.Rect)
		for y := 0; y < m.Rect.Dy(); y++ {
			src, out := m.Pix[y*m.Stride:], dst.Pix[y*dst.Stride:]
			for x := range m.Rect.Dx() {
				c := pal[src[x]]
				out[4*x], out[4*x+1], out[4*x+2], out[4*x+3] = c.R, c.G, c.B, c.A
			}
		}
		return dst
	default: // 16-bit colour PNG, CMYK JPEG: rare, through At, which allocates
		b := m.Bounds()
		dst := n.nrgbaFor(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				dst.SetNRGBA(x, y, color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA))
			}
		}
		return dst
	}
}

func (n *normalizer) nrgbaFor(r image.Rectangle) *image.NRGBA {
	if n.nrgba == nil || n.nrgba.Rect != r {
		n.nrgba = image.NewNRGBA(r)
	}
	return n.nrgba
}

func (n *normalizer) grayFor(r image.Rectangle) *image.Gray {
	if n.gray == nil || n.gray.Rect != r {
		n.gray = image.NewGray(r)
	}
	return n.gray
}

// toNRGBA is color.NRGBAModel.Convert without the interface allocation.
func toNRGBA(c color.Color) color.NRGBA {
	if n, ok := c.(color.NRGBA); ok {
		return n
	}
	r, g, b, a := c.RGBA()
	switch a {
	case 0xffff:
		return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
	case 0:
		return color.NRGBA{}
	}
	r, g, b = r*0xffff/a, g*0xffff/a, b*0xffff/a
	return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

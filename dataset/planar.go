package dataset

import (
	"image"
	"image/color"
)

// PlanarRGB is an opaque colour image stored as three 8-bit planes, red, green then blue, of
// Dx*Dy bytes each, rows top to bottom: the layout of a CIFAR-10 record, kept so that
// preprocessing reads the planes as they are (device/preprocess.Planar) instead of through an
// interleaved copy.
type PlanarRGB struct {
	Pix  []uint8
	Rect image.Rectangle
}

// NewPlanarRGB returns a zeroed (black) image of the given bounds.
func NewPlanarRGB(r image.Rectangle) *PlanarRGB {
	return &PlanarRGB{Pix: make([]uint8, 3*r.Dx()*r.Dy()), Rect: r}
}

// ColorModel returns color.RGBAModel.
func (p *PlanarRGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds returns the image's rectangle.
func (p *PlanarRGB) Bounds() image.Rectangle { return p.Rect }

// At returns the colour at (x, y), opaque, or transparent black outside the bounds.
func (p *PlanarRGB) At(x, y int) color.Color {
	if !(image.Point{x, y}.In(p.Rect)) {
		return color.RGBA{}
	}
	r, g, b, stride := p.Planes()
	i := (y-p.Rect.Min.Y)*stride + x - p.Rect.Min.X
	return color.RGBA{r[i], g[i], b[i], 0xff}
}

// Planes returns the red, green and blue planes and their row length. A plane that Pix is too
// short to hold comes back short (or empty), for the caller to refuse.
func (p *PlanarRGB) Planes() (r, g, b []uint8, stride int) {
	n := p.Rect.Dx() * p.Rect.Dy()
	plane := func(i int) []uint8 {
		lo, hi := min(i*n, len(p.Pix)), min((i+1)*n, len(p.Pix))
		return p.Pix[lo:hi:hi]
	}
	return plane(0), plane(1), plane(2), p.Rect.Dx()
}

package preprocess

import (
	"errors"
	"fmt"
	"image"
	"slices"
)

// Preprocessor turns images into model input tensors as a Spec says:
//
//  1. Colour: every pixel becomes 8-bit RGB or gray. Gray sources feeding a 3-channel
//     model are replicated into R, G and B. Colour sources feeding a 1-channel model are
//     reduced to ITU-R BT.601 luma, Y = 0.299R + 0.587G + 0.114B, rounded to the nearest
//     8-bit value with the fixed-point weights 19595, 38470, 7471 (/65536) exactly as
//     Pillow's convert("L") does. (Go's color.GrayModel uses the same weights on 16-bit
//     values and may differ by one level.) Alpha is dropped: the non-premultiplied colour
//     is used, as Pillow's convert("RGB") does.
//  2. Size: a frame of another size is resampled bilinearly (pixel centres at +0.5,
//     edges clamped, no antialiasing) either stretched to the input size
//     (ResizeStretch) or, with ResizeCenterCrop, scaled so that its shorter side fits
//     and cropped to the centre. Interpolated values are not rounded back to 8 bits.
//  3. Values: each channel value v in 0..255 becomes (v/255 - mean[c]) / std[c].
//
// The result is written to a float32 slice in CHW order (the NCHW tensor of one image).
// Images whose size already matches take a path without resampling, through per-channel
// lookup tables; it gives bit-identical results to the resampling path at that size.
// *image.Gray, *image.RGBA, *image.NRGBA, *image.YCbCr and Planar images are read directly, any
// other type through its At method, which allocates; both give bit-identical results too.
//
// A Preprocessor owns scratch buffers and makes no allocation per call for the four image
// types above. It is not safe for concurrent use: give each goroutine its own.
type Preprocessor struct {
	spec    Spec
	c, h, w int
	crop    bool

	lut         [3][256]float32 // normalised value of each 8-bit level, per channel
	scale, bias [3]float64      // normalised = v*scale + bias, v in 0..255

	identXs []int     // 0..w-1: the columns of a frame that needs no resampling
	xs      []int     // 2 per output column: the left and right source columns
	wx      []float32 // per output column: the weight of the right source column
	cxs     []int     // chroma columns of the pixels gathered from an *image.YCbCr (chromaCols)
	row0    []uint8   // one gathered source row: 2 pixels per output column, or the input row
	hrow0   []float32 // an upper source row interpolated to the output width, per channel
	hrow1   []float32 // the same for the lower row
}

// New returns a Preprocessor for a valid spec (see Spec.Validate).
func New(s Spec) (*Preprocessor, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.Mean, s.Std = slices.Clone(s.Mean), slices.Clone(s.Std)
	if s.Layout == "" {
		s.Layout = LayoutNCHW
	}
	if s.Resize == "" {
		s.Resize = ResizeStretch
	}
	p := &Preprocessor{spec: s, c: s.Channels, h: s.Height, w: s.Width, crop: s.Resize == ResizeCenterCrop}
	for c := range p.c {
		std := float64(s.Std[c])
		p.scale[c] = 1 / (255 * std)
		p.bias[c] = -float64(s.Mean[c]) / std
		for v := range 256 {
			p.lut[c][v] = normalize(float32(v), p.scale[c], p.bias[c])
		}
	}
	p.identXs = make([]int, p.w)
	for x := range p.identXs {
		p.identXs[x] = x
	}
	p.xs = make([]int, 2*p.w)
	p.wx = make([]float32, p.w)
	p.cxs = make([]int, 2*p.w)
	p.row0 = make([]uint8, 2*p.w*p.c)
	p.hrow0 = make([]float32, p.w*p.c)
	p.hrow1 = make([]float32, p.w*p.c)
	return p, nil
}

// normalize maps a channel value v in 0..255 to v*scale + bias. The explicit conversions
// keep the compiler from fusing the multiply and add, so that the lookup tables (built
// with this function) and the resampling path agree to the bit.
func normalize(v float32, scale, bias float64) float32 {
	return float32(float64(float64(v)*scale) + bias)
}

// Spec returns the spec, with its defaults filled in. Its slices must not be modified.
func (p *Preprocessor) Spec() Spec { return p.spec }

// Len returns the number of values Process writes: channels * height * width.
func (p *Preprocessor) Len() int { return p.c * p.h * p.w }

// Process writes the input tensor of img to dst, which must hold exactly Len values.
func (p *Preprocessor) Process(dst []float32, img image.Image) error {
	if len(dst) != p.Len() {
		return fmt.Errorf("preprocess: dst holds %d values, want %d (%dx%dx%d)", len(dst), p.Len(), p.c, p.h, p.w)
	}
	if img == nil {
		return errors.New("preprocess: nil image")
	}
	b := img.Bounds()
	if b.Empty() {
		return fmt.Errorf("preprocess: empty image %v", b)
	}
	if err := checkPixels(img, b); err != nil {
		return err
	}
	if b.Dx() == p.w && b.Dy() == p.h {
		p.copy(dst, img, b)
	} else {
		p.resample(dst, img, b)
	}
	return nil
}

// copy converts an image of the input size: one gathered row at a time, through the
// lookup tables.
func (p *Preprocessor) copy(dst []float32, img image.Image, b image.Rectangle) {
	plane := p.h * p.w
	if g, ok := img.(*image.Gray); ok { // the commonest case of all (IDX data): no gathering
		for y := range p.h {
			src := g.Pix[g.PixOffset(b.Min.X, b.Min.Y+y):][:p.w]
			for ch := range p.c {
				lookup(dst[ch*plane+y*p.w:][:len(src)], src, &p.lut[ch])
			}
		}
		return
	}
	if p.c == 3 && (p.copyRGBA(dst, img, b) || p.copyPlanar(dst, img)) {
		return
	}
	row := p.row0[:p.w*p.c]
	if m, ok := img.(*image.YCbCr); ok {
		chromaCols(p.cxs, m, b.Min.X, p.identXs)
	}
	for y := range p.h {
		gather(row, img, b.Min.Y+y, b.Min.X, p.identXs, p.cxs, p.c)
		off := y * p.w
		if p.c == 1 {
			lookup(dst[off:off+p.w], row, &p.lut[0])
			continue
		}
		r, g, bl := dst[off:off+p.w], dst[plane+off:plane+off+p.w], dst[2*plane+off:2*plane+off+p.w]
		for x := range p.w {
			px := row[3*x : 3*x+3 : 3*x+3]
			r[x], g[x], bl[x] = p.lut[0][px[0]], p.lut[1][px[1]], p.lut[2][px[2]]
		}
	}
}

// copyRGBA is copy for an *image.NRGBA or *image.RGBA feeding a 3-channel input: straight from
// the pixels to the three planes, a translucent RGBA pixel unpremultiplied first. It reports
// false, doing nothing, for other image types.
func (p *Preprocessor) copyRGBA(dst []float32, img image.Image, b image.Rectangle) bool {
	var pix []uint8
	var stride int
	premultiplied := false
	switch m := img.(type) {
	case *image.NRGBA:
		pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
	case *image.RGBA:
		pix, stride, premultiplied = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, true
	default:
		return false
	}
	plane := p.h * p.w
	lr, lg, lb := &p.lut[0], &p.lut[1], &p.lut[2]
	for y := range p.h {
		src := pix[y*stride:][:4*p.w]
		r, g, bl := dst[y*p.w:][:p.w], dst[plane+y*p.w:][:p.w], dst[2*plane+y*p.w:][:p.w]
		for x := range r {
			px := src[4*x : 4*x+4 : 4*x+4]
			cr, cg, cb := px[0], px[1], px[2]
			if premultiplied && px[3] != 0xff {
				cr, cg, cb = unpremultiply(cr, cg, cb, px[3])
			}
			r[x], g[x], bl[x] = lr[cr], lg[cg], lb[cb]
		}
	}
	return true
}

// copyPlanar is copy for a Planar image feeding a 3-channel input: each plane through its
// channel's table. It reports false, doing nothing, for other image types.
func (p *Preprocessor) copyPlanar(dst []float32, img image.Image) bool {
	m, ok := img.(Planar)
	if !ok {
		return false
	}
	r, g, b, stride := m.Planes()
	plane := p.h * p.w
	for ch, pl := range [3][]uint8{r, g, b} {
		for y := range p.h {
			lookup(dst[ch*plane+y*p.w:][:p.w], pl[y*stride:][:p.w], &p.lut[ch])
		}
	}
	return true
}

// lookup sets out[i] = lut[src[i]], eight values per step.
func lookup(out []float32, src []uint8, lut *[256]float32) {
	out = out[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		s, o := src[i:i+8:i+8], out[i:i+8:i+8]
		o[0], o[1], o[2], o[3] = lut[s[0]], lut[s[1]], lut[s[2]], lut[s[3]]
		o[4], o[5], o[6], o[7] = lut[s[4]], lut[s[5]], lut[s[6]], lut[s[7]]
	}
	for ; i < len(src); i++ {
		out[i] = lut[src[i]]
	}
}

package preprocess

import (
	"image"
	"math"
)

// window returns the part of a sw x sh frame that is resampled to the input size, as
// its origin and size in source pixels: the whole frame for ResizeStretch, the centred
// largest region with the input's aspect ratio for ResizeCenterCrop.
func (p *Preprocessor) window(sw, sh int) (x0, y0, ww, wh float64) {
	ww, wh = float64(sw), float64(sh)
	if !p.crop {
		return 0, 0, ww, wh
	}
	// Compare aspect ratios in integers, so that the side that fits is exact.
	if p.w*sh >= p.h*sw { // the frame is relatively taller: keep its full width
		wh = float64(sw) * float64(p.h) / float64(p.w)
	} else { // relatively wider: keep its full height
		ww = float64(sh) * float64(p.w) / float64(p.h)
	}
	return (float64(sw) - ww) / 2, (float64(sh) - wh) / 2, ww, wh
}

// taps returns the two source coordinates, clamped to 0..n-1, and the weight of the
// second one for output coordinate i of out along an axis whose window starts at o and
// spans size source pixels. Pixel centres sit at +0.5 (align_corners=False).
func taps(i, out int, o, size float64, n int) (a, b int, w float32) {
	s := o + (float64(i)+0.5)*size/float64(out) - 0.5
	f := math.Floor(s)
	a, b, w = int(f), int(f)+1, float32(s-f)
	if a < 0 {
		a, w = 0, 0
	}
	if b > n-1 {
		b = n - 1
	}
	if a > n-1 {
		a = n - 1
	}
	return a, b, w
}

// resample converts an image of another size with bilinear interpolation, separably: each
// source row that an output row needs is gathered and interpolated horizontally once (kept
// while the next output row needs it too), then pairs of such rows are blended vertically.
// A gray source feeding a 3-channel input is interpolated once and the value normalised for
// each channel, which gives the same numbers as interpolating its three equal channels.
func (p *Preprocessor) resample(dst []float32, img image.Image, b image.Rectangle) {
	sw, sh := b.Dx(), b.Dy()
	x0, y0, ww, wh := p.window(sw, sh)
	for x := range p.w {
		p.xs[2*x], p.xs[2*x+1], p.wx[x] = taps(x, p.w, x0, ww, sw)
	}
	if m, ok := img.(*image.YCbCr); ok {
		chromaCols(p.cxs, m, b.Min.X, p.xs)
	}
	sc := p.c // channels gathered from the source
	if _, gray := img.(*image.Gray); gray {
		sc = 1
	}
	plane := p.h * p.w
	top, bottom := p.hrow0[:sc*p.w], p.hrow1[:sc*p.w]
	lastA, lastB := -1, -1
	for y := range p.h {
		ya, yb, wy := taps(y, p.h, y0, wh, sh)
		switch {
		case ya == lastA && yb == lastB:
		case ya == lastB: // moving down by one source row: the lower row becomes the upper
			top, bottom = bottom, top
			p.horizontal(bottom, img, b, yb, sc)
		default:
			p.horizontal(top, img, b, ya, sc)
			if yb != ya {
				p.horizontal(bottom, img, b, yb, sc)
			} else {
				copy(bottom, top)
			}
		}
		lastA, lastB = ya, yb
		if sc == 1 && p.c == 3 { // one interpolation, three normalisations
			r, g, bl := dst[y*p.w:][:p.w], dst[plane+y*p.w:][:p.w], dst[2*plane+y*p.w:][:p.w]
			t, bt := top[:len(r)], bottom[:len(r)]
			for x := range r {
				v := t[x] + (bt[x]-t[x])*wy
				r[x], g[x], bl[x] = normalize(v, p.scale[0], p.bias[0]), normalize(v, p.scale[1], p.bias[1]), normalize(v, p.scale[2], p.bias[2])
			}
			continue
		}
		for ch := range p.c {
			out := dst[ch*plane+y*p.w:][:p.w]
			src := ch * p.w
			t, bt := top[src:][:len(out)], bottom[src:][:len(out)]
			scale, bias := p.scale[ch], p.bias[ch]
			for x := range out {
				out[x] = normalize(t[x]+(bt[x]-t[x])*wy, scale, bias)
			}
		}
	}
}

// horizontal gathers source row ya (relative to b) with sc channels and interpolates it to
// the output width: dst holds sc planes of p.w values.
func (p *Preprocessor) horizontal(dst []float32, img image.Image, b image.Rectangle, ya, sc int) {
	wx := p.wx[:p.w]
	if g, ok := img.(*image.Gray); ok { // straight from the pixels, no gathered copy
		src, xs, out := g.Pix[g.PixOffset(b.Min.X, b.Min.Y+ya):], p.xs[:2*len(wx)], dst[:len(wx)]
		for x, w := range wx {
			a0, a1 := float32(src[xs[2*x]]), float32(src[xs[2*x+1]])
			out[x] = a0 + (a1-a0)*w
		}
		return
	}
	if m, ok := img.(*image.YCbCr); ok {
		p.horizontalYCbCr(dst, m, b, ya, sc)
		return
	}
	row := p.row0[:2*p.w*sc]
	gather(row, img, b.Min.Y+ya, b.Min.X, p.xs, p.cxs, sc)
	if sc == 1 {
		out := dst[:len(wx)]
		for x, w := range wx {
			pair := row[2*x : 2*x+2 : 2*x+2]
			a0, a1 := float32(pair[0]), float32(pair[1])
			out[x] = a0 + (a1-a0)*w
		}
		return
	}
	r, g, bl := dst[:len(wx)], dst[p.w:][:len(wx)], dst[2*p.w:][:len(wx)]
	for x, w := range wx {
		px := row[6*x : 6*x+6 : 6*x+6] // two RGB pixels
		r0, g0, b0 := float32(px[0]), float32(px[1]), float32(px[2])
		r[x] = r0 + (float32(px[3])-r0)*w
		g[x] = g0 + (float32(px[4])-g0)*w
		bl[x] = b0 + (float32(px[5])-b0)*w
	}
}

// horizontalYCbCr is horizontal for an *image.YCbCr, converting each source pixel as it
// interpolates (see gatherYCbCr; p.cxs holds the chroma columns of p.xs) rather than through a
// gathered row.
func (p *Preprocessor) horizontalYCbCr(dst []float32, m *image.YCbCr, b image.Rectangle, ya, sc int) {
	y := b.Min.Y + ya
	yRow := m.Y[(y-m.Rect.Min.Y)*m.YStride+b.Min.X-m.Rect.Min.X:]
	cRow := m.COffset(m.Rect.Min.X, y)
	cb, cr := m.Cb[cRow:], m.Cr[cRow:]
	wx := p.wx[:p.w]
	xs, cxs := p.xs[:2*len(wx)], p.cxs[:2*len(wx)]
	if sc == 1 {
		out := dst[:len(wx)]
		for x, w := range wx {
			i, j := xs[2*x], xs[2*x+1]
			ci, cj := cxs[2*x], cxs[2*x+1]
			a0 := float32(tableLuma(ycbcrIndices(yRow[i], cb[ci], cr[ci])))
			a1 := float32(tableLuma(ycbcrIndices(yRow[j], cb[cj], cr[cj])))
			out[x] = a0 + (a1-a0)*w
		}
		return
	}
	r, g, bl := dst[:len(wx)], dst[p.w:][:len(wx)], dst[2*p.w:][:len(wx)]
	for x, w := range wx {
		i, j := xs[2*x], xs[2*x+1]
		ci, cj := cxs[2*x], cxs[2*x+1]
		ir0, ig0, ib0 := ycbcrIndices(yRow[i], cb[ci], cr[ci])
		ir1, ig1, ib1 := ycbcrIndices(yRow[j], cb[cj], cr[cj])
		r0, g0, b0 := clampF[ir0], clampF[ig0], clampF[ib0]
		r[x] = r0 + (clampF[ir1]-r0)*w
		g[x] = g0 + (clampF[ig1]-g0)*w
		bl[x] = b0 + (clampF[ib1]-b0)*w
	}
}

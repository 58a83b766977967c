package source

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"math"
	"time"

	"github.com/oodguard/oodguard/device"
)

// Pattern names what a Synthetic source draws.
type Pattern string

// Patterns.
const (
	PatternGradient Pattern = "gradient" // smooth diagonal ramps that move one step per frame
	PatternNoise    Pattern = "noise"    // uniform noise, a new draw per frame
)

// SyntheticOptions configure a Synthetic source. Zero fields take the defaults: 640x480, RGB,
// PatternGradient, endless, no rate limit.
type SyntheticOptions struct {
	Width   int     `json:"width" yaml:"width"`     // pixels; 0: 640
	Height  int     `json:"height" yaml:"height"`   // pixels; 0: 480
	Gray    bool    `json:"gray" yaml:"gray"`       // *image.Gray frames instead of *image.RGBA
	Pattern Pattern `json:"pattern" yaml:"pattern"` // "": PatternGradient
	Seed    uint64  `json:"seed" yaml:"seed"`       // the noise and the gradient's phase
	Frames  uint64  `json:"frames" yaml:"frames"`   // frames before io.EOF; 0: endless
	FPS     float64 `json:"fps" yaml:"fps"`         // most frames per second; 0: no limit
}

func (o SyntheticOptions) withDefaults() SyntheticOptions {
	if o.Width == 0 {
		o.Width = 640
	}
	if o.Height == 0 {
		o.Height = 480
	}
	if o.Pattern == "" {
		o.Pattern = PatternGradient
	}
	return o
}

// Validate reports whether the options, with their defaults, are usable.
func (o SyntheticOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Width < 1 || o.Height < 1 || int64(o.Width)*int64(o.Height) > MaxFramePixels:
		return fmt.Errorf("synthetic source: size %dx%d out of range (at most %d pixels)", o.Width, o.Height, MaxFramePixels)
	case o.Pattern != PatternGradient && o.Pattern != PatternNoise:
		return fmt.Errorf("synthetic source: unknown pattern %q (want %q or %q)", o.Pattern, PatternGradient, PatternNoise)
	case o.FPS < 0 || math.IsNaN(o.FPS) || math.IsInf(o.FPS, 0):
		return fmt.Errorf("synthetic source: fps must be a finite number >= 0, not %v", o.FPS)
	}
	return nil
}

// Synthetic is a Source of generated frames, for tests, benchmarks and demos without a camera.
// Frame n depends only on the options and n, so two sources with the same options give the
// same frames. Next draws into one image that it reuses and makes no allocation.
type Synthetic struct {
	opts   SyntheticOptions
	name   string
	img    image.Image
	pix    []uint8 // img's pixels
	stride int     // bytes per row
	ramp   []uint8 // 0..255 across the width, for the gradient
	bpp    int     // bytes per pixel: 1 (gray) or 4 (RGBA)
	pace   *pacer
	n      uint64
	closed bool
}

var _ device.Source = (*Synthetic)(nil)

// NewSynthetic returns a synthetic source.
func NewSynthetic(opts SyntheticOptions) (*Synthetic, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s := &Synthetic{opts: opts, pace: newPacer(opts.FPS)}
	s.name = fmt.Sprintf("synthetic:%s:%dx%d", opts.Pattern, opts.Width, opts.Height)
	s.ramp = make([]uint8, opts.Width)
	for x := range s.ramp {
		s.ramp[x] = uint8(255 * x / max(opts.Width-1, 1))
	}
	r := image.Rect(0, 0, opts.Width, opts.Height)
	if opts.Gray {
		g := image.NewGray(r)
		s.img, s.pix, s.stride, s.bpp = g, g.Pix, g.Stride, 1
	} else {
		c := image.NewRGBA(r)
		s.img, s.pix, s.stride, s.bpp = c, c.Pix, c.Stride, 4
	}
	return s, nil
}

// Next draws the next frame into f. See device.Source.
func (s *Synthetic) Next(ctx context.Context, f *device.Frame) error {
	if s.closed {
		return device.ErrClosed
	}
	if s.opts.Frames > 0 && s.n >= s.opts.Frames {
		return io.EOF
	}
	if err := s.pace.wait(ctx); err != nil {
		return err
	}
	if s.opts.Pattern == PatternNoise {
		s.drawNoise(s.n)
	} else {
		s.drawGradient(s.n)
	}
	s.n++
	*f = device.Frame{ID: s.n, Time: time.Now(), Image: s.img, Name: s.name}
	return nil
}

// drawGradient draws frame n: each channel is a ramp along its own direction, shifted by n.
func (s *Synthetic) drawGradient(n uint64) {
	w, h := s.opts.Width, s.opts.Height
	phase := uint8(s.opts.Seed + n)
	for y := range h {
		row := s.pix[y*s.stride : y*s.stride+w*s.bpp]
		gy := uint8(255 * y / max(h-1, 1))
		if s.bpp == 1 {
			for x := range row {
				row[x] = s.ramp[x]/2 + gy/2 + phase
			}
			continue
		}
		for x := range w {
			gx := s.ramp[x]
			p := row[4*x : 4*x+4 : 4*x+4]
			p[0], p[1], p[2], p[3] = gx+phase, gy+2*phase, gx/2+(255-gy)/2+3*phase, 0xff
		}
	}
}

// drawNoise fills frame n with uniform noise: a SplitMix64 stream seeded by the seed and n,
// eight bytes at a time (the pixels of both image types are contiguous). Alpha stays opaque.
func (s *Synthetic) drawNoise(n uint64) {
	state := s.opts.Seed ^ (n+1)*0x9e3779b97f4a7c15
	var word [8]byte
	for i := 0; i < len(s.pix); i += 8 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(word[:], z^z>>31)
		copy(s.pix[i:], word[:])
	}
	if s.bpp == 4 {
		for i := 3; i < len(s.pix); i += 4 {
			s.pix[i] = 0xff
		}
	}
}

// Close ends the source.
func (s *Synthetic) Close() error {
	if !s.closed {
		s.closed = true
		s.pace.stop()
	}
	return nil
}

package preprocess

import (
	"fmt"
	"math"
)

// MaxSide is the largest width or height a Spec may ask for.
const MaxSide = 4096

// LayoutNCHW is the only tensor layout: channels, then rows, then columns (batch first).
const LayoutNCHW = "NCHW"

// Validate checks that s describes a usable input: width and height in 1..MaxSide,
// 1 (gray) or 3 (RGB) channels, one finite mean and one finite, positive std per channel,
// layout "NCHW" and a known resize mode. An empty layout means "NCHW" and an empty resize
// mode means ResizeStretch. Errors name the offending field by its JSON name.
func (s Spec) Validate() error {
	if s.Width < 1 || s.Width > MaxSide {
		return fmt.Errorf("preprocess: width %d is not in 1..%d", s.Width, MaxSide)
	}
	if s.Height < 1 || s.Height > MaxSide {
		return fmt.Errorf("preprocess: height %d is not in 1..%d", s.Height, MaxSide)
	}
	if s.Channels != 1 && s.Channels != 3 {
		return fmt.Errorf("preprocess: channels is %d, want 1 (gray) or 3 (RGB)", s.Channels)
	}
	if len(s.Mean) != s.Channels {
		return fmt.Errorf("preprocess: mean has %d values for %d channels", len(s.Mean), s.Channels)
	}
	if len(s.Std) != s.Channels {
		return fmt.Errorf("preprocess: std has %d values for %d channels", len(s.Std), s.Channels)
	}
	for c := range s.Channels {
		if m := float64(s.Mean[c]); math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("preprocess: mean[%d] is %v, want a finite number", c, m)
		}
		if d := float64(s.Std[c]); !(d > 0) || math.IsInf(d, 0) {
			return fmt.Errorf("preprocess: std[%d] is %v, want a finite number > 0", c, d)
		}
	}
	if s.Layout != "" && s.Layout != LayoutNCHW {
		return fmt.Errorf("preprocess: layout %q is not supported, want %q", s.Layout, LayoutNCHW)
	}
	switch s.Resize {
	case "", ResizeStretch, ResizeCenterCrop:
	default:
		return fmt.Errorf("preprocess: resize %q is not one of %q, %q", s.Resize, ResizeStretch, ResizeCenterCrop)
	}
	return nil
}

// InputShape returns the model input shape without the batch dimension: channels, height,
// width.
func (s Spec) InputShape() [3]int { return [3]int{s.Channels, s.Height, s.Width} }

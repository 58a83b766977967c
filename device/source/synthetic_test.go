package source

import (
	"bytes"
	"context"
	"image"
	"io"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/device"
)

func pixOf(img image.Image) []byte {
	switch m := img.(type) {
	case *image.Gray:
		return m.Pix
	case *image.RGBA:
		return m.Pix
	}
	return nil
}

func TestSyntheticDeterministic(t *testing.T) {
	for _, opts := range []SyntheticOptions{
		{Width: 64, Height: 48, Pattern: PatternNoise, Seed: 7},
		{Width: 64, Height: 48, Pattern: PatternGradient, Gray: true},
		{Width: 1, Height: 1},
	} {
		a, err := NewSynthetic(opts)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewSynthetic(opts)
		var fa, fb device.Frame
		var prev []byte
		for i := range 3 {
			next(t, a, &fa)
			next(t, b, &fb)
			pa := pixOf(fa.Image)
			if !bytes.Equal(pa, pixOf(fb.Image)) {
				t.Errorf("%+v frame %d: two sources differ", opts, i)
			}
			if prev != nil && bytes.Equal(pa, prev) && opts.Width > 1 {
				t.Errorf("%+v frame %d: same as the previous frame", opts, i)
			}
			prev = bytes.Clone(pa)
			if fa.ID != uint64(i+1) || fa.Image.Bounds() != image.Rect(0, 0, opts.Width, opts.Height) {
				t.Errorf("%+v frame %d: ID %d bounds %v", opts, i, fa.ID, fa.Image.Bounds())
			}
		}
	}
	c, _ := NewSynthetic(SyntheticOptions{Width: 64, Height: 48, Pattern: PatternNoise, Seed: 8})
	var f device.Frame
	next(t, c, &f)
	d, _ := NewSynthetic(SyntheticOptions{Width: 64, Height: 48, Pattern: PatternNoise, Seed: 7})
	var g device.Frame
	next(t, d, &g)
	if bytes.Equal(pixOf(f.Image), pixOf(g.Image)) {
		t.Error("seeds 7 and 8 give the same noise")
	}
}

func TestSyntheticDefaultsAndEOF(t *testing.T) {
	s, err := NewSynthetic(SyntheticOptions{Frames: 2})
	if err != nil {
		t.Fatal(err)
	}
	var f device.Frame
	next(t, s, &f)
	if _, ok := f.Image.(*image.RGBA); !ok || f.Image.Bounds().Dx() != 640 || f.Image.Bounds().Dy() != 480 {
		t.Errorf("default frame: %T %v", f.Image, f.Image.Bounds())
	}
	next(t, s, &f)
	if err := s.Next(context.Background(), &f); err != io.EOF {
		t.Errorf("after 2 frames: %v, want io.EOF", err)
	}
	s.Close()
	if err := s.Next(context.Background(), &f); err != device.ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}

func TestSyntheticValidate(t *testing.T) {
	for _, tc := range []struct {
		opts SyntheticOptions
		want string
	}{
		{SyntheticOptions{Width: -1}, "size"},
		{SyntheticOptions{Width: 1 << 20, Height: 1 << 20}, "size"},
		{SyntheticOptions{Pattern: "plaid"}, "pattern"},
		{SyntheticOptions{FPS: -2}, "fps"},
	} {
		if _, err := NewSynthetic(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one about %s", tc.opts, err, tc.want)
		}
	}
}

func TestSyntheticAllocs(t *testing.T) {
	for _, opts := range []SyntheticOptions{{Pattern: PatternNoise}, {Gray: true}, {FPS: 1e6}} {
		s, _ := NewSynthetic(opts)
		var f device.Frame
		if n := testing.AllocsPerRun(5, func() { next(t, s, &f) }); n != 0 {
			t.Errorf("%+v: %v allocations per frame, want 0", opts, n)
		}
	}
}

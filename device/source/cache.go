package source

import (
	"image"
	"slices"
)

// DefaultCacheBytes is the memory a looping folder source gives to decoded frames when its
// options leave CacheBytes at zero: about 130 frames of 640x480 (4:2:0 planes and a 50 kB JPEG each).
const DefaultCacheBytes = 64 << 20

// frameCache keeps the frames of a looping folder source after their first decode, up to a
// memory budget, so that later passes serve them from memory without reading or decoding.
// The first frame that does not fit closes the cache: later frames are decoded each pass.
type frameCache struct {
	budget  int64    // bytes left
	closed  bool     // a frame did not fit: no more are cached
	entries []cached // nil when caching is off
}

type cached struct {
	img  image.Image // nil: not cached
	jpeg []byte      // the JPEG bytes, for Frame.Encoded; nil for PNG
}

// newFrameCache returns a cache for n frames within budget bytes; budget <= 0 disables it.
func newFrameCache(n int, budget int64) *frameCache {
	c := &frameCache{budget: budget}
	if budget > 0 {
		c.entries = make([]cached, n)
	}
	return c
}

// get returns frame i if it is cached.
func (c *frameCache) get(i int) (cached, bool) {
	if i >= len(c.entries) || c.entries[i].img == nil {
		return cached{}, false
	}
	return c.entries[i], true
}

// put keeps copies of frame i's image and JPEG bytes if they fit; it reports whether they did.
func (c *frameCache) put(i int, img image.Image, jpeg []byte) bool {
	if c.closed || i >= len(c.entries) {
		return false
	}
	size := imageBytes(img) + int64(len(jpeg))
	if size > c.budget {
		c.closed = true
		return false
	}
	cl := cloneImage(img)
	if cl == nil {
		return false
	}
	c.budget -= size
	c.entries[i] = cached{img: cl, jpeg: slices.Clone(jpeg)}
	return true
}

// imageBytes returns the pixel memory of an image of the types normalizer gives.
func imageBytes(img image.Image) int64 {
	switch m := img.(type) {
	case *image.Gray:
		return int64(len(m.Pix))
	case *image.RGBA:
		return int64(len(m.Pix))
	case *image.NRGBA:
		return int64(len(m.Pix))
	case *image.YCbCr:
		return int64(len(m.Y) + len(m.Cb) + len(m.Cr))
	}
	b := img.Bounds()
	return 4 * int64(b.Dx()) * int64(b.Dy())
}

// cloneImage returns a copy of img that shares no memory with it. Images of the types
// normalizer gives are copied as they are; others (never given by the decoder) are not cached.
func cloneImage(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.Gray:
		c := *m
		c.Pix = slices.Clone(m.Pix)
		return &c
	case *image.RGBA:
		c := *m
		c.Pix = slices.Clone(m.Pix)
		return &c
	case *image.NRGBA:
		c := *m
		c.Pix = slices.Clone(m.Pix)
		return &c
	case *image.YCbCr:
		c := *m
		c.Y, c.Cb, c.Cr = slices.Clone(m.Y), slices.Clone(m.Cb), slices.Clone(m.Cr)
		return &c
	}
	return nil
}

// count returns the number of cached frames.
func (c *frameCache) count() int {
	n := 0
	for _, e := range c.entries {
		if e.img != nil {
			n++
		}
	}
	return n
}

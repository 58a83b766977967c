package source

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// JPEG decoder names, for the JPEGDecoder option of the folder source and the camera.
const (
	JPEGStd   = "std"       // Go's image/jpeg: allocates the decoder and the image per frame
	JPEGTurbo = "turbojpeg" // libjpeg-turbo through cgo, into reused buffers: no allocation per frame; needs -tags turbojpeg
)

// jpegDecoder decodes a JPEG whose header has been read. The image it returns may live in a
// buffer that the next call reuses.
type jpegDecoder interface {
	decode(data []byte, hd header) (image.Image, error)
	close()
}

// newJPEGDecoder returns the decoder called name, or the best one this build has for "".
func newJPEGDecoder(name string) (jpegDecoder, error) {
	switch name {
	case JPEGStd:
		return &stdJPEG{}, nil
	case "", JPEGTurbo:
		d, err := newTurboJPEG()
		if err == nil || name == JPEGTurbo {
			return d, err
		}
		return &stdJPEG{}, nil
	}
	return nil, fmt.Errorf("unknown JPEG decoder %q (want %q or %q)", name, JPEGStd, JPEGTurbo)
}

// stdJPEG decodes with Go's image/jpeg. It reuses its reader, but the standard decoder
// allocates its state and a new image on every call.
type stdJPEG struct {
	rd bytes.Reader
}

func (d *stdJPEG) decode(data []byte, _ header) (image.Image, error) {
	d.rd.Reset(data)
	img, err := jpeg.Decode(&d.rd)
	d.rd.Reset(nil)
	return img, err
}

func (d *stdJPEG) close() {}

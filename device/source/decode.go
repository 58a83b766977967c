package source

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
)

// MaxFramePixels is the most pixels a decoded frame may have (a little over 8K UHD). The size
// is read from the header before decoding, so that a corrupt or hostile file cannot make the
// decoder allocate gigabytes.
const MaxFramePixels = 1 << 25

// frameDecoder decodes JPEG and PNG frames (chosen by their bytes, not their file names) into
// images that device/preprocess reads without allocating. The image it returns may live in a
// buffer that its next call reuses.
type frameDecoder struct {
	jpeg  jpegDecoder
	png   bytes.Reader
	norm  normalizer
	fixed []byte // a JPEG with the standard Huffman tables inserted (see withHuffmanTables)
}

func newFrameDecoder(jpegName string) (*frameDecoder, error) {
	j, err := newJPEGDecoder(jpegName)
	if err != nil {
		return nil, err
	}
	return &frameDecoder{jpeg: j}, nil
}

// decode returns the image in data and, for a JPEG, the JPEG bytes it decoded: data itself, or
// a copy with Huffman tables inserted that lives until the next call. Errors never panic: any
// bytes give an image or an error.
func (d *frameDecoder) decode(data []byte) (img image.Image, jpegData []byte, err error) {
	hd, err := readHeader(data)
	if err != nil {
		return nil, nil, err
	}
	if int64(hd.width)*int64(hd.height) > MaxFramePixels {
		return nil, nil, fmt.Errorf("image of %dx%d pixels is larger than the limit of %d pixels", hd.width, hd.height, MaxFramePixels)
	}
	switch hd.format {
	case formatJPEG:
		if !hd.hasDHT {
			d.fixed = withHuffmanTables(d.fixed, data, hd)
			data = d.fixed
			hd.sos += len(stdDHT)
			hd.hasDHT = true
		}
		img, err = d.jpeg.decode(data, hd)
		if err != nil {
			return nil, nil, fmt.Errorf("decode JPEG: %w", err)
		}
		jpegData = data
	default:
		d.png.Reset(data)
		img, err = png.Decode(&d.png)
		d.png.Reset(nil)
		if err != nil {
			return nil, nil, fmt.Errorf("decode PNG: %w", err)
		}
	}
	if b := img.Bounds(); b.Dx() != hd.width || b.Dy() != hd.height {
		return nil, nil, fmt.Errorf("decoded %dx%d, header says %dx%d", b.Dx(), b.Dy(), hd.width, hd.height)
	}
	return d.norm.normalize(img), jpegData, nil
}

func (d *frameDecoder) close() { d.jpeg.close() }

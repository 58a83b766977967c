package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// imageFormat is the encoding of an image file or camera frame.
type imageFormat uint8

const (
	formatUnknown imageFormat = iota
	formatJPEG
	formatPNG
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// header is what decoding needs to know before it decodes: the format and the size.
type header struct {
	format        imageFormat
	width, height int
	sos           int  // JPEG: offset of the first start-of-scan marker
	hasDHT        bool // JPEG: a Huffman table segment comes before the first scan
}

// readHeader reads the format and size of the image in data without allocating. It looks at
// the bytes, not at a file name.
func readHeader(data []byte) (header, error) {
	switch {
	case bytes.HasPrefix(data, pngSignature):
		return readPNGHeader(data)
	case len(data) >= 2 && data[0] == 0xff && data[1] == 0xd8:
		return readJPEGHeader(data)
	}
	return header{}, errors.New("not a JPEG or PNG image")
}

// readPNGHeader reads the IHDR chunk, which the PNG specification puts first.
func readPNGHeader(data []byte) (header, error) {
	if len(data) < 24 || string(data[12:16]) != "IHDR" {
		return header{}, errors.New("PNG: truncated or missing IHDR header")
	}
	w, h := binary.BigEndian.Uint32(data[16:20]), binary.BigEndian.Uint32(data[20:24])
	if w == 0 || h == 0 || w > 1<<31-1 || h > 1<<31-1 {
		return header{}, fmt.Errorf("PNG: invalid size %dx%d", w, h)
	}
	return header{format: formatPNG, width: int(w), height: int(h)}, nil
}

// readJPEGHeader walks the marker segments up to the first start of scan (SOS), reading the
// frame size from the start-of-frame (SOFn) segment and noting any Huffman table (DHT).
func readJPEGHeader(data []byte) (header, error) {
	hd := header{format: formatJPEG}
	i := 2 // after SOI
	for {
		// A marker is 0xff, any number of 0xff fill bytes, then the marker code.
		if i >= len(data) || data[i] != 0xff {
			return header{}, errors.New("JPEG: truncated or corrupt header")
		}
		for i < len(data) && data[i] == 0xff {
			i++
		}
		if i >= len(data) {
			return header{}, errors.New("JPEG: truncated header")
		}
		m := data[i]
		i++
		if m == 0x01 || (m >= 0xd0 && m <= 0xd8) { // TEM, RSTn, SOI: no length
			continue
		}
		if m == 0xd9 {
			return header{}, errors.New("JPEG: end of image before any scan")
		}
		if i+2 > len(data) {
			return header{}, errors.New("JPEG: truncated header")
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return header{}, errors.New("JPEG: truncated header")
		}
		seg := data[i+2 : i+n]
		switch {
		case m == 0xda: // SOS
			if hd.width == 0 {
				return header{}, errors.New("JPEG: scan before the frame header")
			}
			hd.sos = i - 2
			return hd, nil
		case m == 0xc4:
			hd.hasDHT = true
		case m >= 0xc0 && m <= 0xcf && m != 0xc8 && m != 0xcc: // SOFn
			if hd.width != 0 {
				return header{}, errors.New("JPEG: more than one frame header")
			}
			if len(seg) < 5 {
				return header{}, errors.New("JPEG: short frame header")
			}
			hd.height = int(binary.BigEndian.Uint16(seg[1:]))
			hd.width = int(binary.BigEndian.Uint16(seg[3:]))
			if hd.width == 0 || hd.height == 0 {
				return header{}, fmt.Errorf("JPEG: unsupported size %dx%d", hd.width, hd.height)
			}
		}
		i += n
	}
}

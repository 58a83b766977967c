//go:build turbojpeg && cgo

package source

/*
#cgo LDFLAGS: -lturbojpeg
#cgo noescape tjDecompressHeader3
#cgo nocallback tjDecompressHeader3
#cgo noescape tjDecompressToYUV2
#cgo nocallback tjDecompressToYUV2
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// turboJPEG decodes with libjpeg-turbo (the TurboJPEG API) into buffers it reuses: it keeps
// the planes of the JPEG as they are (no colour conversion) in one byte slice that backs the
// returned *image.YCbCr or *image.Gray, so that a frame of an already seen size makes no
// allocation. JPEGs that are not YCbCr or gray (CMYK, YCCK, RGB), or use an unusual chroma
// subsampling, go to Go's decoder.
//
// It is stricter than Go's decoder: a libjpeg warning (a truncated scan, corrupt data) fails
// the frame instead of giving a partly gray image, and a progressive JPEG of more than 500
// scans is refused.
type turboJPEG struct {
	h    C.tjhandle
	buf  []byte // the Y, Cb and Cr planes, one after the other, rows unpadded
	ycc  image.YCbCr
	gray image.Gray
	std  stdJPEG
}

// newTurboJPEG returns a libjpeg-turbo decoder; close frees it.
func newTurboJPEG() (jpegDecoder, error) {
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errors.New("turbojpeg: " + C.GoString(C.tjGetErrorStr2(nil)))
	}
	return &turboJPEG{h: h}, nil
}

var turboRatios = map[C.int]image.YCbCrSubsampleRatio{
	C.TJSAMP_444: image.YCbCrSubsampleRatio444,
	C.TJSAMP_422: image.YCbCrSubsampleRatio422,
	C.TJSAMP_420: image.YCbCrSubsampleRatio420,
	C.TJSAMP_440: image.YCbCrSubsampleRatio440,
	C.TJSAMP_411: image.YCbCrSubsampleRatio411,
}

func (d *turboJPEG) decode(data []byte, hd header) (image.Image, error) {
	if len(data) == 0 {
		return nil, errors.New("empty JPEG")
	}
	src, n := (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data))
	var w, h, samp, cs C.int
	if C.tjDecompressHeader3(d.h, src, n, &w, &h, &samp, &cs) != 0 {
		return d.fallback(data, hd)
	}
	ratio, color := turboRatios[samp]
	gray := samp == C.TJSAMP_GRAY && cs == C.TJCS_GRAY
	if !gray && !(color && cs == C.TJCS_YCbCr) || int(w) != hd.width || int(h) != hd.height {
		return d.fallback(data, hd)
	}
	size := int(C.tjBufSizeYUV2(w, 1, h, samp))
	if size <= 0 {
		return nil, fmt.Errorf("turbojpeg: no plane size for %dx%d", w, h)
	}
	if cap(d.buf) < size {
		d.buf = make([]byte, size)
	}
	d.buf = d.buf[:size]
	const flags = C.TJFLAG_ACCURATEDCT | C.TJFLAG_STOPONWARNING | C.TJFLAG_LIMITSCANS
	if C.tjDecompressToYUV2(d.h, src, n, (*C.uchar)(unsafe.Pointer(&d.buf[0])), w, 1, h, flags) != 0 {
		return nil, errors.New("turbojpeg: " + C.GoString(C.tjGetErrorStr2(d.h)))
	}
	rect := image.Rect(0, 0, int(w), int(h))
	yStride := int(C.tjPlaneWidth(0, w, samp))
	ySize := yStride * int(C.tjPlaneHeight(0, h, samp))
	if gray {
		d.gray = image.Gray{Pix: d.buf[:ySize:ySize], Stride: yStride, Rect: rect}
		return &d.gray, nil
	}
	cStride := int(C.tjPlaneWidth(1, w, samp))
	cSize := cStride * int(C.tjPlaneHeight(1, h, samp))
	d.ycc = image.YCbCr{
		Y:              d.buf[:ySize:ySize],
		Cb:             d.buf[ySize : ySize+cSize : ySize+cSize],
		Cr:             d.buf[ySize+cSize : ySize+2*cSize : ySize+2*cSize],
		YStride:        yStride,
		CStride:        cStride,
		SubsampleRatio: ratio,
		Rect:           rect,
	}
	return &d.ycc, nil
}

// fallback decodes what libjpeg-turbo cannot give as planes with Go's decoder, which also
// gives the error message when the data is not a JPEG at all.
func (d *turboJPEG) fallback(data []byte, hd header) (image.Image, error) {
	return d.std.decode(data, hd)
}

func (d *turboJPEG) close() {
	if d.h != nil {
		C.tjDestroy(d.h)
		d.h = nil
	}
}

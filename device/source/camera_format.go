package source

import (
	"fmt"
	"slices"
	"strings"
)

// V4L2 pixel format codes (fourcc, little-endian).
const (
	fourccYUYV  uint32 = 'Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24
	fourccMJPEG uint32 = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24
	fourccJPEG  uint32 = 'J' | 'P'<<8 | 'E'<<16 | 'G'<<24 // sent as MJPEG by some drivers
)

// fourccString returns a format code as its four letters.
func fourccString(v uint32) string {
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	return strings.TrimRight(string(b), " \x00")
}

// chooseFormat returns the format to ask a camera for: the preferred one (FormatYUYV or
// FormatMJPEG) when the camera offers it, else the other.
func chooseFormat(offered []uint32, preferred string) (uint32, error) {
	order := []uint32{fourccYUYV, fourccMJPEG, fourccJPEG}
	if preferred == FormatMJPEG {
		order = []uint32{fourccMJPEG, fourccJPEG, fourccYUYV}
	}
	for _, f := range order {
		if slices.Contains(offered, f) {
			return f, nil
		}
	}
	names := make([]string, len(offered))
	for i, f := range offered {
		names[i] = fourccString(f)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("the camera offers neither YUYV nor MJPEG (it offers %s)", strings.Join(names, ", "))
}

// camFormat is what a camera streams, as the driver set it.
type camFormat struct {
	fourcc        uint32
	width, height int
	stride        int     // bytes per row (YUYV); 0: packed
	fullRange     bool    // YUYV samples are full range
	readBack      error   // nil when the size was read back from the driver, else why it was not
	fps           float64 // the driver's frame rate; 0: unknown
}

func (f camFormat) jpeg() bool { return f.fourcc == fourccMJPEG || f.fourcc == fourccJPEG }

// V4L2 colour description values (videodev2.h) that decide the YUYV range.
const (
	v4l2ColorspaceJPEG     = 7
	v4l2QuantizationFull   = 1
	v4l2QuantizationLimRng = 2
)

// fullRange decides whether YUYV samples are full range: the config when it says, else the
// driver's quantization, whose default is studio range except for the JPEG colourspace.
func fullRange(configured string, colorspace, quantization uint32) bool {
	switch {
	case configured == RangeFull:
		return true
	case configured == RangeStudio:
		return false
	case quantization == v4l2QuantizationFull:
		return true
	case quantization == v4l2QuantizationLimRng:
		return false
	}
	return colorspace == v4l2ColorspaceJPEG
}

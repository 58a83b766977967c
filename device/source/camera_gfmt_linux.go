package source

import (
	"fmt"
	"unsafe"

	"github.com/blackjack/webcam/ioctl"
	"golang.org/x/sys/unix"
)

// v4l2PixFormat is struct v4l2_pix_format of linux/videodev2.h.
type v4l2PixFormat struct {
	Width, Height, Pixelformat, Field, Bytesperline, Sizeimage uint32
	Colorspace, Priv, Flags, YcbcrEnc, Quantization, XferFunc  uint32
}

// v4l2Format is struct v4l2_format: a type, then a 200-byte union that holds pointers, hence
// aligned like one (208 bytes in all on 64-bit systems, 204 on 32-bit ones).
type v4l2Format struct {
	typ   uint32
	union struct {
		pix v4l2PixFormat
		_   [200 - unsafe.Sizeof(v4l2PixFormat{}) - unsafe.Sizeof(uintptr(0))]byte
		_   unsafe.Pointer
	}
}

const v4l2BufTypeVideoCapture = 1

// readFormat returns the capture format the driver of path has set (VIDIOC_G_FMT). It opens
// the device a second time, as V4L2 allows, because webcam keeps its descriptor to itself.
func readFormat(path string) (v4l2PixFormat, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return v4l2PixFormat{}, fmt.Errorf("open for VIDIOC_G_FMT: %w", err)
	}
	defer unix.Close(fd)
	f := v4l2Format{typ: v4l2BufTypeVideoCapture}
	op := ioctl.IoRW('V', 4, unsafe.Sizeof(f)) // VIDIOC_G_FMT
	// The pointer is converted in the Syscall call itself, so that f stays put while the kernel
	// writes it (webcam's ioctl.Ioctl takes a uintptr, which does not pin it).
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), op, uintptr(unsafe.Pointer(&f))); errno != 0 {
		return v4l2PixFormat{}, fmt.Errorf("VIDIOC_G_FMT: %w", errno)
	}
	return f.union.pix, nil
}

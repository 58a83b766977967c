package source

import (
	"context"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/blackjack/webcam/ioctl"

	"github.com/oodguard/oodguard/device"
)

// TestV4L2FormatLayout checks struct v4l2_format against the kernel's: 208 bytes on 64-bit
// systems, 204 on 32-bit ones, the pixel format at offset 8 or 4; VIDIOC_G_FMT encodes the size.
func TestV4L2FormatLayout(t *testing.T) {
	ptr := unsafe.Sizeof(uintptr(0))
	wantSize, wantOff := uintptr(208), uintptr(8)
	if ptr == 4 {
		wantSize, wantOff = 204, 4
	}
	var f v4l2Format
	if got := unsafe.Sizeof(f); got != wantSize {
		t.Errorf("sizeof(v4l2_format) = %d, want %d", got, wantSize)
	}
	if got := unsafe.Offsetof(f.union); got != wantOff {
		t.Errorf("offset of the union = %d, want %d", got, wantOff)
	}
	if ptr == 8 {
		if got := ioctl.IoRW('V', 4, unsafe.Sizeof(f)); got != 0xc0d05604 {
			t.Errorf("VIDIOC_G_FMT = %#x, want 0xc0d05604", got)
		}
	}
}

// TestCameraDevice reads a few frames from /dev/video0 when there is one.
func TestCameraDevice(t *testing.T) {
	if _, err := os.Stat("/dev/video0"); err != nil {
		t.Skip("no /dev/video0")
	}
	if testing.Short() {
		t.Skip("camera test skipped in -short mode")
	}
	c, err := OpenCamera(CameraConfig{Device: "/dev/video0", FrameTimeout: 5 * time.Second, ReopenAttempts: 1}, nil)
	if err != nil {
		t.Skipf("/dev/video0 is not a usable camera: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var f device.Frame
	for i := range 3 {
		if err := c.Next(ctx, &f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		t.Logf("frame %d: %T %v", f.ID, f.Image, f.Image.Bounds())
	}
}

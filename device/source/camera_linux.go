package source

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// v4l2Device is a camDevice on a github.com/blackjack/webcam device.
type v4l2Device struct {
	cam *webcam.Webcam
}

// openV4L2 opens cfg.Device, picks YUYV or MJPEG, asks for the size, frame rate and buffer
// count of cfg, and reads back what the driver set.
func openV4L2(cfg CameraConfig) (camDevice, camFormat, error) {
	cam, err := webcam.Open(cfg.Device)
	if errors.Is(err, unix.EACCES) {
		return nil, camFormat{}, fmt.Errorf("open: %w (is the daemon's user in the video group?)", err)
	}
	if err != nil {
		return nil, camFormat{}, fmt.Errorf("open: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			cam.Close()
		}
	}()
	offered := slices.Collect(maps.Keys(cam.GetSupportedFormats()))
	codes := make([]uint32, len(offered))
	for i, f := range offered {
		codes[i] = uint32(f)
	}
	code, err := chooseFormat(codes, cfg.Format)
	if err != nil {
		return nil, camFormat{}, err
	}
	// webcam v0.6.1's SetImageFormat returns the size asked for, not the one the driver set:
	// the size comes from readFormat.
	if _, _, _, err := cam.SetImageFormat(webcam.PixelFormat(code), uint32(cfg.Width), uint32(cfg.Height)); err != nil {
		return nil, camFormat{}, fmt.Errorf("set format %s %dx%d: %w", fourccString(code), cfg.Width, cfg.Height, err)
	}
	f := camFormat{fourcc: code, width: cfg.Width, height: cfg.Height}
	pix, err := readFormat(cfg.Device)
	switch {
	case err != nil:
		f.readBack = err
	case pix.Pixelformat != code:
		return nil, camFormat{}, fmt.Errorf("asked for %s, the driver set %s", fourccString(code), fourccString(pix.Pixelformat))
	default:
		f.width, f.height, f.stride = int(pix.Width), int(pix.Height), int(pix.Bytesperline)
	}
	f.fullRange = fullRange(cfg.YUYVRange, pix.Colorspace, pix.Quantization)
	if cfg.FPS > 0 {
		_ = cam.SetFramerate(float32(cfg.FPS)) // not every driver can; the rate set is read back below
	}
	if fps, err := cam.GetFramerate(); err == nil {
		f.fps = float64(fps)
	}
	if err := cam.SetBufferCount(uint32(cfg.Buffers)); err != nil {
		return nil, camFormat{}, fmt.Errorf("set buffer count: %w", err)
	}
	ok = true
	return &v4l2Device{cam: cam}, f, nil
}

func (d *v4l2Device) Start() error { return d.cam.StartStreaming() }

// Wait waits for a frame; webcam counts in whole seconds, so timeout is rounded up.
func (d *v4l2Device) Wait(timeout time.Duration) error {
	secs := max(1, (timeout+time.Second-1)/time.Second)
	err := d.cam.WaitForFrame(uint32(secs))
	if _, ok := err.(*webcam.Timeout); ok {
		return errWaitTimeout
	}
	return err
}

// Read copies the next frame out of the driver's buffer before giving the buffer back (webcam's
// ReadFrame gives it back first, so the driver may overwrite it during the copy).
func (d *v4l2Device) Read(dst []byte) ([]byte, error) {
	frame, index, err := d.cam.GetFrame()
	if errors.Is(err, unix.EAGAIN) {
		return dst[:0], errNoFrame
	}
	if err != nil {
		return dst[:0], err
	}
	dst = append(dst[:0], frame...)
	if err := d.cam.ReleaseFrame(index); err != nil {
		return dst, fmt.Errorf("give the buffer back: %w", err)
	}
	return dst, nil
}

func (d *v4l2Device) Close() error { return d.cam.Close() }

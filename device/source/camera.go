package source

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"go.uber.org/zap"

	"github.com/oodguard/oodguard/device"
)

// ErrCameraLost is matched by the error of Camera.Next when the camera stopped giving frames
// and could not be reopened within CameraConfig.ReopenAttempts. The daemon decides what to do:
// a later Next starts a new round of attempts.
var ErrCameraLost = errors.New("camera lost")

var (
	errWaitTimeout = errors.New("no frame within the wait")   // camDevice.Wait
	errNoFrame     = errors.New("no frame ready (try again)") // camDevice.Read
)

// camDevice is the part of a V4L2 device that Camera uses, so that its logic can be tested
// without one: camera_linux.go implements it with github.com/blackjack/webcam.
type camDevice interface {
	Start() error                     // start streaming
	Wait(timeout time.Duration) error // wait for a frame; errWaitTimeout when none came
	Read(dst []byte) ([]byte, error)  // copy the next frame into dst[:0]; errNoFrame when none is ready
	Close() error                     // stop streaming and close
}

// openFunc opens the device of cfg and sets its format, without streaming yet.
type openFunc func(cfg CameraConfig) (camDevice, camFormat, error)

// Camera is a Source of a V4L2 camera (Linux): YUYV or MJPEG frames, chosen by
// CameraConfig.Format and what the camera offers.
//
// The driver may set another size than the one asked for; the Camera reads back the size, row
// stride and YUYV range it set (VIDIOC_G_FMT: webcam v0.6.1's SetImageFormat returns the size
// asked for). Each frame is copied out of the driver's buffer into one the Camera reuses
// before the buffer goes back to the driver. YUYV frames become a 4:2:2 *image.YCbCr, reused,
// with no allocation per frame, stretched from studio to full range unless the driver or
// CameraConfig.YUYVRange says full (see ConvertYUYV); MJPEG frames go through the JPEG decoder
// (allocating with JPEGStd, not with JPEGTurbo) and keep their JPEG bytes in Frame.Encoded,
// with the standard Huffman tables added when the camera left them out.
//
// When no frame comes for FrameTimeout, or the device fails (unplugged), Next closes it and
// reopens it, waiting ReopenDelay, then twice as long after each failure up to ReopenMaxDelay,
// for at most ReopenAttempts attempts; then it returns an error matching ErrCameraLost. A frame
// that is too short or does not decode is a device.FrameError and changes nothing else.
//
// A failed start of streaming leaks the buffers github.com/blackjack/webcam v0.6.1 mapped for
// it (issue #70) until the process ends; bounding the attempts bounds the leak. Next checks its
// context between waits of at most a second, so cancelling it takes up to a second.
type Camera struct {
	cfg   CameraConfig
	log   *zap.Logger
	open  openFunc
	sleep func(ctx context.Context, d time.Duration) error

	dev    camDevice // nil while lost
	format camFormat
	lost   error // why the device was dropped
	raw    []byte
	ycc    *image.YCbCr
	dec    *frameDecoder
	id     uint64
	closed bool
}

var _ device.Source = (*Camera)(nil)

// OpenCamera opens, configures and starts the camera of cfg, once: if that fails it returns
// the error. log may be nil.
func OpenCamera(cfg CameraConfig, log *zap.Logger) (*Camera, error) {
	return openCamera(cfg, log, openV4L2, Sleep)
}

func openCamera(cfg CameraConfig, log *zap.Logger, open openFunc, sleep func(context.Context, time.Duration) error) (*Camera, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	dec, err := newFrameDecoder(cfg.JPEGDecoder)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", cfg.Device, err)
	}
	c := &Camera{cfg: cfg, log: log.Named("camera").With(zap.String("device", cfg.Device)), open: open, sleep: sleep, dec: dec}
	if err := c.connect(); err != nil {
		dec.close()
		return nil, fmt.Errorf("camera %s: %w", cfg.Device, err)
	}
	return c, nil
}

// connect opens, configures and starts the device.
func (c *Camera) connect() error {
	dev, f, err := c.open(c.cfg)
	if err != nil {
		return err
	}
	if err := dev.Start(); err != nil {
		dev.Close()
		return fmt.Errorf("start streaming: %w", err)
	}
	c.dev, c.format, c.lost = dev, f, nil
	fields := []zap.Field{zap.String("format", fourccString(f.fourcc)), zap.Int("width", f.width), zap.Int("height", f.height),
		zap.Int("requested_width", c.cfg.Width), zap.Int("requested_height", c.cfg.Height), zap.Float64("fps", f.fps)}
	if !f.jpeg() {
		fields = append(fields, zap.Int("stride", f.stride), zap.Bool("full_range", f.fullRange))
	}
	if f.readBack != nil {
		c.log.Warn("frame size not read back from the driver: assuming the requested size", zap.Error(f.readBack))
	}
	c.log.Info("camera streaming", fields...)
	return nil
}

// Next waits for the next frame and fills f. See device.Source and Camera.
func (c *Camera) Next(ctx context.Context, f *device.Frame) error {
	if c.closed {
		return device.ErrClosed
	}
	for {
		if c.dev == nil {
			if err := c.reconnect(ctx); err != nil {
				return err
			}
		}
		data, err := c.read(ctx)
		if err == nil {
			return c.deliver(data, f)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("camera lost: reopening", zap.Error(err))
		c.drop(err)
	}
}

// read waits up to FrameTimeout for a frame and copies it into c.raw.
func (c *Camera) read(ctx context.Context) ([]byte, error) {
	left := c.cfg.FrameTimeout
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wait := min(left, time.Second)
		left -= wait
		err := c.dev.Wait(wait)
		if err == errWaitTimeout {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wait for a frame: %w", err)
		}
		data, err := c.dev.Read(c.raw[:0])
		c.raw = data[:0]
		if err == errNoFrame {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read a frame: %w", err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("no frame for %v", c.cfg.FrameTimeout)
}

// deliver converts or decodes a frame into f.
func (c *Camera) deliver(data []byte, f *device.Frame) error {
	var img image.Image
	var jpeg []byte
	if c.format.jpeg() {
		var err error
		if img, jpeg, err = c.dec.decode(data); err != nil {
			return &device.FrameError{Name: c.cfg.Device, Err: err}
		}
	} else {
		ycc, err := ConvertYUYV(c.ycc, data, YUYVFormat{Width: c.format.width, Height: c.format.height, Stride: c.format.stride, FullRange: c.format.fullRange})
		if err != nil {
			return &device.FrameError{Name: c.cfg.Device, Err: err}
		}
		c.ycc, img = ycc, ycc
	}
	c.id++
	*f = device.Frame{ID: c.id, Time: time.Now(), Image: img, Encoded: jpeg, Name: c.cfg.Device}
	return nil
}

// drop closes a failed device.
func (c *Camera) drop(cause error) {
	if err := c.dev.Close(); err != nil {
		c.log.Debug("close of the lost camera failed", zap.Error(err))
	}
	c.dev, c.lost = nil, cause
}

// reconnect reopens the camera with exponential backoff, for at most ReopenAttempts attempts.
func (c *Camera) reconnect(ctx context.Context) error {
	delay := c.cfg.ReopenDelay
	var err error
	for attempt := 1; attempt <= c.cfg.ReopenAttempts; attempt++ {
		if serr := c.sleep(ctx, delay); serr != nil {
			return serr
		}
		if err = c.connect(); err == nil {
			c.log.Info("camera reopened", zap.Int("attempt", attempt))
			return nil
		}
		c.log.Warn("camera reopen failed", zap.Int("attempt", attempt), zap.Int("of", c.cfg.ReopenAttempts),
			zap.Duration("after", delay), zap.Error(err))
		delay = min(2*delay, c.cfg.ReopenMaxDelay)
	}
	return fmt.Errorf("%w: %s (%v); %d reopen attempts failed, the last with: %w",
		ErrCameraLost, c.cfg.Device, c.lost, c.cfg.ReopenAttempts, err)
}

// Close stops streaming and closes the device.
func (c *Camera) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.dec.close()
	if c.dev == nil {
		return nil
	}
	err := c.dev.Close()
	c.dev = nil
	if err != nil {
		return fmt.Errorf("camera %s: close: %w", c.cfg.Device, err)
	}
	return nil
}

// Sleep waits for d, or until ctx ends and then returns ctx.Err(): the wait between attempts to
// reopen a source (the camera's own, and the daemon's when a source fails).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package source

import (
	"fmt"
	"math"
	"time"
)

// Camera pixel formats (CameraConfig.Format) and YUYV ranges (CameraConfig.YUYVRange).
const (
	FormatYUYV  = "yuyv"  // uncompressed 4:2:2: exact pixels, no decoding, twice the bytes of a gray frame
	FormatMJPEG = "mjpeg" // a JPEG per frame: what USB 2 cameras need for large sizes at full rate

	RangeFull   = "full"   // YUYV samples use 0..255
	RangeStudio = "studio" // YUYV samples use Y 16..235, Cb and Cr 16..240 (V4L2's default)
)

// CameraConfig configures a V4L2 camera. Zero fields take the defaults.
type CameraConfig struct {
	Device    string  `json:"device" yaml:"device"`         // "": /dev/video0
	Format    string  `json:"format" yaml:"format"`         // preferred FormatYUYV or FormatMJPEG; the other when the camera lacks it; "": yuyv
	Width     int     `json:"width" yaml:"width"`           // requested; 0: 640. The driver may set another size, which is read back
	Height    int     `json:"height" yaml:"height"`         // requested; 0: 480
	FPS       float64 `json:"fps" yaml:"fps"`               // requested frame rate; 0: the driver's
	Buffers   int     `json:"buffers" yaml:"buffers"`       // mmap buffers, 2..32; 0: 4 (fewer: fresher frames)
	YUYVRange string  `json:"yuyv_range" yaml:"yuyv_range"` // RangeFull or RangeStudio; "": what the driver reports (studio unless it says full)

	JPEGDecoder string `json:"jpeg_decoder" yaml:"jpeg_decoder"` // for MJPEG: JPEGStd or JPEGTurbo; "": the best in the build

	FrameTimeout   time.Duration `json:"frame_timeout" yaml:"frame_timeout"`       // no frame for this long: the camera is lost; rounded up to whole seconds; 0: 5s
	ReopenAttempts int           `json:"reopen_attempts" yaml:"reopen_attempts"`   // reopen attempts before Next gives up; 0: 10
	ReopenDelay    time.Duration `json:"reopen_delay" yaml:"reopen_delay"`         // wait before the first attempt, doubled after each; 0: 500ms
	ReopenMaxDelay time.Duration `json:"reopen_max_delay" yaml:"reopen_max_delay"` // the most it waits between attempts; 0: 30s
}

// withDefaults returns c with its zero fields set to the defaults.
func (c CameraConfig) withDefaults() CameraConfig {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Device == "" {
		c.Device = "/dev/video0"
	}
	if c.Format == "" {
		c.Format = FormatYUYV
	}
	set(&c.Width, 640)
	set(&c.Height, 480)
	set(&c.Buffers, 4)
	set(&c.ReopenAttempts, 10)
	setD(&c.FrameTimeout, 5*time.Second)
	setD(&c.ReopenDelay, 500*time.Millisecond)
	setD(&c.ReopenMaxDelay, 30*time.Second)
	return c
}

// Validate reports whether the config, with its defaults, is usable. Errors name the field by
// its JSON name.
func (c CameraConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Format != FormatYUYV && c.Format != FormatMJPEG:
		return fmt.Errorf("camera: format: %q is neither %q nor %q", c.Format, FormatYUYV, FormatMJPEG)
	case c.Width < 1 || c.Width > 16384 || c.Height < 1 || c.Height > 16384:
		return fmt.Errorf("camera: width, height: %dx%d out of range 1..16384", c.Width, c.Height)
	case c.FPS < 0 || c.FPS > 1000 || math.IsNaN(c.FPS):
		return fmt.Errorf("camera: fps: %v out of range 0..1000", c.FPS)
	case c.Buffers < 2 || c.Buffers > 32:
		return fmt.Errorf("camera: buffers: %d out of range 2..32", c.Buffers)
	case c.YUYVRange != "" && c.YUYVRange != RangeFull && c.YUYVRange != RangeStudio:
		return fmt.Errorf("camera: yuyv_range: %q is neither %q nor %q", c.YUYVRange, RangeFull, RangeStudio)
	case c.JPEGDecoder != "" && c.JPEGDecoder != JPEGStd && c.JPEGDecoder != JPEGTurbo:
		return fmt.Errorf("camera: jpeg_decoder: %q is neither %q nor %q", c.JPEGDecoder, JPEGStd, JPEGTurbo)
	case c.FrameTimeout < 0 || c.ReopenDelay < 0 || c.ReopenMaxDelay < 0:
		return fmt.Errorf("camera: frame_timeout, reopen_delay, reopen_max_delay: must not be negative")
	case c.ReopenAttempts < 0:
		return fmt.Errorf("camera: reopen_attempts: %d is negative", c.ReopenAttempts)
	}
	return nil
}

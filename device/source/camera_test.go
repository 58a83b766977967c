package source

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device"
)

var yuyv4x2 = camFormat{fourcc: fourccYUYV, width: 4, height: 2, fullRange: true}

// yuyvFrame returns a 4x2 YUYV frame whose luma is v, v+1, ... .
func yuyvFrame(v byte) []byte {
	var b []byte
	for i := range byte(4) {
		b = append(b, v+2*i, 128, v+2*i+1, 128)
	}
	return b
}

func newTestCamera(t *testing.T, cfg CameraConfig, o *fakeOpener) (*Camera, *sleepRecorder) {
	t.Helper()
	s := &sleepRecorder{}
	if cfg.Device == "" {
		cfg.Device = "/dev/video9"
	}
	c, err := openCamera(cfg, nil, o.open, s.sleep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, s
}

func TestCameraYUYV(t *testing.T) {
	dev := &fakeDevice{events: []fakeEvent{{frame: yuyvFrame(10)}, {frame: yuyvFrame(50)}}}
	// The config asks for 640x480; the driver set 4x2, which the frames have.
	c, _ := newTestCamera(t, CameraConfig{}, &fakeOpener{devices: []*fakeDevice{dev}, format: yuyv4x2})
	var f device.Frame
	for i, v := range []byte{10, 50} {
		next(t, c, &f)
		img, ok := f.Image.(*image.YCbCr)
		if !ok || img.Rect != image.Rect(0, 0, 4, 2) {
			t.Fatalf("frame %d: %T %v", i, f.Image, f.Image.Bounds())
		}
		if img.Y[0] != v || img.Y[7] != v+7 || f.ID != uint64(i+1) || f.Name != "/dev/video9" || f.Encoded != nil {
			t.Errorf("frame %d: Y %v ID %d name %q encoded %d", i, img.Y, f.ID, f.Name, len(f.Encoded))
		}
	}
}

func TestCameraMJPEG(t *testing.T) {
	full := encodeJPEG(t, testImage(32, 16, 1), 80)
	dev := &fakeDevice{events: []fakeEvent{{frame: stripDHT(t, full)}}}
	o := &fakeOpener{devices: []*fakeDevice{dev}, format: camFormat{fourcc: fourccMJPEG, width: 640, height: 480}}
	c, _ := newTestCamera(t, CameraConfig{Format: FormatMJPEG}, o)
	var f device.Frame
	next(t, c, &f)
	if f.Image.Bounds() != image.Rect(0, 0, 32, 16) {
		t.Errorf("bounds %v", f.Image.Bounds())
	}
	if _, err := jpeg.Decode(bytes.NewReader(f.Encoded)); err != nil {
		t.Errorf("Encoded does not decode: %v", err)
	}
}

// TestCameraBadFrame checks that a short or corrupt frame is a frame error and nothing more.
func TestCameraBadFrame(t *testing.T) {
	dev := &fakeDevice{events: []fakeEvent{{frame: yuyvFrame(1)[:10]}, {frame: nil}, {frame: yuyvFrame(2)}}}
	o := &fakeOpener{devices: []*fakeDevice{dev}, format: yuyv4x2}
	c, _ := newTestCamera(t, CameraConfig{}, o)
	var f device.Frame
	for range 2 {
		err := c.Next(context.Background(), &f)
		var fe *device.FrameError
		if !errors.Is(err, device.ErrBadFrame) || !errors.As(err, &fe) || fe.Name != "/dev/video9" || !strings.Contains(err.Error(), "short") {
			t.Errorf("err = %v, want a short-frame error naming the device", err)
		}
	}
	next(t, c, &f)
	if o.opened != 1 || dev.closed {
		t.Errorf("a bad frame reopened the camera (opened %d times)", o.opened)
	}
}

// TestCameraReopens checks that a silent camera is dropped after FrameTimeout and reopened
// with doubling delays, through failed opens and a failed start.
func TestCameraReopens(t *testing.T) {
	first := &fakeDevice{events: []fakeEvent{{frame: yuyvFrame(1)}}} // then silent
	badStart := &fakeDevice{startErr: errors.New("VIDIOC_STREAMON: no space left on device")}
	last := &fakeDevice{events: []fakeEvent{{frame: yuyvFrame(9)}}}
	o := &fakeOpener{
		devices: []*fakeDevice{first, nil, badStart, nil, last},
		errs:    []error{nil, syscall.ENOENT, nil, syscall.EBUSY, nil},
		format:  yuyv4x2,
	}
	c, s := newTestCamera(t, CameraConfig{FrameTimeout: 3 * time.Second}, o)
	var f device.Frame
	next(t, c, &f)
	next(t, c, &f)
	if y := f.Image.(*image.YCbCr).Y[0]; y != 9 || f.ID != 2 {
		t.Errorf("after reopening: Y %d ID %d, want 9 and 2", y, f.ID)
	}
	if first.waits != 1+3 {
		t.Errorf("the silent camera was waited on %d times, want 1 + 3 one-second waits", first.waits)
	}
	if !first.closed || !badStart.closed || last.closed {
		t.Errorf("closed: lost %v, failed start %v, reopened %v", first.closed, badStart.closed, last.closed)
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(s.slept, want) {
		t.Errorf("backoff %v, want %v", s.slept, want)
	}
}

func TestCameraGivesUp(t *testing.T) {
	dev := &fakeDevice{events: []fakeEvent{{readErr: syscall.ENODEV}}} // unplugged
	o := &fakeOpener{devices: []*fakeDevice{dev}, format: yuyv4x2}
	cfg := CameraConfig{ReopenAttempts: 5, ReopenDelay: time.Second, ReopenMaxDelay: 3 * time.Second}
	c, s := newTestCamera(t, cfg, o)
	var f device.Frame
	err := c.Next(context.Background(), &f)
	if !errors.Is(err, ErrCameraLost) || errors.Is(err, device.ErrBadFrame) {
		t.Fatalf("err = %v, want ErrCameraLost", err)
	}
	for _, part := range []string{"/dev/video9", "no such device", "5 reopen attempts", syscall.ENODEV.Error()} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}
	if !slices.Equal(s.slept, want) || o.opened != 6 {
		t.Errorf("backoff %v after %d opens, want %v after 6", s.slept, o.opened, want)
	}
	// The daemon may ask again: a new round of attempts.
	o.devices = make([]*fakeDevice, 9) // 0..5 are spent
	o.devices[8] = &fakeDevice{repeat: yuyvFrame(3)}
	o.errs = make([]error, 9)
	o.errs[6], o.errs[7] = errors.New("busy"), errors.New("busy")
	next(t, c, &f)
	if o.opened != 9 {
		t.Errorf("opened %d times, want 9", o.opened)
	}
}

func TestCameraNoFrameReady(t *testing.T) {
	dev := &fakeDevice{events: []fakeEvent{{readErr: errNoFrame}, {frame: yuyvFrame(4)}}}
	o := &fakeOpener{devices: []*fakeDevice{dev}, format: yuyv4x2}
	c, _ := newTestCamera(t, CameraConfig{}, o)
	var f device.Frame
	next(t, c, &f)
	if o.opened != 1 {
		t.Error("an empty dequeue reopened the camera")
	}
}

func TestCameraCancel(t *testing.T) {
	o := &fakeOpener{devices: []*fakeDevice{{}}, format: yuyv4x2}
	c, _ := newTestCamera(t, CameraConfig{}, o)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var f device.Frame
	if err := c.Next(ctx, &f); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if o.opened != 1 || c.dev == nil {
		t.Error("a cancelled Next dropped the camera")
	}
}

func TestCameraOpenFailsAndClose(t *testing.T) {
	_, err := openCamera(CameraConfig{Device: "/dev/video7"}, nil, (&fakeOpener{}).open, Sleep)
	if err == nil || !strings.Contains(err.Error(), "/dev/video7") || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("err = %v", err)
	}
	if _, err := openCamera(CameraConfig{Buffers: 1}, nil, (&fakeOpener{}).open, Sleep); err == nil || !strings.Contains(err.Error(), "buffers") {
		t.Errorf("bad config: %v", err)
	}
	dev := &fakeDevice{repeat: yuyvFrame(0)}
	c, _ := newTestCamera(t, CameraConfig{}, &fakeOpener{devices: []*fakeDevice{dev}, format: yuyv4x2})
	if err := c.Close(); err != nil || !dev.closed {
		t.Errorf("Close: %v, device closed %v", err, dev.closed)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var f device.Frame
	if err := c.Next(context.Background(), &f); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
}

func TestCameraAllocs(t *testing.T) {
	frame := bytes.Repeat([]byte{16, 128, 235, 128}, 640*480/2)
	dev := &fakeDevice{repeat: frame}
	format := camFormat{fourcc: fourccYUYV, width: 640, height: 480}
	c, _ := newTestCamera(t, CameraConfig{}, &fakeOpener{devices: []*fakeDevice{dev}, format: format})
	var f device.Frame
	next(t, c, &f)
	if n := testing.AllocsPerRun(20, func() { next(t, c, &f) }); n != 0 {
		t.Errorf("%v allocations per YUYV frame, want 0", n)
	}
}

func TestChooseFormat(t *testing.T) {
	grey := uint32('G' | 'R'<<8 | 'E'<<16 | 'Y'<<24)
	for _, tc := range []struct {
		offered   []uint32
		preferred string
		want      uint32
	}{
		{[]uint32{fourccMJPEG, fourccYUYV}, FormatYUYV, fourccYUYV},
		{[]uint32{fourccMJPEG, fourccYUYV}, FormatMJPEG, fourccMJPEG},
		{[]uint32{fourccMJPEG}, FormatYUYV, fourccMJPEG},
		{[]uint32{grey, fourccJPEG}, FormatMJPEG, fourccJPEG},
		{[]uint32{fourccYUYV}, FormatMJPEG, fourccYUYV},
	} {
		if got, err := chooseFormat(tc.offered, tc.preferred); err != nil || got != tc.want {
			t.Errorf("chooseFormat(%v, %s) = %s, %v; want %s", tc.offered, tc.preferred, fourccString(got), err, fourccString(tc.want))
		}
	}
	if _, err := chooseFormat([]uint32{grey}, FormatYUYV); err == nil || !strings.Contains(err.Error(), "GREY") {
		t.Errorf("err = %v, want one listing GREY", err)
	}
}

func TestFullRange(t *testing.T) {
	for _, tc := range []struct {
		cfg       string
		cs, quant uint32
		want      bool
	}{
		{"", 8, 0, false}, // sRGB, default quantization: studio
		{"", v4l2ColorspaceJPEG, 0, true},
		{"", 8, v4l2QuantizationFull, true},
		{"", v4l2ColorspaceJPEG, v4l2QuantizationLimRng, false},
		{RangeFull, 8, v4l2QuantizationLimRng, true},
		{RangeStudio, v4l2ColorspaceJPEG, v4l2QuantizationFull, false},
	} {
		if got := fullRange(tc.cfg, tc.cs, tc.quant); got != tc.want {
			t.Errorf("fullRange(%q, %d, %d) = %v", tc.cfg, tc.cs, tc.quant, got)
		}
	}
}

func TestCameraConfigValidate(t *testing.T) {
	if err := (CameraConfig{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, tc := range []struct {
		cfg   CameraConfig
		field string
	}{
		{CameraConfig{Format: "h264"}, "format"},
		{CameraConfig{Width: -1}, "width"},
		{CameraConfig{FPS: -1}, "fps"},
		{CameraConfig{Buffers: 64}, "buffers"},
		{CameraConfig{YUYVRange: "tv"}, "yuyv_range"},
		{CameraConfig{JPEGDecoder: "x"}, "jpeg_decoder"},
		{CameraConfig{FrameTimeout: -time.Second}, "frame_timeout"},
		{CameraConfig{ReopenAttempts: -1}, "reopen_attempts"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.cfg, err, tc.field)
		}
	}
}

// TestSleep: nil once d has passed, ctx's error when ctx ends first (however long d is).
func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep 1ms: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a cancelled context: %v, want context.Canceled", err)
	}
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/source"
	"go.uber.org/zap"
)

// openSource opens the configured frame source. Each constructor's pointer is returned only
// when it succeeded: a nil *Folder in a device.Source would not compare equal to nil.
func openSource(c SourceConfig, log *zap.Logger) (device.Source, error) {
	var err error
	switch c.Type {
	case "folder":
		var s *source.Folder
		if s, err = source.OpenFolder(c.Path, c.Folder, log); err == nil {
			return s, nil
		}
	case "camera":
		var s *source.Camera
		if s, err = source.OpenCamera(c.Camera, log); err == nil {
			return s, nil
		}
	case "synthetic":
		var s *source.Synthetic
		if s, err = source.NewSynthetic(c.Synthetic); err == nil {
			return s, nil
		}
	default:
		return nil, fmt.Errorf("unknown source type %q", c.Type)
	}
	if name := sourceName(c); !strings.Contains(err.Error(), name) {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	return nil, err
}

// sourceName names the configured source for logs and the status topic.
func sourceName(c SourceConfig) string {
	switch c.Type {
	case "folder":
		return c.Path
	case "camera":
		if c.Camera.Device != "" {
			return c.Camera.Device
		}
		return "camera"
	}
	return c.Type
}

// SourceStatus is the frame source's state, published retained on <prefix>/<device>/source and
// shown in /healthz and the oodguard_source_online metric.
type SourceStatus struct {
	State  string    `json:"state"`           // "online" or "offline"
	Source string    `json:"source"`          // the folder, file or camera device
	Error  string    `json:"error,omitempty"` // why it is offline
	Since  time.Time `json:"since"`           // when it entered this state
}

// Source states.
const (
	SourceOnline  = "online"
	SourceOffline = "offline"
)

// supervised is the daemon's frame source: it opens the configured source, and when the source
// cannot be opened (a camera not plugged in, a missing or empty folder) or fails for good while
// running (a camera lost past its own reopen attempts), it reports the source offline and
// tries again after a backoff (RetryMin, doubled after each failure up to RetryMax) until the
// context ends. A missing camera at start is thus the same as a camera lost while running.
type supervised struct {
	open     func() (device.Source, error)
	name     string
	retryMin time.Duration
	retryMax time.Duration
	log      *zap.Logger
	onChange func(SourceStatus) // called on every change of state, from the frame loop's goroutine

	src   device.Source // nil while offline
	delay time.Duration

	mu      sync.Mutex
	status  SourceStatus
	reopens uint64
	closed  bool
}

func newSupervised(name string, open func() (device.Source, error), retryMin, retryMax time.Duration, log *zap.Logger, onChange func(SourceStatus)) *supervised {
	if onChange == nil {
		onChange = func(SourceStatus) {}
	}
	return &supervised{
		open: open, name: name, retryMin: retryMin, retryMax: retryMax, log: log, onChange: onChange,
		delay:  retryMin,
		status: SourceStatus{State: SourceOffline, Source: name, Error: "not opened yet", Since: time.Now().UTC()},
	}
}

// Status returns the source's state; safe to call from any goroutine.
func (s *supervised) Status() SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Reopens counts the failed attempts to open the source since the daemon started.
func (s *supervised) Reopens() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reopens
}

func (s *supervised) setState(state string, err error) {
	s.mu.Lock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	changed := s.status.State != state || s.status.Error != msg
	if changed {
		s.status = SourceStatus{State: state, Source: s.name, Error: msg, Since: time.Now().UTC()}
	}
	st := s.status
	s.mu.Unlock()
	if changed {
		s.onChange(st)
	}
}

// Next implements device.Source.
func (s *supervised) Next(ctx context.Context, f *device.Frame) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.src == nil {
			if err := s.connect(ctx); err != nil {
				return err
			}
		}
		err := s.src.Next(ctx, f)
		switch {
		case err == nil:
			s.delay = s.retryMin
			return nil
		case errors.Is(err, io.EOF), errors.Is(err, device.ErrBadFrame), ctx.Err() != nil:
			return err
		}
		// The source cannot go on: report it, close it and open it again after a backoff.
		s.log.Error("frame source failed; reopening", zap.String("source", s.name), zap.Error(err))
		s.src.Close()
		s.src = nil
		s.setState(SourceOffline, err)
		if err := source.Sleep(ctx, s.backoff()); err != nil {
			return err
		}
	}
}

// connect opens the source, retrying with backoff until it opens or ctx ends.
func (s *supervised) connect(ctx context.Context) error {
	for first := true; ; first = false {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return device.ErrClosed
		}
		src, err := s.open()
		if err == nil {
			s.src = src
			s.log.Info("frame source online", zap.String("source", s.name))
			s.setState(SourceOnline, nil)
			return nil
		}
		s.mu.Lock()
		s.reopens++
		s.mu.Unlock()
		wait := s.backoff()
		if first || s.Status().Error != err.Error() {
			s.log.Error("frame source offline; retrying", zap.String("source", s.name), zap.Error(err), zap.Duration("retry_in", wait))
		} else {
			s.log.Debug("frame source still offline", zap.String("source", s.name), zap.Error(err), zap.Duration("retry_in", wait))
		}
		s.setState(SourceOffline, err)
		if err := source.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// backoff returns the next wait and doubles it, up to retryMax.
func (s *supervised) backoff() time.Duration {
	d := s.delay
	s.delay = min(2*s.delay, s.retryMax)
	return d
}

// Close implements device.Source.
func (s *supervised) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.src == nil {
		return nil
	}
	err := s.src.Close()
	s.src = nil
	return err
}

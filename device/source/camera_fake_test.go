package source

import (
	"context"
	"errors"
	"time"
)

// fakeEvent is what a fakeDevice does at one Wait (and the Read after it).
type fakeEvent struct {
	wait    error  // Wait returns it; nil: a frame is ready
	frame   []byte // Read copies it
	readErr error  // Read returns it
}

// fakeDevice is a camDevice that plays a script of events, then repeats repeat forever, or
// times out when repeat is nil.
type fakeDevice struct {
	startErr error
	events   []fakeEvent
	repeat   []byte
	waits    int
	closed   bool
}

func (d *fakeDevice) Start() error { return d.startErr }

func (d *fakeDevice) Wait(time.Duration) error {
	d.waits++
	if len(d.events) == 0 {
		if d.repeat != nil {
			return nil
		}
		return errWaitTimeout
	}
	if err := d.events[0].wait; err != nil {
		d.events = d.events[1:]
		return err
	}
	return nil
}

func (d *fakeDevice) Read(dst []byte) ([]byte, error) {
	if len(d.events) == 0 {
		return append(dst[:0], d.repeat...), nil
	}
	ev := d.events[0]
	d.events = d.events[1:]
	if ev.readErr != nil {
		return dst[:0], ev.readErr
	}
	return append(dst[:0], ev.frame...), nil
}

func (d *fakeDevice) Close() error {
	d.closed = true
	return nil
}

// fakeOpener opens its devices in turn; an entry with a nil device fails with err. Past the
// end, opening fails.
type fakeOpener struct {
	devices []*fakeDevice
	errs    []error
	format  camFormat
	opened  int
}

func (o *fakeOpener) open(CameraConfig) (camDevice, camFormat, error) {
	i := o.opened
	o.opened++
	if i >= len(o.devices) {
		return nil, camFormat{}, errors.New("no such device")
	}
	if o.devices[i] == nil {
		return nil, camFormat{}, o.errs[i]
	}
	return o.devices[i], o.format, nil
}

// sleepRecorder records the backoff waits instead of sleeping.
type sleepRecorder struct{ slept []time.Duration }

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.slept = append(s.slept, d)
	return ctx.Err()
}

// Package device holds what the device daemon (oodguardd) consumes: frames and the sources that
// give them (Source, Frame). The sources themselves (a folder of images, a synthetic pattern, a
// V4L2 camera) live in device/source; device/preprocess turns a frame into a model input tensor.
package device

import (
	"context"
	"errors"
	"image"
	"time"
)

// Frame is one image from a Source. The daemon keeps one Frame and passes it to every call of
// Source.Next, which fills it in.
//
// Ownership: Image and Encoded point into buffers that belong to the Source. They are valid
// until the next call of Next or Close on that Source, which may overwrite or free them; the
// caller must not modify them (a looping source may hand the same pixels out again later). To
// keep a frame longer, for example the JPEG of an alert, copy it.
type Frame struct {
	ID      uint64      // 1 for the first frame a Source delivers, then one more per frame
	Time    time.Time   // when the source read or captured the frame
	Image   image.Image // the pixels; valid until the next Next or Close
	Encoded []byte      // the JPEG the pixels were decoded from, when the source had one, else nil; valid as Image
	Name    string      // the file or device the frame came from, for logs and alerts
}

// Source gives frames one at a time. Implementations reuse their buffers: once running, Next
// makes no allocation per frame on its zero-allocation paths (each implementation documents
// which those are).
//
// A Source is not safe for concurrent use. To stop a Next that waits (for a frame rate or a
// camera), cancel its context; then call Close.
type Source interface {
	// Next fills f with the next frame. It returns io.EOF when a finite source has no more
	// frames, an error that matches ErrBadFrame when this one frame is unusable but the source
	// can go on (call Next again), ctx.Err() when ctx ends first, and any other error when the
	// source cannot go on.
	Next(ctx context.Context, f *Frame) error
	// Close releases the source and its buffers. Next after Close returns ErrClosed. Close may
	// be called more than once.
	Close() error
}

var (
	// ErrBadFrame is matched (errors.Is) by the errors of a frame that could not be read or
	// decoded while the source itself is still usable: log it and ask for the next frame.
	ErrBadFrame = errors.New("bad frame")
	// ErrClosed is returned by Next on a closed Source.
	ErrClosed = errors.New("source closed")
)

// FrameError is the error of one bad frame: Name is the file or device it came from. It
// matches ErrBadFrame and unwraps to the cause.
type FrameError struct {
	Name string // the file or device
	Err  error  // what went wrong
}

func (e *FrameError) Error() string { return "bad frame from " + e.Name + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FrameError) Unwrap() error { return e.Err }

// Is reports whether target is ErrBadFrame.
func (e *FrameError) Is(target error) bool { return target == ErrBadFrame }

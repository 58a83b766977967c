package device

import (
	"errors"
	"io/fs"
	"testing"
)

func TestFrameError(t *testing.T) {
	var err error = &FrameError{Name: "frames/0001.jpg", Err: fs.ErrNotExist}
	if !errors.Is(err, ErrBadFrame) || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrClosed) {
		t.Errorf("errors.Is: bad frame %v, cause %v, closed %v", errors.Is(err, ErrBadFrame), errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrClosed))
	}
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Name != "frames/0001.jpg" {
		t.Errorf("errors.As: %v", fe)
	}
	if got, want := err.Error(), "bad frame from frames/0001.jpg: file does not exist"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

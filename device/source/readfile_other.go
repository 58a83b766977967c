//go:build !linux

package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// fileReader reads the files of a folder source into a reused buffer. Outside Linux it goes
// through os.Open, which makes a few small allocations per file.
type fileReader struct {
	paths []string
}

func newFileReader(paths []string) *fileReader { return &fileReader{paths: paths} }

// read reads file i into buf[:0], growing it when needed, and returns the bytes. A file of
// more than limit bytes is an error.
func (r *fileReader) read(i int, buf []byte, limit int) ([]byte, error) {
	f, err := os.Open(r.paths[i])
	if err != nil {
		return buf[:0], fmt.Errorf("open: %w", pathCause(err))
	}
	defer f.Close()
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, errTooLarge(limit)
			}
			buf = grow(buf, limit)
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, fmt.Errorf("read: %w", pathCause(err))
		}
	}
	if len(buf) > limit {
		return buf, errTooLarge(limit)
	}
	return buf, nil
}

// pathCause returns the cause of a *fs.PathError (the frame error names the file already).
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

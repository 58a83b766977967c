package source

import (
	"fmt"
	"syscall"
	"unsafe"
)

// fileReader reads the files of a folder source into a reused buffer. On Linux it calls
// openat, read and close directly on paths converted to C strings once, so that reading a file
// makes no allocation (os.Open makes three).
type fileReader struct {
	paths [][]byte // NUL-terminated
}

func newFileReader(paths []string) *fileReader {
	r := &fileReader{paths: make([][]byte, len(paths))}
	for i, p := range paths {
		r.paths[i] = append([]byte(p), 0)
	}
	return r
}

// read reads file i into buf[:0], growing it when needed, and returns the bytes. A file of
// more than limit bytes is an error.
func (r *fileReader) read(i int, buf []byte, limit int) ([]byte, error) {
	p := r.paths[i]
	atFDCWD := -100 // AT_FDCWD: relative paths start at the working directory
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&p[0])),
		syscall.O_RDONLY|syscall.O_CLOEXEC, 0, 0, 0)
	if errno != 0 {
		return buf[:0], fmt.Errorf("open: %w", errno)
	}
	defer syscall.Close(int(fd))
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, errTooLarge(limit)
			}
			buf = grow(buf, limit)
		}
		n, err := syscall.Read(int(fd), buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	if len(buf) > limit {
		return buf, errTooLarge(limit)
	}
	return buf, nil
}

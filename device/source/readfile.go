package source

import "fmt"

// MaxFileBytes is the largest image file a folder source reads; a larger one is a bad frame.
const MaxFileBytes = 64 << 20

// grow returns buf with twice its capacity (64 KiB at first), but not more than limit+1 (enough
// to tell that a file is too large), and the same contents.
func grow(buf []byte, limit int) []byte {
	n := min(max(2*cap(buf), 64<<10), limit+1)
	nb := make([]byte, len(buf), n)
	copy(nb, buf)
	return nb
}

func errTooLarge(limit int) error {
	return fmt.Errorf("file is larger than %d bytes", limit)
}

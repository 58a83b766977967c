package bundle

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// errOverCap is returned by capReader past its cap.
var errOverCap = errors.New("archive exceeds the size cap")

// capReader fails with errOverCap, rather than ending, once more than n bytes were read, and
// counts the bytes read.
type capReader struct {
	r    io.Reader
	n    int64 // bytes left
	read int64 // bytes read
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errOverCap
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	c.read += int64(n)
	if c.n < 0 {
		return n, errOverCap
	}
	return n, err
}

// archive is a tar stream, gunzipped when it was compressed, read under a size cap.
type archive struct {
	*tar.Reader
	src *capReader
}

// openArchive returns the archive in r, gunzipping it when it starts with the gzip magic and
// failing once the uncompressed stream exceeds total bytes.
func openArchive(r io.Reader, total int64) (*archive, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, archiveError("gzip header", err)
		}
		zr.Multistream(false)
		src = zr
	}
	cr := &capReader{r: src, n: total}
	return &archive{Reader: tar.NewReader(cr), src: cr}, nil
}

// consumed returns how many uncompressed bytes were read.
func (a *archive) consumed() int64 { return a.src.read }

// finish checks the end of an archive whose entries ended at byte end (padding included),
// once Next returned io.EOF. The tar reader also returns io.EOF when the data simply stops
// between two entries, so finish checks that the two zero blocks marking the end were there;
// then it reads the rest of the stream (checking the gzip trailer) and accepts only zeros.
func (a *archive) finish(end int64) error {
	if a.consumed()-end < 2*blockSize {
		return fmt.Errorf("after %d bytes: %w: no end-of-archive marker", end, ErrTruncated)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := a.src.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return fmt.Errorf("after the end-of-archive marker: %w: data follows", ErrMalformedArchive)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return archiveError("after the end-of-archive marker", err)
		}
	}
}

// blockSize is the tar block size.
const blockSize = 512

// padded returns size rounded up to whole tar blocks.
func padded(size int64) int64 { return (size + blockSize - 1) / blockSize * blockSize }

// archiveError maps an error from reading the archive to this package's sentinels.
func archiveError(where string, err error) error {
	switch {
	case errors.Is(err, errOverCap):
		return fmt.Errorf("%s: %w: %v", where, ErrTooLarge, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s: %w: archive ends early", where, ErrTruncated)
	default:
		return fmt.Errorf("%s: %w: %v", where, ErrMalformedArchive, err)
	}
}

// checkEntry refuses entries that are not plain regular files with a clean relative name.
// Names come from an untrusted archive, so they are quoted in errors.
func checkEntry(h *tar.Header) error {
	name := h.Name
	if name == "" {
		return fmt.Errorf("entry with no name: %w", ErrUnexpectedEntry)
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || (len(name) >= 2 && name[1] == ':') {
		return fmt.Errorf("entry %q: %w: absolute path", name, ErrPathEscape)
	}
	for _, elem := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if elem == ".." {
			return fmt.Errorf("entry %q: %w: holds \"..\"", name, ErrPathEscape)
		}
	}
	if h.Typeflag != tar.TypeReg {
		return fmt.Errorf("entry %q: %w: type %q", name, ErrEntryType, h.Typeflag)
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("entry %q: %w: sparse file", name, ErrEntryType)
		}
	}
	return nil
}

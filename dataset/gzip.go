package dataset

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// gzipMagic starts every gzip stream.
var gzipMagic = [2]byte{0x1f, 0x8b}

// dataFile is an opened data file, transparently gunzipped when it starts with the gzip
// magic bytes.
type dataFile struct {
	*bufio.Reader
	f    *os.File
	gz   *gzip.Reader // nil when the file is not compressed
	size int64        // size of the file on disk
}

// openData opens path for buffered reading, decompressing it if it is gzip.
func openData(path string) (*dataFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dataset: %w", err)
	}
	d := &dataFile{f: f, size: st.Size(), Reader: bufio.NewReaderSize(f, 64<<10)}
	if magic, _ := d.Peek(2); len(magic) == 2 && magic[0] == gzipMagic[0] && magic[1] == gzipMagic[1] {
		if d.gz, err = gzip.NewReader(d.Reader); err != nil {
			f.Close()
			return nil, fmt.Errorf("dataset: %s: %w", path, err)
		}
		d.Reader = bufio.NewReaderSize(d.gz, 64<<10)
	}
	return d, nil
}

// Close closes the file.
func (d *dataFile) Close() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// readRecord fills buf from r. It returns ErrTruncated (wrapped with got, the byte count
// read) when the data ends before buf is full, and io.EOF only when no byte was read.
func readRecord(r io.Reader, buf []byte) error {
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF:
		return io.EOF
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w (got %d of %d bytes)", ErrTruncated, n, len(buf))
	}
	return err
}

package dataset

import "io"

// limitReader yields at most n samples of another reader.
type limitReader struct {
	r    Reader
	n    int // samples left
	size int
}

// Limit returns a Reader that yields the first n samples of r (all of them if r has fewer)
// and then io.EOF. Closing it closes r. A negative n is treated as 0.
func Limit(r Reader, n int) Reader {
	n = max(n, 0)
	size := r.Len()
	if size >= 0 {
		size = min(size, n)
	}
	return &limitReader{r: r, n: n, size: size}
}

// Next returns the next sample of the underlying reader, or io.EOF once n are read.
func (l *limitReader) Next() (Sample, error) {
	if l.n <= 0 {
		return Sample{}, io.EOF
	}
	s, err := l.r.Next()
	if err == nil {
		l.n--
	}
	return s, err
}

// Close closes the underlying reader.
func (l *limitReader) Close() error { return l.r.Close() }

// Len is min(n, r.Len()), or -1 when r.Len() is unknown.
func (l *limitReader) Len() int { return l.size }

// Classes returns the classes of the underlying reader.
func (l *limitReader) Classes() []string { return l.r.Classes() }

package dataset

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// IDX element types (the third byte of the magic number). Only idxUbyte is read.
const (
	idxUbyte  = 0x08
	idxSbyte  = 0x09
	idxInt16  = 0x0B
	idxInt32  = 0x0C
	idxFloat  = 0x0D
	idxDouble = 0x0E
)

// Limits that keep a corrupt header from making a reader allocate gigabytes.
const (
	maxIDXDims        = 4       // ranks above this are not image or label files
	maxIDXSampleBytes = 1 << 26 // bytes in one sample: the product of all dims but the first
)

// idxHeader is the parsed header of an IDX file: the magic number's element type and the
// dimensions, the first of which counts the samples.
type idxHeader struct {
	Type byte
	Dims []int
}

// size returns the header's length in bytes.
func (h idxHeader) size() int { return 4 + 4*len(h.Dims) }

// sampleBytes returns the number of elements in one sample (the product of Dims[1:]).
func (h idxHeader) sampleBytes() int {
	n := 1
	for _, d := range h.Dims[1:] {
		n *= d
	}
	return n
}

// parseIDXHeader reads an IDX header: two zero bytes, the element type, the number of
// dimensions, then each dimension as a big-endian uint32. It checks the type and that the
// dimensions are positive (the sample count may be 0) and small enough to allocate.
func parseIDXHeader(r io.Reader) (idxHeader, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return idxHeader{}, headerReadErr(err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return idxHeader{}, fmt.Errorf("%w: bad IDX magic number %#08x", ErrFormat, binary.BigEndian.Uint32(magic[:]))
	}
	switch magic[2] {
	case idxUbyte, idxSbyte, idxInt16, idxInt32, idxFloat, idxDouble:
	default:
		return idxHeader{}, fmt.Errorf("%w: bad IDX element type %#02x", ErrFormat, magic[2])
	}
	nd := int(magic[3])
	if nd < 1 || nd > maxIDXDims {
		return idxHeader{}, fmt.Errorf("%w: IDX header has %d dimensions, want 1 to %d", ErrFormat, nd, maxIDXDims)
	}
	buf := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, buf); err != nil {
		return idxHeader{}, headerReadErr(err)
	}
	h := idxHeader{Type: magic[2], Dims: make([]int, nd)}
	sample := 1
	for i := range h.Dims {
		d := binary.BigEndian.Uint32(buf[4*i:])
		if d > math.MaxInt32 {
			return idxHeader{}, fmt.Errorf("%w: IDX dimension %d is %d, too large", ErrFormat, i, d)
		}
		h.Dims[i] = int(d)
		if i == 0 {
			continue
		}
		if d == 0 {
			return idxHeader{}, fmt.Errorf("%w: IDX dimension %d is 0", ErrFormat, i)
		}
		if sample *= int(d); sample > maxIDXSampleBytes {
			return idxHeader{}, fmt.Errorf("%w: IDX samples of %v elements are too large", ErrFormat, h.Dims[1:i+1])
		}
	}
	return h, nil
}

// headerReadErr turns a short read of a header into ErrTruncated.
func headerReadErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: IDX header is cut short", ErrTruncated)
	}
	return err
}

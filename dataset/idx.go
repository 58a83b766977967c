package dataset

import (
	"errors"
	"fmt"
	"image"
	"io"
)

// idxReader streams an IDX images file and, optionally, its labels file in step.
type idxReader struct {
	failed
	images, labels   *dataFile // labels is nil when unlabelled
	imgName, labName string
	n, rows, cols    int
	i                int // index of the next sample
	classes          []string
	label            [1]byte
	reuse            *image.Gray // the image of every sample with Options.ReuseImages
}

// OpenIDX opens an IDX ubyte images file (idx3: count, rows, columns) and, unless labels is
// "" or opts.Unlabeled is set, its labels file (idx1: count). Either file may be
// gzip-compressed; compression is detected from its first bytes. The images are
// *image.Gray. Only opts.Unlabeled, opts.Classes and opts.ReuseImages apply.
func OpenIDX(images, labels string, opts Options) (Reader, error) {
	r := &idxReader{imgName: images, labName: labels}
	if opts.Unlabeled {
		r.labName = ""
	} else {
		r.classes = opts.Classes
	}
	if err := r.open(); err != nil {
		r.Close()
		return nil, err
	}
	if opts.ReuseImages {
		r.reuse = image.NewGray(image.Rect(0, 0, r.cols, r.rows))
	}
	return r, nil
}

// open opens both files and checks their headers against each other.
func (r *idxReader) open() error {
	var err error
	if r.images, err = openData(r.imgName); err != nil {
		return err
	}
	h, err := parseIDXHeader(r.images)
	if err != nil {
		return fmt.Errorf("dataset: %s: %w", r.imgName, err)
	}
	if h.Type != idxUbyte || len(h.Dims) != 3 {
		return fmt.Errorf("dataset: %s: %w: want unsigned bytes in 3 dimensions (count, rows, columns), got type %#02x with dimensions %v",
			r.imgName, ErrFormat, h.Type, h.Dims)
	}
	r.n, r.rows, r.cols = h.Dims[0], h.Dims[1], h.Dims[2]
	if r.labName == "" {
		return nil
	}
	if r.labels, err = openData(r.labName); err != nil {
		return err
	}
	lh, err := parseIDXHeader(r.labels)
	if err != nil {
		return fmt.Errorf("dataset: %s: %w", r.labName, err)
	}
	if lh.Type != idxUbyte || len(lh.Dims) != 1 {
		return fmt.Errorf("dataset: %s: %w: want unsigned bytes in 1 dimension (count), got type %#02x with dimensions %v",
			r.labName, ErrFormat, lh.Type, lh.Dims)
	}
	if lh.Dims[0] != r.n {
		return fmt.Errorf("dataset: %s holds %d images but %s holds %d labels: %w",
			r.imgName, r.n, r.labName, lh.Dims[0], ErrFormat)
	}
	return nil
}

// Next returns the next image and its label.
func (r *idxReader) Next() (Sample, error) {
	if r.err != nil {
		return Sample{}, r.err
	}
	if r.i >= r.n {
		return Sample{}, r.fail(io.EOF)
	}
	img := r.reuse
	if img == nil {
		img = image.NewGray(image.Rect(0, 0, r.cols, r.rows))
	}
	if err := readRecord(r.images, img.Pix); err != nil {
		return Sample{}, r.fail(r.recordErr(r.imgName, "image", err))
	}
	s := Sample{Image: img, Label: -1, src: r.imgName, rec: r.i + 1}
	if r.labels != nil {
		if err := readRecord(r.labels, r.label[:]); err != nil {
			return Sample{}, r.fail(r.recordErr(r.labName, "label", err))
		}
		s.Label = int(r.label[0])
		if r.classes != nil && s.Label >= len(r.classes) {
			return Sample{}, r.fail(fmt.Errorf("dataset: %s: label %d: %w: value %d but only %d classes",
				r.labName, r.i, ErrFormat, s.Label, len(r.classes)))
		}
	}
	r.i++
	return s, nil
}

// recordErr describes a failed read of record r.i of file name.
func (r *idxReader) recordErr(name, what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w (no bytes left)", ErrTruncated)
	}
	return fmt.Errorf("dataset: %s: %s %d of %d: %w", name, what, r.i, r.n, err)
}

// Close closes both files.
func (r *idxReader) Close() error {
	return errors.Join(r.images.Close(), r.labels.Close())
}

// Len returns the sample count from the images header.
func (r *idxReader) Len() int { return r.n }

// Classes returns Options.Classes, or nil: IDX files store no class names.
func (r *idxReader) Classes() []string { return r.classes }

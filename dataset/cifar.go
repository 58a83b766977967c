package dataset

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR-10 binary record geometry: one label byte, then a 32x32 image as three planes
// (red, green, blue) of 1024 bytes each.
const (
	cifarSide   = 32
	cifarPlane  = cifarSide * cifarSide
	cifarRecord = 1 + 3*cifarPlane
)

// cifar10Classes are the CIFAR-10 class names in label order, as batches.meta.txt lists them.
var cifar10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarReader streams the records of one or more CIFAR-10 batch files in turn.
type cifarReader struct {
	failed
	files     []string
	file      int       // index in files of cur
	cur       *dataFile // nil before the first file is opened
	record    int       // index of the next record in cur
	n         int
	classes   []string
	unlabeled bool
	buf       [cifarRecord]byte
	reuse     *PlanarRGB // with Options.ReuseImages, the image of every sample: buf's planes
}

// OpenCIFAR opens CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin) and reads
// them one after the other. Each file may be gzip-compressed. The images are *PlanarRGB.
// Class names come from opts.Classes, else from batches.meta.txt next to the first file,
// else they are the CIFAR-10 names. Only opts.Unlabeled, opts.Classes and opts.ReuseImages apply.
func OpenCIFAR(files []string, opts Options) (Reader, error) {
	if len(files) == 0 {
		return nil, errors.New("dataset: no CIFAR batch files given")
	}
	r := &cifarReader{files: files, unlabeled: opts.Unlabeled, classes: opts.Classes}
	if opts.ReuseImages {
		r.reuse = &PlanarRGB{Pix: r.buf[1:], Rect: image.Rect(0, 0, cifarSide, cifarSide)}
	}
	for _, name := range files {
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		if r.n >= 0 {
			r.n += int(st.Size() / cifarRecord)
		}
		if gz, err := isGzip(name); err != nil {
			return nil, err
		} else if gz {
			r.n = -1
		}
	}
	if r.unlabeled {
		r.classes = nil
	} else if r.classes == nil {
		var err error
		if r.classes, err = readCIFARMeta(filepath.Join(filepath.Dir(files[0]), "batches.meta.txt")); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Next returns the next record, moving on to the next file at the end of one.
func (r *cifarReader) Next() (Sample, error) {
	if r.err != nil {
		return Sample{}, r.err
	}
	for {
		if r.cur == nil {
			if r.file >= len(r.files) {
				return Sample{}, r.fail(io.EOF)
			}
			var err error
			if r.cur, err = openData(r.files[r.file]); err != nil {
				return Sample{}, r.fail(err)
			}
			r.record = 0
		}
		err := readRecord(r.cur, r.buf[:])
		if err == nil {
			break
		}
		if err != io.EOF {
			return Sample{}, r.fail(fmt.Errorf("dataset: %s: record %d: %w", r.files[r.file], r.record, err))
		}
		if err := r.cur.Close(); err != nil {
			return Sample{}, r.fail(err)
		}
		r.cur, r.file = nil, r.file+1
	}
	name := r.files[r.file]
	img := r.reuse // read in place
	if img == nil {
		img = NewPlanarRGB(image.Rect(0, 0, cifarSide, cifarSide))
		copy(img.Pix, r.buf[1:])
	}
	s := Sample{Image: img, Label: -1, src: name, rec: r.record + 1}
	if !r.unlabeled {
		s.Label = int(r.buf[0])
		if s.Label >= len(r.classes) {
			return Sample{}, r.fail(fmt.Errorf("dataset: %s: record %d: %w: label %d but only %d classes",
				name, r.record, ErrFormat, s.Label, len(r.classes)))
		}
	}
	r.record++
	return s, nil
}

// Close closes the file being read.
func (r *cifarReader) Close() error {
	err := r.cur.Close()
	r.cur = nil
	return err
}

// Len returns the record count from the file sizes, or -1 if a file is gzip-compressed.
// A file whose size is not a whole number of records ends in a truncated record, which
// Next reports.
func (r *cifarReader) Len() int { return r.n }

// Classes returns the class names.
func (r *cifarReader) Classes() []string { return r.classes }

// readCIFARMeta reads class names, one a line, from a batches.meta.txt file; if the file
// does not exist it returns the CIFAR-10 names.
func readCIFARMeta(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return append([]string(nil), cifar10Classes...), nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			names = append(names, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", path, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("dataset: %s: %w: no class names", path, ErrFormat)
	}
	return names, nil
}

// isGzip reports whether the file at path starts with the gzip magic bytes.
func isGzip(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	var b [2]byte
	n, _ := io.ReadFull(f, b[:])
	return n == 2 && b == gzipMagic, nil
}

// Package dataset streams labelled or unlabelled images from the dataset formats oodguard
// calibrates and evaluates on: IDX ubyte files (MNIST, Fashion-MNIST), CIFAR-10 binary
// batches, folders of JPEG and PNG files, and the same folder layouts inside a tar archive.
//
// Every Reader streams: it holds one sample (and, for folders and tar archives, the list of
// entry names) at a time, never the whole set. Readers are not safe for concurrent use.
package dataset

import (
	"errors"
	"image"
	"strconv"
)

// Sample is one image read from a dataset.
type Sample struct {
	// Image is the decoded image. It is freshly allocated for every sample and belongs to
	// the caller, unless the reader was opened with Options.ReuseImages. IDX images are
	// *image.Gray and CIFAR images *PlanarRGB; decoded JPEG and PNG files have whatever type
	// the decoder returns (*image.YCbCr, *image.Gray, ...).
	Image image.Image
	// Label is the class index into Reader.Classes, or -1 when the data is unlabelled.
	Label int
	src   string // the file or tar entry the sample came from
	rec   int    // for a record of an IDX or CIFAR file, its index + 1; else 0
}

// Name says where the sample came from, for messages: a file path, an entry of a tar archive
// ("train.tar:train/cat/0001.jpg") or a record of a file ("file[12]"). Readers of records keep
// the file and the index and format them only here, when asked.
func (s Sample) Name() string {
	if s.rec == 0 {
		return s.src
	}
	return s.src + "[" + strconv.Itoa(s.rec-1) + "]"
}

// Reader streams the samples of a dataset in a deterministic order.
type Reader interface {
	// Next returns the next sample, or io.EOF after the last one. After any other error
	// the reader is unusable and Next keeps returning that error.
	Next() (Sample, error)
	// Close releases the files the reader holds. It is safe to call more than once.
	Close() error
	// Len is the number of samples the reader yields in all, or -1 when that is not
	// known without reading the data (gzip-compressed CIFAR batches).
	Len() int
	// Classes names the labels: Classes()[s.Label] is the class of sample s. It is nil
	// when the data is unlabelled or the format stores no class names (IDX).
	Classes() []string
}

// Errors that readers wrap, so that callers can tell bad data from bad I/O with errors.Is.
var (
	// ErrFormat marks data that does not follow its format: a bad magic number or
	// dimensions, an image/label count mismatch, a label out of range.
	ErrFormat = errors.New("malformed dataset")
	// ErrTruncated marks data that ends before the number of samples its header promises.
	ErrTruncated = errors.New("truncated dataset")
	// ErrNoImages marks a folder or tar prefix that holds no image files.
	ErrNoImages = errors.New("no images found")
	// ErrDecode marks an image file that cannot be decoded as JPEG or PNG.
	ErrDecode = errors.New("cannot decode image")
)

// failed remembers the first error of a reader so that later calls to Next return it again.
type failed struct{ err error }

// fail records err (unless an error is already recorded) and returns the recorded error.
func (f *failed) fail(err error) error {
	if f.err == nil {
		f.err = err
	}
	return f.err
}

package dataset

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
)

// maxTarImageBytes bounds the size of one image entry, which is read into memory whole.
const maxTarImageBytes = 256 << 20

// tarReader streams the image entries below a prefix of a tar archive.
type tarReader struct {
	failed
	path   string
	prefix string // cleaned, "" for the whole archive
	f      *os.File
	tr     *tar.Reader
	n      int
	l      labeler
	body   []byte // reused entry buffer
}

// OpenTar opens a tar archive, gzip-compressed or not (detected from its first bytes), of
// JPEG and PNG files laid out as a folder would be (see OpenFolder and Options.Layout);
// opts.Prefix selects a folder inside it, e.g. "train" or "val/images". Non-image entries
// are skipped.
//
// Labels need the sorted set of class folders before the first image, so OpenTar makes a
// listing pass over the entry headers first: on an uncompressed archive it seeks past every
// body, reading only the headers; a compressed archive has to be decompressed in full for
// it. Next then streams the entries in archive order; nothing is extracted to disk.
func OpenTar(archive string, opts Options) (Reader, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	r := &tarReader{path: archive, prefix: cleanTarPath(opts.Prefix), f: f}
	if err := r.list(opts); err != nil {
		f.Close()
		return nil, err
	}
	if err := r.rewind(); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// list makes the listing pass: it counts the images and gathers their class folders.
func (r *tarReader) list(opts Options) error {
	if err := r.rewind(); err != nil {
		return err
	}
	var c catalog
	top := map[string]struct{}{} // top-level names, for the error message if nothing matches
	for {
		hdr, err := r.tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("dataset: %s: listing entries: %w", r.path, err)
		}
		name := cleanTarPath(hdr.Name)
		if first, _, _ := strings.Cut(name, "/"); len(top) < 20 && first != "" {
			top[first] = struct{}{}
		}
		if rel, ok := r.image(hdr, name); ok {
			c.add(rel)
		}
	}
	r.n = c.count
	where := r.path
	if r.prefix != "" {
		where = fmt.Sprintf("%s under prefix %q (top-level entries: %s)", r.path, r.prefix,
			strings.Join(slices.Sorted(maps.Keys(top)), ", "))
	}
	var err error
	r.l, err = c.labeler(opts, where)
	return err
}

// image returns the path of an entry relative to the prefix, and whether the entry is an
// image file below the prefix.
func (r *tarReader) image(hdr *tar.Header, name string) (string, bool) {
	if hdr.Typeflag != tar.TypeReg {
		return "", false
	}
	rel := name
	if r.prefix != "" {
		var ok bool
		if rel, ok = strings.CutPrefix(name, r.prefix+"/"); !ok {
			return "", false
		}
	}
	return rel, isImagePath(rel)
}

// rewind starts reading the archive from its beginning. An uncompressed archive is read
// straight from the file, so that tar.Reader seeks past the bodies it skips.
func (r *tarReader) rewind() error {
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	var magic [2]byte
	n, _ := io.ReadFull(r.f, magic[:])
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	if n < 2 || magic != gzipMagic {
		r.tr = tar.NewReader(r.f)
		return nil
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(r.f, 256<<10))
	if err != nil {
		return fmt.Errorf("dataset: %s: %w", r.path, err)
	}
	r.tr = tar.NewReader(gz)
	return nil
}

// Next decodes the next image entry.
func (r *tarReader) Next() (Sample, error) {
	if r.err != nil {
		return Sample{}, r.err
	}
	for {
		hdr, err := r.tr.Next()
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("dataset: %s: %w", r.path, err)
			}
			return Sample{}, r.fail(err)
		}
		name := cleanTarPath(hdr.Name)
		rel, ok := r.image(hdr, name)
		if !ok {
			continue
		}
		sampleName := r.path + ":" + hdr.Name
		label, err := r.l.label(rel)
		if err != nil {
			return Sample{}, r.fail(fmt.Errorf("dataset: %s: %w", sampleName, err))
		}
		if hdr.Size > maxTarImageBytes {
			return Sample{}, r.fail(fmt.Errorf("dataset: %s: %w: entry of %d bytes is too large for an image", sampleName, ErrFormat, hdr.Size))
		}
		r.body = slices.Grow(r.body[:0], int(hdr.Size))[:hdr.Size]
		if _, err := io.ReadFull(r.tr, r.body); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = ErrTruncated
			}
			return Sample{}, r.fail(fmt.Errorf("dataset: %s: %w", sampleName, err))
		}
		img, err := decodeImage(bytes.NewReader(r.body), sampleName)
		if err != nil {
			return Sample{}, r.fail(err)
		}
		return Sample{Image: img, Label: label, src: sampleName}, nil
	}
}

// Close closes the archive.
func (r *tarReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Len returns the number of image entries found by the listing pass.
func (r *tarReader) Len() int { return r.n }

// Classes returns the class folder names, or nil for a flat layout.
func (r *tarReader) Classes() []string { return r.l.classes }

// cleanTarPath normalises an entry name or prefix: slash separated, without a leading "./"
// or "/" and without a trailing "/"; the root is "".
func cleanTarPath(p string) string {
	return path.Clean("/" + p)[1:]
}

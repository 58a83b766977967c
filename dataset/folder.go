package dataset

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// folderReader streams the image files below a root folder.
type folderReader struct {
	failed
	root  string
	files []string // relative slash paths, in filepath.WalkDir order
	next  int
	l     labeler
	buf   *bufio.Reader
}

// OpenFolder opens a folder of JPEG and PNG files (see Options.Layout for how they are
// labelled), or its sub-folder opts.Prefix; dir may also be one image file, read as a flat
// folder of one. It lists the file names once, walking the tree in lexical order
// (filepath.WalkDir), and then decodes one file per call to Next. Other files, and files and
// folders whose names start with ".", are ignored.
func OpenFolder(dir string, opts Options) (Reader, error) {
	root := dir
	if p := strings.Trim(opts.Prefix, "/"); p != "" {
		root = filepath.Join(dir, filepath.FromSlash(p))
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return openImageFile(dir, opts)
	}
	r := &folderReader{root: root}
	var c catalog
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); isImagePath(rel) {
			r.files = append(r.files, rel)
			c.add(rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if r.l, err = c.labeler(opts, root); err != nil {
		return nil, err
	}
	return r, nil
}

// openImageFile opens a single image file as a flat folder that holds it alone.
func openImageFile(path string, opts Options) (Reader, error) {
	switch {
	case opts.Prefix != "":
		return nil, fmt.Errorf("dataset: %s is an image file, which has no folders: drop the prefix %q", path, opts.Prefix)
	case !isImagePath(filepath.Base(path)):
		return nil, fmt.Errorf("dataset: %s is neither a folder nor a .jpg, .jpeg or .png file", path)
	case opts.Layout == LayoutClasses && !opts.Unlabeled:
		return nil, fmt.Errorf("dataset: %s is a single image file: it has no class folder to label it with", path)
	}
	// A flat layout: the image is unlabelled (Label -1), as an image directly in a folder's
	// root is.
	return &folderReader{root: filepath.Dir(path), files: []string{filepath.Base(path)}}, nil
}

// Next decodes the next image file.
func (r *folderReader) Next() (Sample, error) {
	if r.err != nil {
		return Sample{}, r.err
	}
	if r.next >= len(r.files) {
		return Sample{}, r.fail(io.EOF)
	}
	rel := r.files[r.next]
	name := filepath.Join(r.root, filepath.FromSlash(rel))
	label, err := r.l.label(rel)
	if err != nil {
		return Sample{}, r.fail(fmt.Errorf("dataset: %s: %w", name, err))
	}
	f, err := os.Open(name)
	if err != nil {
		return Sample{}, r.fail(fmt.Errorf("dataset: %w", err))
	}
	defer f.Close()
	if r.buf == nil {
		r.buf = bufio.NewReaderSize(f, 64<<10)
	} else {
		r.buf.Reset(f)
	}
	img, err := decodeImage(r.buf, name)
	if err != nil {
		return Sample{}, r.fail(err)
	}
	r.next++
	return Sample{Image: img, Label: label, src: name}, nil
}

// skip passes over the next image file without opening it (RandomSubset).
func (r *folderReader) skip() error {
	if r.err != nil {
		return r.err
	}
	if r.next >= len(r.files) {
		return r.fail(io.EOF)
	}
	r.next++
	return nil
}

// Close does nothing: files are closed as soon as they are decoded.
func (r *folderReader) Close() error { return nil }

// Len returns the number of image files listed.
func (r *folderReader) Len() int { return len(r.files) }

// Classes returns the class folder names, or nil for a flat folder.
func (r *folderReader) Classes() []string { return r.l.classes }

package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Format names a dataset format.
type Format string

// The formats Open reads.
const (
	FormatAuto   Format = ""       // pick the format from the path
	FormatIDX    Format = "idx"    // IDX ubyte images (idx3), optional labels (idx1), gzip or not
	FormatCIFAR  Format = "cifar"  // CIFAR-10 binary batches
	FormatFolder Format = "folder" // a folder of JPEG and PNG files
	FormatTar    Format = "tar"    // a tar archive (gzip or not) of JPEG and PNG files
)

// Layout says how image files in a folder or tar archive are labelled.
type Layout string

// Folder layouts.
const (
	// LayoutAuto is LayoutFlat when an image lies directly in the root folder (or directly
	// under the tar prefix), LayoutClasses otherwise.
	LayoutAuto Layout = ""
	// LayoutClasses labels each image with its class folder: the first path component
	// below the root. Images directly in the root are an error.
	LayoutClasses Layout = "classes"
	// LayoutFlat reads every image below the root, unlabelled (Label -1).
	LayoutFlat Layout = "flat"
)

// Options tune Open. The zero value picks everything from the path.
type Options struct {
	// Format forces a format; FormatAuto picks it from the path (see Open).
	Format Format
	// Prefix selects a sub-folder, slash separated, of a folder or tar archive, e.g.
	// "val/images" or "train". Empty means the root.
	Prefix string
	// Layout says how folder and tar images are labelled.
	Layout Layout
	// Labels is the IDX labels file (idx1). When empty, Open uses the file next to the
	// images file whose name has "labels-idx1" (or "labels.idx1") in place of
	// "images-idx3" (or "images.idx3"), if that file exists.
	Labels string
	// Unlabeled ignores any labels: every sample has Label -1 and Classes is nil.
	Unlabeled bool
	// Classes names the classes. For folders and tar archives it fixes the label order:
	// a label is the index of the class folder in Classes, and a class folder not in it
	// is an error (use it to give a test split the label order of its training split).
	// For IDX and CIFAR it names the labels, and a label >= len(Classes) is an error.
	// When nil, folder classes are the sorted folder names, CIFAR classes come from
	// batches.meta.txt next to the first batch (or are the CIFAR-10 names), and IDX
	// classes are nil.
	Classes []string
	// ReuseImages lets the IDX and CIFAR readers decode every sample into one image of
	// their own, overwritten by the next call to Next, instead of allocating one per
	// sample. For callers that are done with a sample before they ask for the next, as
	// scoring is: a fresh image per sample costs more than its decoding (the new memory is
	// not in cache). Folder and tar readers allocate regardless.
	ReuseImages bool
}

// Open opens the dataset at path. With FormatAuto the format follows from the path:
//
//   - a directory is a folder of images (FormatFolder), and a single .jpg, .jpeg or .png file
//     a folder of that one image;
//   - a name ending in .tar, .tar.gz or .tgz is a tar archive (FormatTar);
//   - a name containing "idx3" (e.g. train-images-idx3-ubyte.gz) is an IDX images file;
//   - a name ending in .bin is a CIFAR-10 batch. A glob pattern such as
//     "cifar-10-batches-bin/data_batch_*.bin" reads every matching batch in sorted order.
func Open(path string, opts Options) (Reader, error) {
	paths := []string{path}
	if strings.ContainsAny(path, "*?[") {
		m, err := filepath.Glob(path)
		if err != nil {
			return nil, fmt.Errorf("dataset: bad pattern %q: %w", path, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("dataset: no file matches %q", path)
		}
		paths = m // sorted by filepath.Glob
	}
	f := opts.Format
	if f == FormatAuto {
		var err error
		if f, err = detectFormat(paths[0]); err != nil {
			return nil, err
		}
	}
	if len(paths) > 1 && f != FormatCIFAR {
		return nil, fmt.Errorf("dataset: %q matches %d files; only CIFAR batches can be read from several files", path, len(paths))
	}
	if (f == FormatIDX || f == FormatCIFAR) && opts.Prefix != "" {
		return nil, fmt.Errorf("dataset: %s is an %s file, which has no folders: drop the prefix %q (PATH#PREFIX selects a folder of a tar archive or of a folder)", paths[0], f, opts.Prefix)
	}
	switch f {
	case FormatIDX:
		labels := opts.Labels
		if labels == "" && !opts.Unlabeled {
			labels = siblingLabels(paths[0])
		}
		return OpenIDX(paths[0], labels, opts)
	case FormatCIFAR:
		return OpenCIFAR(paths, opts)
	case FormatFolder:
		return OpenFolder(paths[0], opts)
	case FormatTar:
		return OpenTar(paths[0], opts)
	}
	return nil, fmt.Errorf("dataset: unknown format %q", f)
}

// detectFormat picks a format from a path's name, or from its being a directory.
func detectFormat(path string) (Format, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("dataset: %w", err)
	}
	if st.IsDir() {
		return FormatFolder, nil
	}
	name := strings.ToLower(filepath.Base(path))
	switch {
	case isImagePath(name):
		return FormatFolder, nil // a single image file: OpenFolder reads it as a folder of one
	case strings.HasSuffix(name, ".tar"), strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return FormatTar, nil
	case strings.Contains(name, "idx3"):
		return FormatIDX, nil
	case strings.Contains(name, "idx1"):
		return "", fmt.Errorf("dataset: %s is an IDX labels file; open the images file (idx3) instead", path)
	case strings.HasSuffix(name, ".bin"), strings.HasSuffix(name, ".bin.gz"):
		return FormatCIFAR, nil
	}
	return "", fmt.Errorf("dataset: cannot tell the format of %s from its name; set Options.Format", path)
}

// siblingLabels returns the labels file that belongs to an IDX images file, or "" if it
// does not exist.
func siblingLabels(images string) string {
	dir, base := filepath.Split(images)
	for _, sep := range []string{"-", "."} {
		from, to := "images"+sep+"idx3", "labels"+sep+"idx1"
		if strings.Contains(base, from) {
			p := filepath.Join(dir, strings.Replace(base, from, to, 1))
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
		}
	}
	return ""
}

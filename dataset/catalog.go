package dataset

import (
	"fmt"
	"image"
	"io"
	"path"
	"slices"
	"strings"

	_ "image/jpeg" // register the decoders that image.Decode uses
	_ "image/png"
)

// isImagePath reports whether a slash-separated relative path names an image file that
// folders and tar archives yield: its extension is .jpg, .jpeg or .png (any case) and no
// component starts with "." (hidden files such as macOS "._x.jpg" resource forks).
func isImagePath(rel string) bool {
	switch strings.ToLower(path.Ext(rel)) {
	case ".jpg", ".jpeg", ".png":
	default:
		return false
	}
	for c := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(c, ".") {
			return false
		}
	}
	return true
}

// catalog gathers what labelling needs to know about the images below a root, from their
// relative slash-separated paths: how many there are and which class folders hold them.
type catalog struct {
	count     int
	rootImage string              // an image directly in the root, if any
	folders   map[string]struct{} // first path components of images not in the root
}

// add records one image path.
func (c *catalog) add(rel string) {
	c.count++
	folder, _, nested := strings.Cut(rel, "/")
	if !nested {
		if c.rootImage == "" {
			c.rootImage = rel
		}
		return
	}
	if c.folders == nil {
		c.folders = make(map[string]struct{})
	}
	c.folders[folder] = struct{}{}
}

// labeler maps the relative path of an image to its label.
type labeler struct {
	classes []string       // nil for flat layouts
	index   map[string]int // class folder name -> label
}

// labeler decides the layout and the class list. where names the root for error messages.
func (c *catalog) labeler(opts Options, where string) (labeler, error) {
	if c.count == 0 {
		return labeler{}, fmt.Errorf("dataset: %s: %w (.jpg, .jpeg or .png)", where, ErrNoImages)
	}
	layout := opts.Layout
	switch {
	case opts.Unlabeled:
		layout = LayoutFlat
	case layout == LayoutAuto && c.rootImage != "":
		layout = LayoutFlat
	case layout == LayoutAuto:
		layout = LayoutClasses
	}
	switch layout {
	case LayoutFlat:
		return labeler{}, nil
	case LayoutClasses:
	default:
		return labeler{}, fmt.Errorf("dataset: unknown layout %q", layout)
	}
	if c.rootImage != "" {
		return labeler{}, fmt.Errorf("dataset: %s: %w: image %s is not inside a class folder", where, ErrFormat, c.rootImage)
	}
	l := labeler{classes: opts.Classes, index: make(map[string]int)}
	if l.classes == nil {
		for name := range c.folders {
			l.classes = append(l.classes, name)
		}
		slices.Sort(l.classes)
	}
	for i, name := range l.classes {
		l.index[name] = i
	}
	for name := range c.folders {
		if _, ok := l.index[name]; !ok {
			return labeler{}, fmt.Errorf("dataset: %s: %w: class folder %q is not in Options.Classes", where, ErrFormat, name)
		}
	}
	return l, nil
}

// label returns the label of the image at rel, -1 in a flat layout.
func (l labeler) label(rel string) (int, error) {
	if l.index == nil {
		return -1, nil
	}
	folder, _, _ := strings.Cut(rel, "/")
	i, ok := l.index[folder]
	if !ok {
		return 0, fmt.Errorf("%w: class folder %q appeared after listing", ErrFormat, folder)
	}
	return i, nil
}

// decodeImage decodes a JPEG or PNG image; name is the file for the error message.
func decodeImage(r io.Reader, name string) (image.Image, error) {
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w: %w", name, ErrDecode, err)
	}
	return img, nil
}

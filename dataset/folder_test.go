package dataset

import (
	"errors"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// folderFixture writes class folders "dog" and "cat" (in that order, so that sorting shows)
// with PNG and JPEG files, plus files that must be ignored.
func folderFixture(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "dog/b.png", pngBytes(t, grayImage(2, 2, 50)))
	writeFile(t, dir, "dog/a.JPEG", jpegBytes(t, 3, 2))
	writeFile(t, dir, "cat/z.jpg", jpegBytes(t, 4, 4))
	writeFile(t, dir, "cat/notes.txt", []byte("not an image"))
	writeFile(t, dir, "cat/._z.jpg", []byte("macOS resource fork"))
	writeFile(t, dir, ".hidden/x.png", []byte("ignored"))
	return dir
}

func TestFolderClasses(t *testing.T) {
	dir := folderFixture(t)
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Classes(), []string{"cat", "dog"}) || r.Len() != 3 {
		t.Fatalf("Classes %v Len %d, want [cat dog] and 3", r.Classes(), r.Len())
	}
	got := readAll(t, r)
	want := []struct {
		name  string
		label int
		size  image.Point
	}{{"cat/z.jpg", 0, image.Pt(4, 4)}, {"dog/a.JPEG", 1, image.Pt(3, 2)}, {"dog/b.png", 1, image.Pt(2, 2)}}
	if len(got) != len(want) {
		t.Fatalf("read %d samples, want %d", len(got), len(want))
	}
	for i, w := range want {
		s := got[i]
		if s.Name() != filepath.Join(dir, w.name) || s.Label != w.label || s.Image.Bounds().Size() != w.size {
			t.Errorf("sample %d = %s label %d size %v; want %s label %d size %v",
				i, s.Name(), s.Label, s.Image.Bounds().Size(), w.name, w.label, w.size)
		}
	}
	if g, ok := got[2].Image.(*image.Gray); !ok || g.Pix[3] != 53 {
		t.Errorf("PNG decoded as %T, want the gray fixture", got[2].Image)
	}
}

func TestFolderFlatAndPrefix(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "val/images/val_1.JPEG", jpegBytes(t, 2, 2))
	writeFile(t, dir, "val/images/val_0.png", pngBytes(t, grayImage(1, 1, 0)))
	writeFile(t, dir, "val/val_annotations.txt", []byte("x"))
	r, err := Open(dir, Options{Prefix: "val/images"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Classes() != nil || r.Len() != 2 {
		t.Fatalf("Classes %v Len %d, want nil and 2", r.Classes(), r.Len())
	}
	got := readAll(t, r)
	if got[0].Label != -1 || !strings.HasSuffix(got[0].Name(), "val_0.png") || !strings.HasSuffix(got[1].Name(), "val_1.JPEG") {
		t.Errorf("got %s (label %d), %s; want val_0.png unlabelled, then val_1.JPEG", got[0].Name(), got[0].Label, got[1].Name())
	}
}

func TestFolderClassesOption(t *testing.T) {
	dir := folderFixture(t)
	r, err := Open(dir, Options{Classes: []string{"dog", "bird", "cat"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); got[0].Label != 2 || got[1].Label != 0 {
		t.Errorf("labels %d %d, want 2 (cat) and 0 (dog)", got[0].Label, got[1].Label)
	}
	if _, err := Open(dir, Options{Classes: []string{"dog"}}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"cat"`) {
		t.Errorf("Open with a missing class = %v, want ErrFormat naming cat", err)
	}
}

func TestFolderErrors(t *testing.T) {
	empty := t.TempDir()
	writeFile(t, empty, "sub/readme.txt", []byte("x"))
	if _, err := Open(empty, Options{}); !errors.Is(err, ErrNoImages) || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty folder: %v, want ErrNoImages naming it", err)
	}

	mixed := t.TempDir()
	writeFile(t, mixed, "root.png", pngBytes(t, grayImage(1, 1, 0)))
	writeFile(t, mixed, "cls/a.png", pngBytes(t, grayImage(1, 1, 0)))
	if _, err := Open(mixed, Options{Layout: LayoutClasses}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "root.png") {
		t.Errorf("image outside class folders: %v, want ErrFormat naming root.png", err)
	}

	corrupt := folderFixture(t)
	bad := writeFile(t, corrupt, "cat/y.jpg", corruptJPEG)
	r, err := Open(corrupt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := readUntilErr(r)
	if n != 0 || !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), bad) {
		t.Errorf("read %d then %v; want 0 then ErrDecode naming %s", n, err, bad)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("Next after a failure = %v, want the same error again", err2)
	}
}

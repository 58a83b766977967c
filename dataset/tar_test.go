package dataset

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// trainTar returns the entries of an archive with train/ and test/ class folders, the
// classes out of order, and entries the reader must skip.
func trainTar(t *testing.T) []tarEntry {
	return []tarEntry{
		{"train/", nil},
		{"train/ship/", nil},
		{"train/ship/0002.jpg", jpegBytes(t, 4, 4)},
		{"train/ship/0001.jpg", jpegBytes(t, 4, 4)},
		{"train/bird/0001.png", pngBytes(t, grayImage(2, 2, 0))},
		{"train/bird/notes.txt", []byte("skip me")},
		{"train/bird/._0001.png", []byte("macOS resource fork")},
		{"test/cat/0001.jpg", jpegBytes(t, 4, 4)},
		{"./train/airplane/0001.jpg", jpegBytes(t, 4, 4)},
	}
}

func TestTarClasses(t *testing.T) {
	for _, gz := range []bool{false, true} {
		name := "train.tar"
		if gz {
			name = "train.tar.gz"
		}
		p := writeTar(t, t.TempDir(), name, trainTar(t), gz)
		r, err := Open(p, Options{Prefix: "train"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Classes(), []string{"airplane", "bird", "ship"}) || r.Len() != 4 {
			t.Fatalf("gz=%v: Classes %v Len %d; want [airplane bird ship] and 4", gz, r.Classes(), r.Len())
		}
		got := readAll(t, r)
		var names []string
		var labels []int
		for _, s := range got {
			names = append(names, strings.TrimPrefix(s.Name(), p+":"))
			labels = append(labels, s.Label)
		}
		// Archive order; labels follow the sorted class names.
		if want := []string{"train/ship/0002.jpg", "train/ship/0001.jpg", "train/bird/0001.png", "./train/airplane/0001.jpg"}; !slices.Equal(names, want) {
			t.Errorf("gz=%v: names %v, want %v", gz, names, want)
		}
		if want := []int{2, 2, 1, 0}; !slices.Equal(labels, want) {
			t.Errorf("gz=%v: labels %v, want %v", gz, labels, want)
		}
	}
}

func TestTarFlat(t *testing.T) {
	p := writeTar(t, t.TempDir(), "val.tar", []tarEntry{
		{"val/images/val_1.JPEG", jpegBytes(t, 8, 8)},
		{"val/val_annotations.txt", []byte("val_1.JPEG\tn01443537\n")},
		{"val/images/val_0.JPEG", jpegBytes(t, 8, 8)},
		{"wnids.txt", []byte("n01443537\n")},
	}, false)
	r, err := Open(p, Options{Prefix: "val/images/"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || r.Classes() != nil {
		t.Fatalf("Len %d Classes %v, want 2 and nil", r.Len(), r.Classes())
	}
	for _, s := range readAll(t, r) {
		if s.Label != -1 || s.Image.Bounds().Dx() != 8 {
			t.Errorf("%s: label %d size %v, want -1 and 8x8", s.Name(), s.Label, s.Image.Bounds())
		}
	}
	// The whole archive, with Limit.
	r, err = Open(p, Options{Layout: LayoutFlat})
	if err != nil {
		t.Fatal(err)
	}
	if l := Limit(r, 1); l.Len() != 1 || len(readAll(t, l)) != 1 {
		t.Errorf("Limit(r, 1) did not yield exactly 1 sample")
	}
}

func TestTarErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeTar(t, dir, "a.tar", trainTar(t), false)
	if _, err := Open(p, Options{Prefix: "val"}); !errors.Is(err, ErrNoImages) || !strings.Contains(err.Error(), "test, train") {
		t.Errorf("missing prefix: %v, want ErrNoImages listing the top-level entries", err)
	}
	empty := writeTar(t, dir, "empty.tar", []tarEntry{{"readme.txt", []byte("x")}}, false)
	if _, err := Open(empty, Options{}); !errors.Is(err, ErrNoImages) {
		t.Errorf("archive without images: %v, want ErrNoImages", err)
	}
	whole := writeTar(t, dir, "whole.tar", trainTar(t), false)
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	cut := writeFile(t, dir, "cut.tar", data[:len(data)/2])
	if _, err := Open(cut, Options{}); err == nil || !strings.Contains(err.Error(), cut) {
		t.Errorf("truncated archive: %v, want an error naming it", err)
	}
	bad := writeTar(t, dir, "bad.tar", []tarEntry{
		{"train/cat/0001.jpg", jpegBytes(t, 4, 4)},
		{"train/cat/0002.jpg", corruptJPEG},
	}, false)
	r, err := Open(bad, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := readUntilErr(r)
	if n != 1 || !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), bad+":train/cat/0002.jpg") {
		t.Errorf("read %d then %v; want 1 then ErrDecode naming the entry", n, err)
	}
}

package dataset

import (
	"bytes"
	"errors"
	"image"
	"io"
	"slices"
	"strings"
	"testing"
)

// idxFixture writes 3 images of 2x3 pixels and their labels; it returns the paths.
func idxFixture(t *testing.T, gz bool) (images, labels string) {
	t.Helper()
	dir := t.TempDir()
	pix := make([]byte, 3*6)
	for i := range pix {
		pix[i] = byte(i)
	}
	img, lab := idxBytes([]int{3, 2, 3}, pix), idxBytes([]int{3}, []byte{7, 0, 9})
	suffix := ""
	if gz {
		img, lab, suffix = gzipBytes(t, img), gzipBytes(t, lab), ".gz"
	}
	return writeFile(t, dir, "train-images-idx3-ubyte"+suffix, img), writeFile(t, dir, "train-labels-idx1-ubyte"+suffix, lab)
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		images, _ := idxFixture(t, gz)
		r, err := Open(images, Options{}) // finds the labels file next to the images
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != 3 || r.Classes() != nil {
			t.Errorf("gz=%v: Len %d Classes %v, want 3 and nil", gz, r.Len(), r.Classes())
		}
		got := readAll(t, r)
		if len(got) != 3 {
			t.Fatalf("gz=%v: read %d samples, want 3", gz, len(got))
		}
		for i, s := range got {
			g, ok := s.Image.(*image.Gray)
			if !ok || g.Bounds() != image.Rect(0, 0, 3, 2) {
				t.Fatalf("gz=%v: sample %d is %T %v, want 3x2 *image.Gray", gz, i, s.Image, s.Image.Bounds())
			}
			if want := []byte{byte(6 * i), byte(6*i + 1), byte(6*i + 2)}; !bytes.Equal(g.Pix[:3], want) {
				t.Errorf("gz=%v: sample %d first row %v, want %v", gz, i, g.Pix[:3], want)
			}
			if g.GrayAt(2, 1).Y != byte(6*i+5) {
				t.Errorf("gz=%v: sample %d pixel (2,1) = %d, want %d", gz, i, g.GrayAt(2, 1).Y, 6*i+5)
			}
		}
		if labels := []int{got[0].Label, got[1].Label, got[2].Label}; !slices.Equal(labels, []int{7, 0, 9}) {
			t.Errorf("gz=%v: labels %v, want [7 0 9]", gz, labels)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("Next after the end = %v, want io.EOF", err)
		}
	}
}

func TestIDXUnlabeled(t *testing.T) {
	images, _ := idxFixture(t, false)
	r, err := Open(images, Options{Unlabeled: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range readAll(t, r) {
		if s.Label != -1 {
			t.Fatalf("label %d, want -1", s.Label)
		}
	}
}

func TestIDXTruncated(t *testing.T) {
	dir := t.TempDir()
	// The header promises 3 images of 4 pixels; the data stops inside image 2.
	images := writeFile(t, dir, "x-images-idx3-ubyte.gz", gzipBytes(t, idxBytes([]int{3, 2, 2}, make([]byte, 10))))
	r, err := OpenIDX(images, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := readUntilErr(r)
	if n != 2 || !errors.Is(err, ErrTruncated) {
		t.Fatalf("read %d samples then %v; want 2 then ErrTruncated", n, err)
	}
	for _, want := range []string{images, "image 2 of 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestIDXLabelsTruncated(t *testing.T) {
	dir := t.TempDir()
	images := writeFile(t, dir, "images", idxBytes([]int{2, 1, 1}, []byte{1, 2}))
	labels := writeFile(t, dir, "labels", idxBytes([]int{2}, []byte{1}))
	r, err := OpenIDX(images, labels, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := readUntilErr(r)
	if n != 1 || !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), labels+": label 1 of 2") {
		t.Fatalf("read %d samples then %v; want 1 then a truncation naming %s and label 1", n, err, labels)
	}
}

func TestIDXCountMismatch(t *testing.T) {
	dir := t.TempDir()
	images := writeFile(t, dir, "a-images-idx3-ubyte", idxBytes([]int{2, 1, 1}, []byte{1, 2}))
	labels := writeFile(t, dir, "a-labels-idx1-ubyte", idxBytes([]int{3}, []byte{1, 2, 3}))
	_, err := Open(images, Options{})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), images) || !strings.Contains(err.Error(), labels) {
		t.Fatalf("Open = %v; want ErrFormat naming %s and %s", err, images, labels)
	}
}

func TestIDXBadHeader(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"bad-magic", []byte{1, 2, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0}, ErrFormat},
		{"labels-as-images", idxBytes([]int{1}, []byte{1}), ErrFormat},
		{"int32-type", []byte{0, 0, idxInt32, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1}, ErrFormat},
		{"zero-rows", idxBytes([]int{1, 0, 2}, nil), ErrFormat},
		{"short-header", []byte{0, 0, 8, 3, 0, 0}, ErrTruncated},
		{"empty", nil, ErrTruncated},
	} {
		p := writeFile(t, dir, tc.name, tc.data)
		_, err := OpenIDX(p, "", Options{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: OpenIDX = %v; want %v naming the file", tc.name, err, tc.want)
		}
	}
}

func TestIDXLabelOutOfRange(t *testing.T) {
	images, labels := idxFixture(t, false)
	r, err := OpenIDX(images, labels, Options{Classes: []string{"a", "b", "c", "d", "e", "f", "g", "h"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := readUntilErr(r)
	if n != 2 || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "label 2") {
		t.Fatalf("read %d then %v; want 2 then ErrFormat for label 2", n, err)
	}
}

func FuzzIDXHeader(f *testing.F) {
	f.Add(idxBytes([]int{60000, 28, 28}, nil))
	f.Add(idxBytes([]int{10}, nil))
	f.Add([]byte{0, 0, 8, 4, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0x0d, 2, 0, 0, 0, 1, 0x80, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseIDXHeader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("error %v is neither ErrFormat nor ErrTruncated", err)
			}
			return
		}
		if len(h.Dims) < 1 || len(h.Dims) > maxIDXDims || h.size() > len(data) {
			t.Fatalf("header %+v does not fit %d bytes", h, len(data))
		}
		if n := h.sampleBytes(); n < 1 || n > maxIDXSampleBytes {
			t.Fatalf("sample of %d bytes accepted", n)
		}
		// The parsed header re-encodes to the bytes it was read from.
		if data[2] != h.Type || int(data[3]) != len(h.Dims) || !bytes.Equal(idxBytes(h.Dims, nil)[4:], data[4:h.size()]) {
			t.Fatalf("header %+v does not round-trip %x", h, data[:h.size()])
		}
	})
}

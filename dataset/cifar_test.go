package dataset

import (
	"errors"
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"testing"
)

// cifarRecordBytes returns a record with the given label whose red, green and blue planes
// are filled with r, g and b, except pixel (1, 0) which is (1, 2, 3).
func cifarRecordBytes(label, r, g, b byte) []byte {
	rec := make([]byte, cifarRecord)
	rec[0] = label
	for i, v := range []byte{r, g, b} {
		plane := rec[1+i*cifarPlane : 1+(i+1)*cifarPlane]
		for j := range plane {
			plane[j] = v
		}
		plane[1] = byte(i + 1)
	}
	return rec
}

func TestCIFAR(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "data_batch_1.bin", append(cifarRecordBytes(3, 10, 20, 30), cifarRecordBytes(9, 40, 50, 60)...))
	writeFile(t, dir, "data_batch_2.bin", gzipBytes(t, cifarRecordBytes(0, 70, 80, 90)))
	writeFile(t, dir, "test_batch.bin", cifarRecordBytes(1, 0, 0, 0)) // not matched below
	r, err := Open(filepath.Join(dir, "data_batch_*.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != -1 { // a gzip batch hides its record count
		t.Errorf("Len = %d, want -1", r.Len())
	}
	if c := r.Classes(); len(c) != 10 || c[3] != "cat" {
		t.Errorf("Classes = %v, want the CIFAR-10 names", c)
	}
	got := readAll(t, r)
	if len(got) != 3 {
		t.Fatalf("read %d samples, want 3", len(got))
	}
	for i, want := range []struct {
		label   int
		r, g, b uint8
	}{{3, 10, 20, 30}, {9, 40, 50, 60}, {0, 70, 80, 90}} {
		s := got[i]
		img, ok := s.Image.(*PlanarRGB)
		if !ok || img.Bounds() != image.Rect(0, 0, 32, 32) {
			t.Fatalf("sample %d is %T, want 32x32 *PlanarRGB", i, s.Image)
		}
		if s.Label != want.label {
			t.Errorf("sample %d label %d, want %d", i, s.Label, want.label)
		}
		if c := img.At(5, 7); c != (color.RGBA{want.r, want.g, want.b, 255}) {
			t.Errorf("sample %d pixel (5,7) = %v, want %v", i, c, want)
		}
		if c := img.At(1, 0); c != (color.RGBA{1, 2, 3, 255}) {
			t.Errorf("sample %d pixel (1,0) = %v, want {1 2 3 255}", i, c)
		}
	}
	if want := filepath.Join(dir, "data_batch_2.bin") + "[0]"; got[2].Name() != want {
		t.Errorf("sample name %q, want %q", got[2].Name(), want)
	}
}

func TestCIFARMeta(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "test_batch.bin", append(cifarRecordBytes(1, 0, 0, 0), cifarRecordBytes(2, 0, 0, 0)...))
	writeFile(t, dir, "batches.meta.txt", []byte("a\nb\n\n"))
	r, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || len(r.Classes()) != 2 {
		t.Fatalf("Len %d Classes %v, want 2 and [a b]", r.Len(), r.Classes())
	}
	n, err := readUntilErr(r)
	if n != 1 || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), p+": record 1") {
		t.Fatalf("read %d then %v; want 1 then ErrFormat naming %s record 1", n, err, p)
	}
}

func TestCIFARTruncated(t *testing.T) {
	dir := t.TempDir()
	first := writeFile(t, dir, "data_batch_1.bin", cifarRecordBytes(1, 0, 0, 0))
	second := writeFile(t, dir, "data_batch_2.bin", append(cifarRecordBytes(1, 0, 0, 0), cifarRecordBytes(2, 0, 0, 0)[:100]...))
	r, err := OpenCIFAR([]string{first, second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := readUntilErr(r)
	if n != 2 || !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), second+": record 1") {
		t.Fatalf("read %d then %v; want 2 then ErrTruncated naming %s record 1", n, err, second)
	}
}

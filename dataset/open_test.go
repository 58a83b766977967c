package dataset

import (
	"bytes"
	"errors"
	"image"
	"io"
	"strings"
	"testing"
)

func TestOpenDetect(t *testing.T) {
	dir := t.TempDir()
	labels := writeFile(t, dir, "t10k-labels-idx1-ubyte", idxBytes([]int{1}, []byte{0}))
	if _, err := Open(labels, Options{}); err == nil || !strings.Contains(err.Error(), "labels file") {
		t.Errorf("Open(labels) = %v, want an error pointing at the images file", err)
	}
	other := writeFile(t, dir, "data.csv", []byte("1,2"))
	if _, err := Open(other, Options{}); err == nil || !strings.Contains(err.Error(), "Options.Format") {
		t.Errorf("Open(csv) = %v, want an error asking for Options.Format", err)
	}
	if _, err := Open(dir+"/*.nothing", Options{}); err == nil {
		t.Error("Open of a pattern matching nothing succeeded")
	}
	raw := writeFile(t, dir, "images.raw", idxBytes([]int{1, 1, 1}, []byte{5}))
	r, err := Open(raw, Options{Format: FormatIDX})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); len(got) != 1 || got[0].Label != -1 {
		t.Errorf("forced IDX read %v", got)
	}
}

func TestLimit(t *testing.T) {
	images, _ := idxFixture(t, false)
	r, err := Open(images, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := Limit(r, 2)
	if l.Len() != 2 {
		t.Errorf("Len = %d, want 2", l.Len())
	}
	if got := readAll(t, l); len(got) != 2 || got[1].Label != 0 {
		t.Errorf("Limit read %d samples", len(got))
	}
	if _, err := l.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the limit = %v, want io.EOF", err)
	}
	r, _ = Open(images, Options{})
	if l := Limit(r, 10); l.Len() != 3 || len(readAll(t, l)) != 3 {
		t.Error("Limit above Len did not yield every sample")
	}
}

// TestReuseImages reads IDX and CIFAR data with and without Options.ReuseImages: the pixels
// of every sample agree, and only the reusing readers hand out the same image each time.
func TestReuseImages(t *testing.T) {
	images, labels := idxFixture(t, false)
	cifar := cifarFixture(t)
	for _, c := range []struct {
		name string
		open func(Options) (Reader, error)
	}{
		{"idx", func(o Options) (Reader, error) { return OpenIDX(images, labels, o) }},
		{"cifar", func(o Options) (Reader, error) { return OpenCIFAR([]string{cifar}, o) }},
	} {
		fresh, err := c.open(Options{})
		if err != nil {
			t.Fatal(err)
		}
		reusing, err := c.open(Options{ReuseImages: true})
		if err != nil {
			t.Fatal(err)
		}
		var first, prev image.Image
		n := 0
		for ; ; n++ {
			a, errA := fresh.Next()
			b, errB := reusing.Next()
			if errA != nil || errB != nil {
				if !errors.Is(errA, io.EOF) || !errors.Is(errB, io.EOF) {
					t.Fatalf("%s: sample %d: %v, %v", c.name, n, errA, errB)
				}
				break
			}
			if !bytes.Equal(pixels(a.Image), pixels(b.Image)) || a.Label != b.Label || a.Name() != b.Name() {
				t.Errorf("%s: sample %d differs with ReuseImages", c.name, n)
			}
			if n == 0 {
				first = b.Image
			} else if b.Image != first || a.Image == prev {
				t.Errorf("%s: sample %d: reusing reader gave a new image, or fresh reader an old one", c.name, n)
			}
			prev = a.Image
		}
		if n < 2 {
			t.Fatalf("%s: only %d samples", c.name, n)
		}
		fresh.Close()
		reusing.Close()
	}
}

// pixels returns the pixel bytes of an *image.Gray or *PlanarRGB.
func pixels(img image.Image) []byte {
	switch m := img.(type) {
	case *image.Gray:
		return m.Pix
	case *PlanarRGB:
		return m.Pix
	}
	return nil
}

// cifarFixture writes a CIFAR-10 batch of three records of different colours.
func cifarFixture(t *testing.T) string {
	t.Helper()
	data := append(cifarRecordBytes(3, 10, 20, 30), cifarRecordBytes(9, 40, 50, 60)...)
	return writeFile(t, t.TempDir(), "data_batch_1.bin", append(data, cifarRecordBytes(0, 70, 80, 90)...))
}

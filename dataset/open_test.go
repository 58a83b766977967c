package dataset

import (
	"errors"
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

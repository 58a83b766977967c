package dataset

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// classFolders writes classes folders of n PNGs each, named c0, c1, ...
func classFolders(t *testing.T, classes, n int) string {
	t.Helper()
	dir := t.TempDir()
	img := pngBytes(t, grayImage(2, 2, 1))
	for c := range classes {
		for i := range n {
			writeFile(t, dir, fmt.Sprintf("c%d/%03d.png", c, i), img)
		}
	}
	return dir
}

func subsetNames(t *testing.T, r Reader, n int, seed uint64) []string {
	t.Helper()
	s, err := RandomSubset(r, n, seed, "test")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != min(n, r.Len()) && n > 0 {
		t.Errorf("Len %d, want %d", s.Len(), n)
	}
	var names []string
	for _, smp := range readAll(t, s) {
		names = append(names, smp.Name())
	}
	return names
}

// A random subset of data stored class by class draws from every class, in the stored order,
// the same for the same seed; each sample is as likely as any other.
func TestRandomSubset(t *testing.T) {
	dir := classFolders(t, 4, 25)
	open := func() Reader {
		r, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	got := subsetNames(t, open(), 20, 7)
	if len(got) != 20 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != 20 {
		t.Fatalf("subset of 20: %v", got)
	}
	classes := map[string]bool{}
	for _, n := range got {
		classes[filepath.Base(filepath.Dir(n))] = true
	}
	if len(classes) < 3 {
		t.Errorf("20 of 100 images in 4 classes drew from %d classes: %v", len(classes), got)
	}
	if again := subsetNames(t, open(), 20, 7); !slices.Equal(again, got) {
		t.Errorf("same seed, another subset:\n%v\n%v", got, again)
	}
	if other := subsetNames(t, open(), 20, 8); slices.Equal(other, got) {
		t.Errorf("seeds 7 and 8 drew the same subset")
	}
	// Uniform: over 500 seeds every image is drawn about 20% of the time (100 ± 9).
	count := map[string]int{}
	for seed := range uint64(500) {
		for _, n := range subsetNames(t, open(), 20, seed) {
			count[n]++
		}
	}
	for n, c := range count {
		if c < 55 || c > 145 {
			t.Errorf("%s drawn %d times in 500 subsets of 20 of 100, want about 100", n, c)
		}
	}
	if len(count) != 100 {
		t.Errorf("%d images ever drawn, want 100", len(count))
	}
	// No limit, or one at least the size: the reader itself.
	for _, n := range []int{0, -1, 100, 1000} {
		r := open()
		if s, err := RandomSubset(r, n, 1, "test"); err != nil || s != r {
			t.Errorf("limit %d: %v, %v", n, s, err)
		}
	}
}

// IDX files are read record by record, skipped ones too.
func TestRandomSubsetIDX(t *testing.T) {
	images, _ := idxFixture(t, true)
	r, err := Open(images, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := subsetNames(t, r, 2, 1)
	if len(got) != 2 || !slices.IsSorted(got) || !strings.Contains(got[0], "train-images-idx3-ubyte.gz[") {
		t.Errorf("subset of 2 of 3 IDX records: %v", got)
	}
}

// A reader that does not know its length cannot be subset without reading it all: an error
// naming the dataset, not the first n.
func TestRandomSubsetUnknownLength(t *testing.T) {
	if _, err := RandomSubset(lenless{}, 5, 1, "cifar/data_batch_1.bin.gz"); err == nil || !strings.Contains(err.Error(), "cifar/data_batch_1.bin.gz") {
		t.Errorf("unknown length: %v", err)
	}
}

// lenless is a reader whose length is unknown.
type lenless struct{ Reader }

func (lenless) Len() int { return -1 }

// A single image file is a folder of one; a prefix on a file without folders is an error.
func TestSingleImageFileAndPrefix(t *testing.T) {
	dir := t.TempDir()
	img := writeFile(t, dir, "frame.png", pngBytes(t, grayImage(3, 2, 9)))
	r, err := Open(img, Options{Unlabeled: true})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r)
	if len(got) != 1 || got[0].Name() != img || got[0].Label != -1 || got[0].Image.Bounds().Dx() != 3 {
		t.Fatalf("image file as a dataset: %+v", got)
	}
	if _, err := Open(img, Options{Layout: LayoutClasses}); err == nil || !strings.Contains(err.Error(), "class folder") {
		t.Errorf("one image with class labels: %v", err)
	}
	images, _ := idxFixture(t, false)
	for _, p := range []string{img, images} {
		if _, err := Open(p, Options{Prefix: "train"}); err == nil || !strings.Contains(err.Error(), "has no folders") || !strings.Contains(err.Error(), p) {
			t.Errorf("%s#train: %v", p, err)
		}
	}
}

package dataset

import (
	"errors"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRealData reads the real datasets in $OODGUARD_DATA (e.g. ../shared/data; see its
// README.md) end to end. It is skipped when OODGUARD_DATA is unset and in -short mode.
func TestRealData(t *testing.T) {
	root := os.Getenv("OODGUARD_DATA")
	if root == "" || testing.Short() {
		t.Skip("set OODGUARD_DATA to the shared data folder to read the real datasets")
	}
	cifar := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	for _, tc := range []struct {
		path    string
		opts    Options
		n       int
		size    image.Point
		classes []string
	}{
		{"fashion-mnist/train-images-idx3-ubyte.gz", Options{}, 60000, image.Pt(28, 28), nil},
		{"fashion-mnist/t10k-images-idx3-ubyte.gz", Options{}, 10000, image.Pt(28, 28), nil},
		{"mnist/t10k-images-idx3-ubyte.gz", Options{}, 10000, image.Pt(28, 28), nil},
		{"cifar10/train.tar", Options{Prefix: "train"}, 50000, image.Pt(32, 32), cifar},
		{"cifar10/test.tar", Options{Prefix: "test"}, 10000, image.Pt(32, 32), cifar},
		{"tiny-imagenet/val.tar", Options{Prefix: "val/images"}, 10000, image.Pt(64, 64), nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r, err := Open(filepath.Join(root, tc.path), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Len() != tc.n || !slices.Equal(r.Classes(), tc.classes) {
				t.Fatalf("Len %d Classes %v, want %d and %v", r.Len(), r.Classes(), tc.n, tc.classes)
			}
			counts := map[int]int{}
			types := map[string]int{}
			n := 0
			for ; ; n++ {
				s, err := r.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					break
				}
				if s.Image.Bounds().Size() != tc.size {
					t.Fatalf("%s is %v, want %v", s.Name(), s.Image.Bounds().Size(), tc.size)
				}
				counts[s.Label]++
				types[typeName(s.Image)]++
			}
			if n != tc.n {
				t.Errorf("read %d samples, want %d", n, tc.n)
			}
			t.Logf("%d samples; per label %v; image types %v", n, counts, types)
		})
	}
}

// typeName names the concrete type of an image, with its YCbCr subsampling.
func typeName(img image.Image) string {
	if y, ok := img.(*image.YCbCr); ok {
		return "YCbCr " + y.SubsampleRatio.String()
	}
	switch img.(type) {
	case *image.Gray:
		return "Gray"
	case *image.RGBA:
		return "RGBA"
	case *PlanarRGB:
		return "PlanarRGB"
	}
	return "other"
}

// Package traintest makes small learnable image sets for the tests of training code.
package traintest

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/unleash/train"
)

// Squares returns n gray size x size images of classes classes: image i has label i mod
// classes and a bright 4x4 square in the corner region of its class (classes <= 4: top left,
// top right, bottom left, bottom right), jittered by up to 2 pixels, on a noisy dark background.
// A small CNN learns it in an epoch or two.
func Squares(n, classes, size int, seed uint64) *train.Images {
	r := rand.New(rand.NewPCG(seed, 77))
	s := &train.Images{Shape: [3]int{1, size, size}, Pix: make([]uint8, n*size*size), Labels: make([]int, n)}
	for i := range n {
		k := i % classes
		s.Labels[i] = k
		img := s.Pix[i*size*size : (i+1)*size*size]
		for p := range img {
			img[p] = uint8(r.IntN(60))
		}
		y0, x0 := 1, 1
		if k&1 == 1 {
			x0 = size - 7
		}
		if k&2 == 2 {
			y0 = size - 7
		}
		y0 += r.IntN(3)
		x0 += r.IntN(3)
		for y := y0; y < y0+4; y++ {
			for x := x0; x < x0+4; x++ {
				img[y*size+x] = uint8(200 + r.IntN(56))
			}
		}
	}
	return s
}

// WriteIDX writes a gray image set as uncompressed IDX files NAME-images-idx3-ubyte and
// NAME-labels-idx1-ubyte in dir and returns the images file's path.
func WriteIDX(tb testing.TB, dir, name string, s *train.Images) string {
	tb.Helper()
	if s.Shape[0] != 1 {
		tb.Fatalf("WriteIDX: %d channels, IDX holds gray images", s.Shape[0])
	}
	n, h, w := s.Len(), s.Shape[1], s.Shape[2]
	img := make([]byte, 16, 16+len(s.Pix))
	binary.BigEndian.PutUint32(img[0:], 0x803)
	binary.BigEndian.PutUint32(img[4:], uint32(n))
	binary.BigEndian.PutUint32(img[8:], uint32(h))
	binary.BigEndian.PutUint32(img[12:], uint32(w))
	img = append(img, s.Pix...)
	lab := make([]byte, 8, 8+n)
	binary.BigEndian.PutUint32(lab[0:], 0x801)
	binary.BigEndian.PutUint32(lab[4:], uint32(n))
	for _, l := range s.Labels {
		lab = append(lab, byte(l))
	}
	images := filepath.Join(dir, name+"-images-idx3-ubyte")
	if err := os.WriteFile(images, img, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-labels-idx1-ubyte"), lab, 0o644); err != nil {
		tb.Fatal(err)
	}
	return images
}

// Package datasettest writes small datasets for tests of the packages that read them.
package datasettest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// WriteIDX writes n deterministic rows x cols gray images (labels i mod 10) as uncompressed IDX
// files named NAME-images-idx3-ubyte and NAME-labels-idx1-ubyte in dir, and returns their paths.
// Image i has pixel p = (p*(i+3) + i*i) mod 256.
func WriteIDX(tb testing.TB, dir, name string, n, rows, cols int) (images, labels string) {
	tb.Helper()
	per := rows * cols
	img := make([]byte, 16+n*per)
	binary.BigEndian.PutUint32(img[0:], 0x803)
	binary.BigEndian.PutUint32(img[4:], uint32(n))
	binary.BigEndian.PutUint32(img[8:], uint32(rows))
	binary.BigEndian.PutUint32(img[12:], uint32(cols))
	for i := 0; i < n; i++ {
		for p := 0; p < per; p++ {
			img[16+i*per+p] = byte((p*(i+3) + i*i) % 256)
		}
	}
	lab := make([]byte, 8+n)
	binary.BigEndian.PutUint32(lab[0:], 0x801)
	binary.BigEndian.PutUint32(lab[4:], uint32(n))
	for i := 0; i < n; i++ {
		lab[8+i] = byte(i % 10)
	}
	images = filepath.Join(dir, name+"-images-idx3-ubyte")
	labels = filepath.Join(dir, name+"-labels-idx1-ubyte")
	if err := os.WriteFile(images, img, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(labels, lab, 0o644); err != nil {
		tb.Fatal(err)
	}
	return images, labels
}

// WriteCIFAR writes n deterministic 32x32 colour images (labels i mod 10) as one CIFAR-10
// binary batch file NAME.bin in dir and returns its path (with no batches.meta.txt beside it,
// the reader names the classes as CIFAR-10 does). Byte p of image i's three planes is (p*(i+5) + 7*i) mod 256.
func WriteCIFAR(tb testing.TB, dir, name string, n int) string {
	tb.Helper()
	const rec = 1 + 3*32*32
	data := make([]byte, n*rec)
	for i := 0; i < n; i++ {
		r := data[i*rec : (i+1)*rec]
		r[0] = byte(i % 10)
		for p := 1; p < rec; p++ {
			r[p] = byte((p*(i+5) + 7*i) % 256)
		}
	}
	path := filepath.Join(dir, name+".bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

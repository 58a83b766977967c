package dataset

import (
	"errors"
	"io"
	"testing"
)

// FuzzReaders feeds arbitrary bytes to every reader as a file of its format (IDX images with
// and without a labels file, a CIFAR-10 batch, a tar archive, and an image in a tar archive):
// opening and reading must end in samples or an error, never a panic, and after an error Next
// must keep returning an error.
func FuzzReaders(f *testing.F) {
	f.Add(uint8(0), idxBytes([]int{2, 2, 3}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}), []byte{})
	f.Add(uint8(1), idxBytes([]int{2, 1, 1}, []byte{7, 8}), idxBytes([]int{2}, []byte{0, 1}))
	f.Add(uint8(1), idxBytes([]int{3, 1, 1}, []byte{7, 8, 9}), idxBytes([]int{2}, []byte{0, 1}))
	f.Add(uint8(2), cifarRecordBytes(3, 10, 20, 30), []byte{})
	f.Add(uint8(2), cifarRecordBytes(11, 10, 20, 30)[:100], []byte{})
	f.Add(uint8(3), []byte("not a tar"), []byte{})
	f.Add(uint8(4), pngBytes(f, grayImage(3, 2, 1)), []byte{})
	f.Add(uint8(4), corruptJPEG, []byte{})
	f.Fuzz(func(t *testing.T, kind uint8, data, extra []byte) {
		dir := t.TempDir()
		reuse := kind&0x80 != 0
		opts := Options{ReuseImages: reuse}
		var r Reader
		var err error
		switch kind % 5 {
		case 0:
			r, err = OpenIDX(writeFile(t, dir, "images-idx3-ubyte", data), "", opts)
		case 1:
			r, err = OpenIDX(writeFile(t, dir, "images-idx3-ubyte", data), writeFile(t, dir, "labels-idx1-ubyte", extra), opts)
		case 2:
			r, err = OpenCIFAR([]string{writeFile(t, dir, "data_batch_1.bin", data)}, opts)
		case 3:
			r, err = Open(writeFile(t, dir, "set.tar", data), Options{Layout: LayoutFlat})
		default:
			tarPath := writeTar(t, dir, "set.tar", []tarEntry{{"set/a/x.png", data}, {"set/b/y.jpg", extra}}, false)
			r, err = Open(tarPath, Options{Prefix: "set"})
		}
		if err != nil {
			return
		}
		defer r.Close()
		for n := 0; n < 1000; n++ {
			s, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if _, again := r.Next(); again == nil {
					t.Fatalf("Next succeeded after %v", err)
				}
				return
			}
			if s.Image == nil || s.Image.Bounds().Empty() || s.Name() == "" {
				t.Fatalf("sample %d: image %v, name %q", n, s.Image, s.Name())
			}
		}
	})
}

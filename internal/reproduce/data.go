package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The splits. Every split is a file or folder under the data folder, made once (a ".complete"
// marker says it is whole) and named by its content, so that modes share what they can.
//
//	Fashion-MNIST train (60k): images 0..54999 train, 55000..59999 the ID validation set.
//	MNIST test (10k):          images 0..4999 the OOD validation half, 5000..9999 the test half.
//	Tiny ImageNet val (10k):   val_0..val_4999 the OOD validation half, val_5000..val_9999 the test half.
//	CIFAR-10 train (5000 per class, files in name order): the first N per class train, the last
//	                           M per class the ID validation set.
const (
	fashionTrainSplit = 55000 // Fashion-MNIST training images before the ID validation split
	oodHalf           = 5000  // first index of the test half of MNIST test and Tiny ImageNet val
	cifarPerClass     = 5000  // CIFAR-10 training images per class
)

// Splits names the datasets one setup uses, as oodguard arguments (PATH or PATH#PREFIX).
type Splits struct {
	Train   string   `json:"train"`
	IDVal   string   `json:"id_val"`
	OODVal  string   `json:"ood_val"`
	IDTest  string   `json:"id_test"`
	OODTest []string `json:"ood_test"`
	// Notes says where each split comes from.
	Notes []string `json:"notes"`
}

// makeSplits writes the splits s needs under dir (skipping those already there) from the
// shared data folder src.
func makeSplits(s Setup, src, dir string) (*Splits, error) {
	if s.OODVal > oodHalf || s.OODTest > oodHalf {
		return nil, fmt.Errorf("%s: OOD validation and test sets hold at most %d images each", s.Key, oodHalf)
	}
	tin := filepath.Join(src, "tiny-imagenet", "val.tar")
	tinVal := filepath.Join(dir, fmt.Sprintf("tinyimagenet-val-%d", s.OODVal))
	tinTest := filepath.Join(dir, fmt.Sprintf("tinyimagenet-test-%d", s.OODTest))
	if err := tinySplit(tin, tinVal, 0, s.OODVal); err != nil {
		return nil, err
	}
	if err := tinySplit(tin, tinTest, oodHalf, s.OODTest); err != nil {
		return nil, err
	}
	switch s.Key {
	case fashionKey:
		if s.Train > fashionTrainSplit || s.IDVal > 60000-fashionTrainSplit {
			return nil, fmt.Errorf("%s: at most %d training and %d validation images", s.Key, fashionTrainSplit, 60000-fashionTrainSplit)
		}
		fm := filepath.Join(src, "fashion-mnist")
		mn := filepath.Join(src, "mnist")
		sp := &Splits{}
		var err error
		if sp.Train, err = idxSplit(fm, "train", filepath.Join(dir, fmt.Sprintf("fashion-mnist-train-%d", s.Train)), 0, s.Train); err != nil {
			return nil, err
		}
		if sp.IDVal, err = idxSplit(fm, "train", filepath.Join(dir, fmt.Sprintf("fashion-mnist-val-%d", s.IDVal)), fashionTrainSplit, s.IDVal); err != nil {
			return nil, err
		}
		sp.IDTest = filepath.Join(fm, "t10k-images-idx3-ubyte.gz")
		if s.IDTest > 0 {
			if sp.IDTest, err = idxSplit(fm, "t10k", filepath.Join(dir, fmt.Sprintf("fashion-mnist-test-%d", s.IDTest)), 0, s.IDTest); err != nil {
				return nil, err
			}
		}
		if sp.OODVal, err = idxSplit(mn, "t10k", filepath.Join(dir, fmt.Sprintf("mnist-val-%d", s.OODVal)), 0, s.OODVal); err != nil {
			return nil, err
		}
		mnistTest, err := idxSplit(mn, "t10k", filepath.Join(dir, fmt.Sprintf("mnist-test-%d", s.OODTest)), oodHalf, s.OODTest)
		if err != nil {
			return nil, err
		}
		sp.OODTest = []string{mnistTest, tinTest}
		sp.Notes = []string{
			fmt.Sprintf("train: Fashion-MNIST training images 0..%d", s.Train-1),
			fmt.Sprintf("ID validation: Fashion-MNIST training images %d..%d (never trained on)", fashionTrainSplit, fashionTrainSplit+s.IDVal-1),
			fmt.Sprintf("OOD validation (best epoch, constraint grid): MNIST test images 0..%d", s.OODVal-1),
			idTestNote("Fashion-MNIST test", s.IDTest, 10000),
			fmt.Sprintf("OOD test: MNIST test images %d..%d (disjoint from the validation half) and Tiny ImageNet val_%d..val_%d (gray, resized to 28x28; never used for any choice)", oodHalf, oodHalf+s.OODTest-1, oodHalf, oodHalf+s.OODTest-1),
		}
		return sp, nil
	case cifarKey:
		if s.Train+s.IDVal > cifarPerClass {
			return nil, fmt.Errorf("%s: %d training + %d validation images per class exceed %d", s.Key, s.Train, s.IDVal, cifarPerClass)
		}
		c10 := filepath.Join(src, "cifar10")
		sp := &Splits{}
		train := filepath.Join(dir, fmt.Sprintf("cifar10-train-%dpc", s.Train))
		val := filepath.Join(dir, fmt.Sprintf("cifar10-val-%dpc", s.IDVal))
		if err := cifarSplit(filepath.Join(c10, "train.tar"), "train", train, 0, s.Train); err != nil {
			return nil, err
		}
		if err := cifarSplit(filepath.Join(c10, "train.tar"), "train", val, cifarPerClass-s.IDVal, s.IDVal); err != nil {
			return nil, err
		}
		sp.Train, sp.IDVal = train, val
		sp.IDTest = filepath.Join(c10, "test.tar") + "#test"
		if s.IDTest > 0 {
			test := filepath.Join(dir, fmt.Sprintf("cifar10-test-%dpc", s.IDTest))
			if err := cifarSplit(filepath.Join(c10, "test.tar"), "test", test, 0, s.IDTest); err != nil {
				return nil, err
			}
			sp.IDTest = test
		}
		sp.OODVal = tinVal
		sp.OODTest = []string{tinTest}
		sp.Notes = []string{
			fmt.Sprintf("train: the first %d CIFAR-10 training images of each class (file name order), %d in all", s.Train, 10*s.Train),
			fmt.Sprintf("ID validation: the last %d training images of each class (never trained on), %d in all", s.IDVal, 10*s.IDVal),
			fmt.Sprintf("OOD validation (best epoch, constraint grid): Tiny ImageNet val_0..val_%d", s.OODVal-1),
			idTestNote("CIFAR-10 test", 10*s.IDTest, 10000),
			fmt.Sprintf("OOD test: Tiny ImageNet val_%d..val_%d (disjoint from the validation half; resized to 32x32)", oodHalf, oodHalf+s.OODTest-1),
		}
		return sp, nil
	}
	return nil, fmt.Errorf("unknown dataset %q", s.Key)
}

func idTestNote(name string, n, all int) string {
	if n == 0 || n >= all {
		return fmt.Sprintf("ID test: %s, all %d images", name, all)
	}
	return fmt.Sprintf("ID test: the first %d images of %s", n, name)
}

// done reports whether dir holds a finished split.
func done(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".complete"))
	return err == nil
}

// fresh empties dir (what an interrupted run left) and creates it.
func fresh(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

func markDone(dir string) error {
	return os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
}

// idxSplit writes images [from, from+n) of the IDX pair SRC/KIND-images-idx3-ubyte.gz and
// SRC/KIND-labels-idx1-ubyte.gz into dir under the same names and returns the images path.
func idxSplit(src, kind, dir string, from, n int) (string, error) {
	images := kind + "-images-idx3-ubyte.gz"
	labels := kind + "-labels-idx1-ubyte.gz"
	out := filepath.Join(dir, images)
	if done(dir) {
		return out, nil
	}
	if err := fresh(dir); err != nil {
		return "", err
	}
	for _, name := range []string{images, labels} {
		if err := idxSlice(filepath.Join(src, name), filepath.Join(dir, name), from, n); err != nil {
			return "", err
		}
	}
	return out, markDone(dir)
}

// idxSlice copies records [from, from+n) of a gzipped IDX file into a new gzipped IDX file.
func idxSlice(src, dst string, from, n int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	var magic [4]byte
	if _, err := io.ReadFull(zr, magic[:]); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] < 1 || magic[3] > 4 {
		return fmt.Errorf("%s: not an IDX file of unsigned bytes", src)
	}
	dims := make([]uint32, magic[3])
	if err := binary.Read(zr, binary.BigEndian, dims); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	per := 1
	for _, d := range dims[1:] {
		per *= int(d)
	}
	if from < 0 || n < 1 || from+n > int(dims[0]) {
		return fmt.Errorf("%s: records %d..%d out of %d", src, from, from+n-1, dims[0])
	}
	if _, err := io.CopyN(io.Discard, zr, int64(from*per)); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	tmp := dst + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw := gzip.NewWriter(w)
	dims[0] = uint32(n)
	zw.Write(magic[:])
	binary.Write(zw, binary.BigEndian, dims)
	if _, err := io.CopyN(zw, zr, int64(n*per)); err != nil {
		w.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// tinySplit copies Tiny ImageNet's val/images/val_I.JPEG for I in [from, from+n) from the tar
// archive into the flat folder dir.
func tinySplit(tarPath, dir string, from, n int) error {
	if done(dir) {
		return nil
	}
	if err := fresh(dir); err != nil {
		return err
	}
	wrote := 0
	err := eachTarFile(tarPath, func(name string, r io.Reader) error {
		dirName, base := path.Split(name)
		if strings.Trim(dirName, "/") != "val/images" || !strings.HasPrefix(base, "val_") {
			return nil
		}
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(base, "val_"), path.Ext(base)))
		if err != nil || i < from || i >= from+n {
			return nil
		}
		wrote++
		return writeFile(filepath.Join(dir, base), r)
	})
	if err != nil {
		return err
	}
	if wrote != n {
		return fmt.Errorf("%s: found %d of the %d images val_%d..val_%d", tarPath, wrote, n, from, from+n-1)
	}
	return markDone(dir)
}

// cifarSplit copies, for every class folder PREFIX/<class>/ of the tar archive, the files
// [from, from+n) in name order into dir/<class>/.
func cifarSplit(tarPath, prefix, dir string, from, n int) error {
	if done(dir) {
		return nil
	}
	// First pass: the names per class, to pick by position in name order.
	classes := map[string][]string{}
	err := eachTarFile(tarPath, func(name string, _ io.Reader) error {
		parts := strings.Split(strings.Trim(name, "/"), "/")
		if len(parts) == 3 && parts[0] == prefix {
			classes[parts[1]] = append(classes[parts[1]], parts[2])
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(classes) == 0 {
		return fmt.Errorf("%s: no class folders under %s/", tarPath, prefix)
	}
	if err := fresh(dir); err != nil {
		return err
	}
	want := map[string]bool{}
	for class, files := range classes {
		sort.Strings(files)
		if from+n > len(files) {
			return fmt.Errorf("%s: class %s has %d images, want %d..%d", tarPath, class, len(files), from, from+n-1)
		}
		for _, f := range files[from : from+n] {
			want[prefix+"/"+class+"/"+f] = true
		}
	}
	wrote := 0
	err = eachTarFile(tarPath, func(name string, r io.Reader) error {
		name = strings.Trim(name, "/")
		if !want[name] {
			return nil
		}
		wrote++
		return writeFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, prefix+"/"))), r)
	})
	if err != nil {
		return err
	}
	if wrote != len(want) {
		return fmt.Errorf("%s: wrote %d of %d files", tarPath, wrote, len(want))
	}
	return markDone(dir)
}

// eachTarFile calls fn for every regular file of the tar archive, in archive order.
func eachTarFile(tarPath string, fn func(name string, r io.Reader) error) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tarPath, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(h.Name, tr); err != nil {
			return err
		}
	}
}

func writeFile(name string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	w, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

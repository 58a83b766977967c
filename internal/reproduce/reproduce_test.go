package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeIDX writes a gzipped IDX file of n records of per bytes, record i filled with byte i.
func writeIDX(t *testing.T, path string, dims []uint32) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte{0, 0, 0x08, byte(len(dims))})
	binary.Write(zw, binary.BigEndian, dims)
	per := 1
	for _, d := range dims[1:] {
		per *= int(d)
	}
	for i := range int(dims[0]) {
		zw.Write(bytes.Repeat([]byte{byte(i)}, per))
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIDXSplit(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeIDX(t, filepath.Join(src, "train-images-idx3-ubyte.gz"), []uint32{10, 2, 3})
	writeIDX(t, filepath.Join(src, "train-labels-idx1-ubyte.gz"), []uint32{10})
	out, err := idxSplit(src, "train", filepath.Join(dst, "part"), 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3}
	for _, i := range []byte{4, 5, 6} {
		want = append(want, bytes.Repeat([]byte{i}, 6)...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("images: got %v, want %v", got, want)
	}
	if !done(filepath.Join(dst, "part")) {
		t.Error("split not marked complete")
	}
	if _, err := idxSplit(src, "train", filepath.Join(dst, "bad"), 8, 3); err == nil {
		t.Error("records past the end: no error")
	}
}

func TestSelectEpoch(t *testing.T) {
	// Epoch 1 has the lowest FPR95 but an accuracy 10 points below the final; epoch 3 is the
	// best within 5 points.
	log := `{"arch":"cnn28 w16","params":10,"train":{"count":100},"seconds":3,"per_epoch":[
	 {"epoch":1,"loss":1,"val_acc":0.80,"fpr95":0.30,"auroc":0.9,"checkpoint":"epoch-001.onnx"},
	 {"epoch":2,"loss":1,"val_acc":0.86,"fpr95":0.70,"auroc":0.6,"checkpoint":"epoch-002.onnx"},
	 {"epoch":3,"loss":1,"val_acc":0.87,"fpr95":0.50,"auroc":0.7,"checkpoint":"epoch-003.onnx"},
	 {"epoch":4,"loss":1,"val_acc":0.90,"fpr95":0.60,"auroc":0.8,"checkpoint":"epoch-004.onnx"}]}`
	path := filepath.Join(t.TempDir(), "train.json")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := selectEpoch(path, 5)
	if err != nil {
		t.Fatal(err)
	}
	if s.Final.Epoch != 4 || s.Best.Epoch != 3 || s.BestAny.Epoch != 1 {
		t.Errorf("final %d, best %d, best with no floor %d; want 4, 3, 1", s.Final.Epoch, s.Best.Epoch, s.BestAny.Epoch)
	}
}

func TestPick(t *testing.T) {
	m, err := pick("short", "cifar10", []uint64{4, 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sets) != 1 || m.Sets[0].Key != cifarKey || len(m.Seeds) != 2 {
		t.Errorf("got %d sets (%v), seeds %v", len(m.Sets), m.Sets, m.Seeds)
	}
	if _, err := pick("huge", "", nil); err == nil || !strings.Contains(err.Error(), "short") {
		t.Errorf("unknown mode: got %v", err)
	}
	if m, err := pick("default", "", nil); err != nil || m.Name != "short" {
		t.Errorf(`pick("default") (the old name of short): got %q, %v`, m.Name, err)
	}
	// Every mode's CIFAR-10 subsets fit in the 5000 images per class.
	for name, m := range modes {
		for _, s := range m.Sets {
			if s.Key == cifarKey && s.Train+s.IDVal > cifarPerClass {
				t.Errorf("%s: %d + %d images per class", name, s.Train, s.IDVal)
			}
			if s.OODVal > oodHalf || s.OODTest > oodHalf {
				t.Errorf("%s %s: OOD sets larger than the halves", name, s.Key)
			}
		}
	}
}

package onnxgraph_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestReleaseReadsValuesAgain releases every parameter of models read by Load and checks that the
// model then holds none of their values, and that everything that needs them reads the file's
// values again: Values, Marshal (the input byte for byte, and with one parameter replaced the
// bytes of a model that kept its values), MarshalInference of a training-mode export, and the
// inference graph's logits. A file changed or gone since is an error, not other values; a model
// that Parse read keeps its values.
func TestReleaseReadsValuesAgain(t *testing.T) {
	root := runtimetest.RepoRoot(t)
	b := backend(t)
	for _, name := range []string{"testdata/unleash/tinybn.onnx", "testdata/models/cnn28.onnx", "testdata/zoo/resnet18.trainbn.onnx"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			raw := mustRead(t, filepath.Join(root, name))
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			kept, err := onnxgraph.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnxgraph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range m.Params {
				names = append(names, p.Name)
			}
			n, err := m.Release(names...)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(names) {
				t.Fatalf("released %d of %d parameters", n, len(names))
			}
			if n, err := kept.Release(names...); err != nil || n != 0 {
				t.Fatalf("a parsed model released %d (%v), want 0: it has no file to read them from", n, err)
			}
			if _, err := m.Release("no such parameter"); err == nil {
				t.Error("release of an unknown name: no error")
			}
			for _, p := range m.Params {
				if p.Data != nil || !m.Released(p.Name) {
					t.Fatalf("%s: holds %d values after its release", p.Name, len(p.Data))
				}
				want := kept.Param(p.Name)
				if want.Data == nil || kept.Released(p.Name) {
					t.Fatalf("%s: the parsed model dropped its values", p.Name)
				}
				if p.Size() != want.Size() {
					t.Fatalf("%s: size %d after its release, %d before", p.Name, p.Size(), want.Size())
				}
				got, err := m.Values(p.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(f32bits(got), f32bits(want.Data)) {
					t.Fatalf("%s: values read again differ from the file's", p.Name)
				}
			}
			out, err := m.Marshal(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, raw) {
				t.Error("Marshal(nil) of the released model is not the input file")
			}
			p := m.Params[0]
			vals := make([]float32, p.Size())
			for i := range vals {
				vals[i] = float32(i) / 7
			}
			repl := map[string][]float32{p.Name: vals}
			got, err := m.MarshalInference(repl)
			if err != nil {
				t.Fatal(err)
			}
			want, err := kept.MarshalInference(repl)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Error("the released model writes other bytes than the model that kept its values")
			}
			if _, err := m.Marshal(map[string][]float32{p.Name: vals[:len(vals)-1]}); err == nil {
				t.Error("a released parameter replaced by too few values: no error")
			}
			if !m.InTrainingMode() {
				x := randomInput(3, m.Channels*m.Height*m.Width, 2)
				if !slices.Equal(gomlxLogits(t, b, m, x, 3), gomlxLogits(t, b, kept, x, 3)) {
					t.Error("the released model's logits differ from the model that kept its values")
				}
			}

			// The file changed (a released value's byte) or gone: an error, never other values.
			spoilt := slices.Clone(raw)
			at := bytes.Index(spoilt, f32bits(kept.Param(p.Name).Data))
			if at < 0 {
				t.Fatalf("%s: raw values not found in the file", p.Name)
			}
			spoilt[at] ^= 1
			if err := os.WriteFile(path, spoilt, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Values(p.Name); err == nil {
				t.Error("values of a changed file: no error")
			}
			if _, err := m.Marshal(nil); err == nil {
				t.Error("Marshal of a changed file: no error")
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Values(p.Name); err == nil {
				t.Error("values of a removed file: no error")
			}
			// Values that replace gives are not read.
			all := map[string][]float32{}
			for _, q := range kept.Params {
				all[q.Name] = q.Data
			}
			out, err = m.Marshal(all)
			if err != nil {
				t.Fatalf("every released value replaced, the file gone: %v", err)
			}
			if !bytes.Equal(out, raw) {
				t.Error("every value replaced by the file's: not the input file")
			}
		})
	}
}

func f32bits(v []float32) []byte {
	var buf bytes.Buffer
	for _, x := range v {
		u := math.Float32bits(x)
		buf.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)})
	}
	return buf.Bytes()
}

package unleash_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestUMReleasesModelValues checks that a UM trainer on a model read by Load leaves the model
// holding none of the values it trains (they are in the trainer's buffers), and that this
// changes nothing written: the model exported after some steps, and before any, is the bytes a
// trainer on a model that kept its values writes, and a second trainer on the released model
// (as the validation guard makes for the input) computes the input's logits. UMAP releases
// nothing.
func TestUMReleasesModelValues(t *testing.T) {
	for _, name := range []string{"tinybn.onnx", "resnet32.onnx"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name)
			raw, err := m.Marshal(nil)
			if err != nil {
				t.Fatal(err)
			}
			kept, err := onnxgraph.Parse(raw) // no file: keeps its values
			if err != nil {
				t.Fatal(err)
			}
			opts := unleash.DefaultOptions(unleash.UM)
			opts.Constraint = 0.3
			tr, err := unleash.New(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			trained := 0
			for _, p := range m.Params {
				stat := p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar
				if stat == m.Released(p.Name) || stat != (p.Data != nil) {
					t.Errorf("%s (%s): released %v, holds %d values", p.Name, p.Role, m.Released(p.Name), len(p.Data))
				}
				if !stat {
					trained++
				}
			}
			if trained == 0 {
				t.Fatal("no trained parameter")
			}
			ref, err := unleash.New(kept, opts)
			if err != nil {
				t.Fatal(err)
			}
			export := func(tr *unleash.Trainer) []byte {
				var buf bytes.Buffer
				if err := tr.Export(&buf); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			}
			if got := export(tr); !bytes.Equal(got, raw) {
				t.Error("exported before any step: not the input file")
			}
			x, y := randomBatch(m, 8, 5, 4)
			for i := 0; i < 2; i++ {
				if _, err := tr.Step(x, y, 0.05); err != nil {
					t.Fatal(err)
				}
				if _, err := ref.Step(x, y, 0.05); err != nil {
					t.Fatal(err)
				}
			}
			got, want := export(tr), export(ref)
			if bytes.Equal(want, raw) {
				t.Fatal("two steps changed nothing")
			}
			if !bytes.Equal(got, want) {
				t.Error("the released model exports other bytes than the one that kept its values")
			}
			again, err := unleash.New(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := unleash.New(kept, opts)
			if err != nil {
				t.Fatal(err)
			}
			za, err := again.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			zf, err := fresh.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(za, zf) {
				t.Error("a second trainer on the released model computes other logits than the input's")
			}

			u := loadModel(t, name)
			uo := unleash.DefaultOptions(unleash.UMAP)
			uo.Constraint = 0.3
			if _, err := unleash.New(u, uo); err != nil {
				t.Fatal(err)
			}
			for _, p := range u.Params {
				if u.Released(p.Name) || p.Data == nil {
					t.Errorf("UMAP released %s", p.Name)
				}
			}
		})
	}
}

// The released model reads its file again: a file written over since is an error.
func TestUMReleasedFileChanged(t *testing.T) {
	src := loadModel(t, "tinybn.onnx")
	raw, err := src.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unleash.New(m, unleash.DefaultOptions(unleash.UM)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := unleash.New(m, unleash.DefaultOptions(unleash.UM)); err == nil {
		t.Error("a second trainer on a released model whose file changed: no error")
	}
	if _, err := m.Marshal(nil); err == nil {
		t.Error("Marshal of a released model whose file changed: no error")
	}
}

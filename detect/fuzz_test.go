package detect

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// FuzzParse feeds Parse mutated ONNX files: it must return an error or a head whose sizes agree
// with its weights, never panic, and WithFeatures and a ReAct graph must then be writable.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"cnn28.onnx", "resnet32.onnx", "two_heads.onnx", "mlp_flat.onnx"} {
		data, err := os.ReadFile(runtimetest.Model(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, o := range []tinyOpts{{}, {last: "MatMulAdd"}, {last: "MatMulAdd", biasFirst: true}, {last: "Relu"}, {weightAsInput: true}} {
		f.Add(tinyModel(f, o))
	}
	zoo, _ := filepath.Glob(filepath.Join(runtimetest.RepoRoot(f), "testdata", "zoo", "squeezenet.onnx"))
	for _, p := range zoo {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		h := m.Head
		if h.Dim < 1 || h.Classes < 2 || len(h.W) != h.Dim*h.Classes || len(h.B) != h.Classes {
			t.Fatalf("head dim %d classes %d with %d weights and %d biases", h.Dim, h.Classes, len(h.W), len(h.B))
		}
		if _, err := m.WithFeatures(); err != nil {
			t.Fatalf("WithFeatures: %v", err)
		}
		if _, err := m.Write(&ReAct{P: 90, Clip: 1, head: &m.Head}); err != nil {
			t.Fatalf("Write: %v", err)
		}
	})
}

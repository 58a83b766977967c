package onnxgraph_test

import (
	"bytes"
	"testing"

	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestSetMetadata sets one existing key and two new ones on an arch model: the existing key
// changes in place, the new ones are added, the graph is untouched, and Metadata reads all
// back from the parsed model; corrupt bytes are an error.
func TestSetMetadata(t *testing.T) {
	data, err := arch.Build(arch.Config{Arch: arch.CNN28, Width: 4, Input: [3]int{1, 28, 28}, Classes: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	before, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before.Metadata("x.new"); ok {
		t.Fatal("fresh arch model has x.new")
	}
	out, err := onnxgraph.SetMetadata(data, map[string]string{"oodguard.seed": "9", "x.new": "a", "x.b": ""})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"oodguard.seed": "9", "x.new": "a", "x.b": "", "oodguard.arch": "cnn28 w4"} {
		if v, ok := m.Metadata(k); !ok || v != want {
			t.Errorf("Metadata(%q) = %q, %v; want %q", k, v, ok, want)
		}
	}
	// the weights are the same: marshalling both without replacement gives equal graphs
	a, _ := before.Marshal(nil)
	b, _ := m.Marshal(nil)
	if len(b) <= len(a) || !bytes.Contains(b, []byte("x.new")) {
		t.Errorf("the model with metadata has %d bytes against %d before", len(b), len(a))
	}
	if len(m.Params) != len(before.Params) {
		t.Fatalf("%d params after, %d before", len(m.Params), len(before.Params))
	}
	for i, p := range m.Params {
		q := before.Params[i]
		if p.Name != q.Name || len(p.Data) != len(q.Data) {
			t.Fatalf("param %d: %s (%d) after, %s (%d) before", i, p.Name, len(p.Data), q.Name, len(q.Data))
		}
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("param %s value %d: %v after, %v before", p.Name, j, p.Data[j], q.Data[j])
			}
		}
	}
	if _, err := onnxgraph.SetMetadata([]byte{0xff, 0xff, 0xff}, map[string]string{"k": "v"}); err == nil {
		t.Error("SetMetadata accepted corrupt bytes")
	}
}

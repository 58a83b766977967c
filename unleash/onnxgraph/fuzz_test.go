package onnxgraph

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes, starting from the small test models, to Parse: a model or an
// error, never a panic (`oodguard unleash` and `train` take models from users); a parsed model,
// its maskable weights replaced, must write back to bytes that parse again, and Check (which
// builds the unleash and ODIN graphs) must return, not panic.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"odintiny", "opszoo", "poolzoo", "tinybn", "odineven"} {
		b, err := os.ReadFile("../../testdata/unleash/" + name + ".onnx")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A zoo model with a folded shape subgraph, Split-free channel shuffles and grouped
	// convolutions.
	b, err := os.ReadFile("../../testdata/zoo/shufflenetv2.op17.onnx")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	// A training-mode export (BatchNorm with statistics outputs, a training-mode Dropout).
	if b, err = os.ReadFile("../../testdata/zoo/mobilenetv2.trainbn.onnx"); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		replace := map[string][]float32{}
		for _, p := range m.Params {
			if p.Size() != product(p.Dims) {
				t.Fatalf("param %s: %d values for dims %v", p.Name, p.Size(), p.Dims)
			}
			if p.Maskable() {
				replace[p.Name] = make([]float32, p.Size())
			}
		}
		// The write-back `oodguard unleash` does must give a model that parses again.
		out, err := m.Marshal(replace)
		if err != nil {
			return
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("written model does not parse: %v", err)
		}
		// Converted to inference mode, it parses again and is no longer in training mode.
		if out, err := m.MarshalInference(replace); err == nil {
			conv, err := Parse(out)
			if err != nil {
				t.Fatalf("converted model does not parse: %v", err)
			}
			if conv.InTrainingMode() {
				t.Fatalf("converted model still in training mode: %v %v", conv.TrainingBatchNorm, conv.TrainingDropout)
			}
		}
		_ = m.Check()
	})
}

func product(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

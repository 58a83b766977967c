package onnxgraph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"google.golang.org/protobuf/proto"
)

// TestMarshalInference converts the zoo's training-mode exports and checks that exactly the
// training-mode nodes changed, and only as intended: BatchNormalization keeps its inputs and
// other attributes and loses training_mode and its statistics outputs; Dropout loses its
// training_mode input and its mask output. Everything else in the model (other nodes,
// initializers, inputs, outputs, opsets, metadata) is equal, and an eval-mode model comes back
// byte for byte.
func TestMarshalInference(t *testing.T) {
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	for _, c := range []struct {
		file        string
		bn, dropout int
	}{
		{"resnet18.trainbn.onnx", 20, 0},
		{"mobilenetv2.trainbn.onnx", 22, 1},
		{"densenetbc.trainbn.onnx", 15, 0},
		{"densenet.trainbn.op17.onnx", 16, 0},
	} {
		t.Run(c.file, func(t *testing.T) {
			m, err := onnxgraph.Load(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.TrainingBatchNorm) != c.bn || len(m.TrainingDropout) != c.dropout {
				t.Errorf("%d training-mode BatchNorm and %d Dropout nodes, want %d and %d", len(m.TrainingBatchNorm), len(m.TrainingDropout), c.bn, c.dropout)
			}
			out, err := m.MarshalInference(nil)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := onnxgraph.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if conv.InTrainingMode() || conv.CheckInference() != nil || conv.Check() != nil {
				t.Fatalf("converted model: %v %v, Check %v", conv.TrainingBatchNorm, conv.TrainingDropout, conv.Check())
			}
			a, b := protoOf(t, mustRead(t, filepath.Join(dir, c.file))), protoOf(t, out)
			an, bn := a.GetGraph().GetNode(), b.GetGraph().GetNode()
			if len(an) != len(bn) {
				t.Fatalf("%d nodes, converted %d", len(an), len(bn))
			}
			changed := 0
			for i := range an {
				x, y := an[i], bn[i]
				if proto.Equal(x, y) {
					continue
				}
				changed++
				want := proto.Clone(x).(*onnx.NodeProto)
				want.Output = want.Output[:1]
				switch x.GetOpType() {
				case "BatchNormalization":
					want.Attribute = slices.DeleteFunc(want.Attribute, func(a *onnx.AttributeProto) bool { return a.GetName() == "training_mode" })
				case "Dropout":
					want.Input = want.Input[:2]
				default:
					t.Errorf("node %q (%s) changed", x.GetName(), x.GetOpType())
				}
				if !proto.Equal(want, y) {
					t.Errorf("node %q converted to %v, want %v", x.GetName(), y, want)
				}
			}
			if changed != c.bn+c.dropout {
				t.Errorf("%d nodes changed, want %d", changed, c.bn+c.dropout)
			}
			a.Graph.Node, b.Graph.Node = nil, nil
			if !proto.Equal(a, b) {
				t.Errorf("the model outside its nodes changed")
			}
		})
	}
	raw := mustRead(t, filepath.Join(dir, "resnet18.onnx"))
	m, err := onnxgraph.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.MarshalInference(nil); err != nil || string(out) != string(raw) {
		t.Errorf("an eval-mode model does not come back byte for byte (%v)", err)
	}
}

// TestMarshalInferenceUsedStatistics refuses to drop a statistics output another node reads.
func TestMarshalInferenceUsedStatistics(t *testing.T) {
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	p := protoOf(t, mustRead(t, filepath.Join(dir, "resnet18.trainbn.onnx")))
	var stat string
	for _, n := range p.GetGraph().GetNode() {
		if n.GetOpType() == "BatchNormalization" {
			stat = n.GetOutput()[1]
			break
		}
	}
	p.Graph.Node = append(p.Graph.Node, &onnx.NodeProto{OpType: "Identity", Name: "reader", Input: []string{stat}, Output: []string{"unused"}})
	data, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.MarshalInference(nil); err == nil || !strings.Contains(err.Error(), stat) {
		t.Errorf("error %v, want one naming %q", err, stat)
	}
}

func protoOf(t *testing.T, data []byte) *onnx.ModelProto {
	t.Helper()
	p := &onnx.ModelProto{}
	if err := proto.Unmarshal(data, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteBackHoldsWeightsOnce checks that a parsed model keeps its float32 weights once (the
// file's copy of them is cut out) and still writes the input back byte for byte, on every model
// of testdata the importer takes.
func TestWriteBackHoldsWeightsOnce(t *testing.T) {
	root := runtimetest.RepoRoot(t)
	var files []string
	for _, pat := range []string{"testdata/zoo/*.onnx", "testdata/unleash/*.onnx", "testdata/models/*.onnx"} {
		m, err := filepath.Glob(filepath.Join(root, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	parsed := 0
	for _, f := range files {
		raw := mustRead(t, f)
		m, err := onnxgraph.Parse(raw)
		if err != nil {
			continue // not importable (two_heads, mlp_flat): nothing to write back
		}
		parsed++
		out, err := m.Marshal(nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(out, raw) {
			t.Errorf("%s: Marshal(nil) is not the input file", filepath.Base(f))
		}
		weights := 0
		for _, p := range m.Params {
			weights += 4 * p.Size()
		}
		if held := m.HeldBytes(); held > len(raw)-weights {
			t.Errorf("%s: holds %d bytes of the %d-byte file besides %d bytes of parameters", filepath.Base(f), held, len(raw), weights)
		}
	}
	if parsed < 30 {
		t.Errorf("only %d models parsed", parsed)
	}
}

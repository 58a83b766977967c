package onnxgraph_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"google.golang.org/protobuf/proto"
)

// TestCheckZoo checks that every zoo family's graphs build for unleash and ODIN.
func TestCheckZoo(t *testing.T) {
	for _, fam := range zooFamilies {
		m, err := onnxgraph.Load(filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", fam+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Check(); err != nil {
			t.Errorf("%s: %v", fam, err)
		}
	}
}

// tinyModel returns a serialized model x [N,1,4,4] -> nodes -> GlobalAveragePool -> Flatten -> y.
func tinyModel(t *testing.T, nodes []*onnx.NodeProto, inits []*onnx.TensorProto) []byte {
	t.Helper()
	dim := func(v int64, p string) *onnx.TensorShapeProto_Dimension {
		if p != "" {
			return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: p}}
		}
		return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	vi := func(name string, dims ...*onnx.TensorShapeProto_Dimension) *onnx.ValueInfoProto {
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{Dim: dims}}}}}
	}
	nodes = append(nodes,
		&onnx.NodeProto{Name: "gap", OpType: "GlobalAveragePool", Input: []string{"h"}, Output: []string{"p"}},
		&onnx.NodeProto{Name: "flat", OpType: "Flatten", Input: []string{"p"}, Output: []string{"y"}})
	mp := &onnx.ModelProto{IrVersion: 7, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}, Graph: &onnx.GraphProto{
		Name: "tiny", Node: nodes, Initializer: inits,
		Input:  []*onnx.ValueInfoProto{vi("x", dim(0, "N"), dim(1, ""), dim(4, ""), dim(4, ""))},
		Output: []*onnx.ValueInfoProto{vi("y", dim(0, "N"), dim(1, ""))},
	}}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCheckFindsBuildErrors checks that Check reports what Parse cannot see: here a reflect Pad
// (Parse accepts Pad; only constant padding builds).
func TestCheckFindsBuildErrors(t *testing.T) {
	pads := &onnx.TensorProto{Name: "pads", Dims: []int64{8}, DataType: int32(onnx.TensorProto_INT64), Int64Data: []int64{0, 0, 1, 1, 0, 0, 1, 1}}
	data := tinyModel(t, []*onnx.NodeProto{{Name: "mirror", OpType: "Pad", Input: []string{"x", "pads"}, Output: []string{"h"},
		Attribute: []*onnx.AttributeProto{{Name: "mode", Type: onnx.AttributeProto_STRING, S: []byte("reflect")}}}},
		[]*onnx.TensorProto{pads})
	m, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Check()
	if err == nil || !strings.Contains(err.Error(), `"mirror"`) || !strings.Contains(err.Error(), "reflect") {
		t.Fatalf("Check: %v, want an error naming node mirror and its mode", err)
	}
	t.Log(err)
	// The same model with constant padding builds.
	data = tinyModel(t, []*onnx.NodeProto{{Name: "zeros", OpType: "Pad", Input: []string{"x", "pads"}, Output: []string{"h"}}},
		[]*onnx.TensorProto{pads})
	if m, err = onnxgraph.Parse(data); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Errorf("constant Pad: %v", err)
	}
}

// TestTrainingBatchNormRefused checks that a model exported after model.train() with
// TrainingMode.PRESERVE is recognised and refused for inference with an error that says how to
// export it, and that the eval-mode export of the same model is not.
func TestTrainingBatchNormRefused(t *testing.T) {
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	m, err := onnxgraph.Load(filepath.Join(dir, "resnet18.trainbn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.TrainingBatchNorm) != 20 {
		t.Errorf("%d training-mode BatchNorm nodes, want the 20 of the ResNet", len(m.TrainingBatchNorm))
	}
	for _, check := range []func() error{m.CheckInference, m.Check} {
		err := check()
		if !errors.Is(err, onnxgraph.ErrTrainingBatchNorm) || !strings.Contains(err.Error(), "model.eval()") {
			t.Fatalf("error %v, want ErrTrainingBatchNorm saying to export after model.eval()", err)
		}
	}
	t.Log(m.CheckInference())
	// At opset 17 the exporter marks it with training_mode=1 (and two outputs, not five).
	m, err = onnxgraph.Load(filepath.Join(dir, "densenet.trainbn.op17.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.TrainingBatchNorm) != 16 || !errors.Is(m.CheckInference(), onnxgraph.ErrTrainingBatchNorm) {
		t.Errorf("opset 17: %d training-mode BatchNorm nodes (want the 16 of the DenseNet), CheckInference %v", len(m.TrainingBatchNorm), m.CheckInference())
	}
	m, err = onnxgraph.Load(filepath.Join(dir, "resnet18.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.TrainingBatchNorm) != 0 || m.CheckInference() != nil {
		t.Errorf("eval-mode export: training-mode BatchNorm %v", m.TrainingBatchNorm)
	}
}

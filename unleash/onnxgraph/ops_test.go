package onnxgraph_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"google.golang.org/protobuf/proto"
)

// opModel is a one-op (or few-op) model, x [N,C,H,W] -> nodes -> y [N,K], for checking an op
// against ONNX Runtime.
type opModel struct {
	name     string
	opset    int64
	chw      [3]int64
	k        int64
	nodes    []*onnx.NodeProto
	inits    []*onnx.TensorProto
	positive bool  // feed |x| + 0.5 (Sqrt, fractional Pow)
	batch    int64 // a fixed batch size; 0: dynamic ("N")
}

func node(op string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{Name: op + "_" + out[0], OpType: op, Input: in, Output: out, Attribute: attrs}
}

func attrI(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func attrF(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

func attrIs(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func attrS(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_STRING, S: []byte(v)}
}

func ints(name string, v ...int64) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: []int64{int64(len(v))}, DataType: int32(onnx.TensorProto_INT64), Int64Data: v}
}

func floats(name string, dims []int64, v ...float32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: v}
}

func boolScalar(name string, v bool) *onnx.TensorProto {
	b := int32(0)
	if v {
		b = 1
	}
	return &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_BOOL), Int32Data: []int32{b}}
}

// gapFlatten ends a chain at h [N,C,H,W] with global average pooling and flattening into y.
func gapFlatten(h string) []*onnx.NodeProto {
	return []*onnx.NodeProto{node("GlobalAveragePool", []string{h}, []string{"gap"}), node("Flatten", []string{"gap"}, []string{"y"})}
}

func (c opModel) marshal(t *testing.T) []byte {
	t.Helper()
	dim := func(v int64) *onnx.TensorShapeProto_Dimension {
		if v < 0 {
			return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
		}
		return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	vi := func(name string, dims ...int64) *onnx.ValueInfoProto {
		var ds []*onnx.TensorShapeProto_Dimension
		for _, d := range dims {
			ds = append(ds, dim(d))
		}
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{Dim: ds}}}}}
	}
	batch := int64(-1)
	if c.batch > 0 {
		batch = c.batch
	}
	mp := &onnx.ModelProto{IrVersion: 8, OpsetImport: []*onnx.OperatorSetIdProto{{Version: c.opset}}, Graph: &onnx.GraphProto{
		Name: c.name, Node: c.nodes, Initializer: c.inits,
		Input:  []*onnx.ValueInfoProto{vi("x", batch, c.chw[0], c.chw[1], c.chw[2])},
		Output: []*onnx.ValueInfoProto{vi("y", batch, c.k)},
	}}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func opModels() []opModel {
	chw := [3]int64{3, 6, 4}
	act := func(name string, opset int64, n *onnx.NodeProto, inits ...*onnx.TensorProto) opModel {
		return opModel{name: name, opset: opset, chw: chw, k: 3, nodes: append([]*onnx.NodeProto{n}, gapFlatten("h")...), inits: inits}
	}
	return []opModel{
		act("Gelu", 20, node("Gelu", []string{"x"}, []string{"h"})),
		act("Gelu-tanh", 20, node("Gelu", []string{"x"}, []string{"h"}, attrS("approximate", "tanh"))),
		act("LeakyRelu", 13, node("LeakyRelu", []string{"x"}, []string{"h"}, attrF("alpha", 0.1))),
		act("Tanh", 13, node("Tanh", []string{"x"}, []string{"h"})),
		act("Erf", 13, node("Erf", []string{"x"}, []string{"h"})),
		act("Sigmoid", 13, node("Sigmoid", []string{"x"}, []string{"h"})),
		act("HardSwish", 14, node("HardSwish", []string{"x"}, []string{"h"})),
		act("HardSigmoid", 13, node("HardSigmoid", []string{"x"}, []string{"h"}, attrF("alpha", 0.3), attrF("beta", 0.4))),
		act("Clip-min", 13, node("Clip", []string{"x", "lo"}, []string{"h"}), floats("lo", nil, -0.2)),
		act("Clip-max", 13, node("Clip", []string{"x", "", "hi"}, []string{"h"}), floats("hi", nil, 0.3)),
		act("Clip-attr", 6, node("Clip", []string{"x"}, []string{"h"}, attrF("min", -0.5), attrF("max", 0.5))),
		act("Dropout-inference", 13, node("Dropout", []string{"x", "ratio", "train"}, []string{"h"}), floats("ratio", nil, 0.5), boolScalar("train", false)),
		act("Cast-float", 13, node("Cast", []string{"x"}, []string{"h"}, attrI("to", int64(onnx.TensorProto_FLOAT)))),
		{name: "GlobalMaxPool", opset: 13, chw: chw, k: 3, nodes: []*onnx.NodeProto{
			node("GlobalMaxPool", []string{"x"}, []string{"p"}), node("Flatten", []string{"p"}, []string{"y"})}},
		{name: "ReduceMax-attr", opset: 13, chw: chw, k: 3, nodes: []*onnx.NodeProto{
			node("ReduceMax", []string{"x"}, []string{"y"}, attrIs("axes", 2, 3), attrI("keepdims", 0))}},
		{name: "ReduceMin-keepdims", opset: 13, chw: chw, k: 3, nodes: []*onnx.NodeProto{
			node("ReduceMin", []string{"x"}, []string{"p"}, attrIs("axes", -1, -2)), node("Flatten", []string{"p"}, []string{"y"})}},
		{name: "ReduceSum-input", opset: 13, chw: chw, k: 3, inits: []*onnx.TensorProto{ints("axes", 2, 3)}, nodes: []*onnx.NodeProto{
			node("ReduceSum", []string{"x", "axes"}, []string{"y"}, attrI("keepdims", 0))}},
		{name: "ReduceMean-opset18", opset: 18, chw: chw, k: 3, inits: []*onnx.TensorProto{ints("axes", -1, 2)}, nodes: []*onnx.NodeProto{
			node("ReduceMean", []string{"x", "axes"}, []string{"y"}, attrI("keepdims", 0))}},
		{name: "Split-sizes", opset: 13, chw: chw, k: 3, inits: []*onnx.TensorProto{ints("sizes", 1, 2)}, nodes: append([]*onnx.NodeProto{
			node("Split", []string{"x", "sizes"}, []string{"a", "b"}, attrI("axis", 1)),
			node("Relu", []string{"b"}, []string{"rb"}),
			node("Concat", []string{"rb", "a"}, []string{"h"}, attrI("axis", 1))}, gapFlatten("h")...)},
		{name: "Split-num-outputs", opset: 18, chw: chw, k: 3, nodes: append([]*onnx.NodeProto{
			node("Split", []string{"x"}, []string{"s0", "s1", "s2"}, attrI("axis", 2), attrI("num_outputs", 3)),
			node("Mul", []string{"s0", "s2"}, []string{"m"}),
			node("Concat", []string{"m", "s1"}, []string{"h"}, attrI("axis", -1))}, gapFlatten("h")...)},
		{name: "Slice-steps", opset: 13, chw: chw, k: 3,
			inits: []*onnx.TensorProto{ints("starts", 1, -3), ints("ends", 100, -1), ints("axes", 2, 3), ints("steps", 2, 1)},
			nodes: append([]*onnx.NodeProto{node("Slice", []string{"x", "starts", "ends", "axes", "steps"}, []string{"h"})}, gapFlatten("h")...)},
		{name: "Transpose-Squeeze-Unsqueeze", opset: 13, chw: chw, k: 3,
			inits: []*onnx.TensorProto{ints("sq", 1, 2), ints("unsq", 2)},
			nodes: []*onnx.NodeProto{
				node("Transpose", []string{"x"}, []string{"t"}, attrIs("perm", 0, 2, 3, 1)),
				node("ReduceMean", []string{"t"}, []string{"r"}, attrIs("axes", 1, 2)),
				node("Squeeze", []string{"r", "sq"}, []string{"s"}),
				node("Unsqueeze", []string{"s", "unsq"}, []string{"u"}),
				node("Flatten", []string{"u"}, []string{"y"})}},
		{name: "Sqrt-Pow", opset: 13, chw: chw, k: 3, positive: true,
			inits: []*onnx.TensorProto{floats("e", nil, 1.5)},
			nodes: append([]*onnx.NodeProto{
				node("Sqrt", []string{"x"}, []string{"s"}),
				node("Pow", []string{"s", "e"}, []string{"h"})}, gapFlatten("h")...)},
		{name: "LayerNormalization", opset: 17, chw: chw, k: 3,
			inits: []*onnx.TensorProto{floats("scale", []int64{4}, 0.9, 1.1, 1.2, 0.8), floats("bias", []int64{4}, 0.1, -0.2, 0.05, 0)},
			nodes: append([]*onnx.NodeProto{
				node("LayerNormalization", []string{"x", "scale", "bias"}, []string{"h"}, attrI("axis", -1), attrF("epsilon", 1e-5))}, gapFlatten("h")...)},
	}
}

// TestOpsMatchORT builds small models of the ops the zoo does not cover (or covers at one
// opset only) and checks, on both backends, the logits against ONNX Runtime's and the input
// gradient of sum(y*r) against central differences of ONNX Runtime's logits.
func TestOpsMatchORT(t *testing.T) {
	backends := bothBackends(t)
	for _, c := range opModels() {
		t.Run(c.name, func(t *testing.T) {
			data := c.marshal(t)
			m, err := onnxgraph.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Check(); err != nil {
				t.Fatal(err)
			}
			n, size := 2, int(c.chw[0]*c.chw[1]*c.chw[2])
			x := randomInput(n, size, 5)
			if c.positive {
				for i := range x {
					x[i] = float32(math.Abs(float64(x[i]))) + 0.5
				}
			}
			r := randomInput(n, int(c.k), 6)
			want := ortLogits(t, data, x, n)
			loss := func(x []float32) float64 {
				z := ortLogits(t, data, x, n)
				s := 0.0
				for i := range z {
					s += float64(z[i]) * float64(r[i])
				}
				return s
			}
			// Central differences at a few inputs, in float32 through ONNX Runtime.
			rng := rand.New(rand.NewPCG(7, 7))
			const h = 1e-2
			idx := make([]int, 12)
			fd := make([]float64, len(idx))
			for j := range idx {
				idx[j] = rng.IntN(len(x))
				xp, xm := append([]float32(nil), x...), append([]float32(nil), x...)
				xp[idx[j]] += h
				xm[idx[j]] -= h
				fd[j] = (loss(xp) - loss(xm)) / (2 * h)
			}
			for _, b := range backends {
				exec, err := graph.NewExec(b.be, func(xn, rn *graph.Node) []*graph.Node {
					y, _ := m.Build(xn, nil, onnxgraph.Inference)
					return []*graph.Node{y, graph.Gradient(graph.ReduceAllSum(graph.Mul(y, rn)), xn)[0]}
				})
				if err != nil {
					t.Fatal(err)
				}
				out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, int(c.chw[0]), int(c.chw[1]), int(c.chw[2])),
					tensors.FromFlatDataAndDimensions(r, n, int(c.k)))
				exec.Finalize()
				if err != nil {
					t.Fatal(err)
				}
				got := tensors.MustCopyFlatData[float32](out[0])
				if e := maxRelErr(got, want); e > 1e-5 {
					t.Errorf("%s backend: logits differ from ONNX Runtime's by %.3g relative", b.name, e)
				}
				grad := tensors.MustCopyFlatData[float32](out[1])
				scale, worst := 1e-30, 0.0
				for _, v := range fd {
					scale = math.Max(scale, math.Abs(v))
				}
				for j, i := range idx {
					worst = math.Max(worst, math.Abs(float64(grad[i])-fd[j])/scale)
				}
				if worst > 2e-3 {
					t.Errorf("%s backend: input gradient differs from central differences by %.3g relative", b.name, worst)
				}
			}
		})
	}
}

// TestFixedBatch checks a model whose input fixes the batch size at 1: it builds and matches ONNX
// Runtime at batch 1, and any other batch is refused with an error that says what to do.
func TestFixedBatch(t *testing.T) {
	c := opModel{name: "fixed", opset: 13, chw: [3]int64{3, 6, 4}, k: 3, batch: 1,
		nodes: append([]*onnx.NodeProto{node("Relu", []string{"x"}, []string{"h"})}, gapFlatten("h")...)}
	data := c.marshal(t)
	m, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Batch != 1 {
		t.Fatalf("Batch %d, want 1", m.Batch)
	}
	b := backend(t)
	x := randomInput(1, 3*6*4, 3)
	if e := maxRelErr(gomlxLogits(t, b, m, x, 1), ortLogits(t, data, x, 1)); e > 1e-6 {
		t.Errorf("batch 1: logits differ from ONNX Runtime's by %.3g", e)
	}
	exec, err := graph.NewExec(b, func(x *graph.Node) *graph.Node {
		y, _ := m.Build(x, nil, onnxgraph.Inference)
		return y
	})
	if err == nil {
		_, err = exec.Call(tensors.FromFlatDataAndDimensions(randomInput(2, 3*6*4, 3), 2, 3, 6, 4))
		exec.Finalize()
	}
	if err == nil || !strings.Contains(err.Error(), "fixed batch size of 1") || !strings.Contains(err.Error(), "-batch 1") {
		t.Errorf("batch 2: error %v, want one about the fixed batch size and -batch 1", err)
	}
	// Check builds at the fixed batch: training-mode BatchNorm would need more than one image,
	// but this model has none.
	if err := m.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"

	rt "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

type tinyOpts struct {
	last          string // "Gemm" (default), "MatMulAdd", "Relu"
	biasFirst     bool   // Add(bias, MatMul) instead of Add(MatMul, bias)
	weightAsInput bool   // the Gemm weight is a graph input
	opset         int64  // default 13
	fixedBatch    int64  // a fixed batch size instead of the dynamic "N"
}

// tinyModel builds input [N,4] → Relu → feat → a final layer with 3 classes → logits.
func tinyModel(t testing.TB, o tinyOpts) []byte {
	t.Helper()
	if o.opset == 0 {
		o.opset = 13
	}
	vi := func(name string, dims ...int64) *onnx.ValueInfoProto {
		batch := &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
		if o.fixedBatch > 0 {
			batch = &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: o.fixedBatch}}
		}
		shape := &onnx.TensorShapeProto{Dim: []*onnx.TensorShapeProto_Dimension{batch}}
		for _, d := range dims {
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: shape}}}}
	}
	tensor := func(name string, dims []int64, v []float32) *onnx.TensorProto {
		return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: v}
	}
	g := &onnx.GraphProto{Name: "tiny", Input: []*onnx.ValueInfoProto{vi("input", 4)}, Output: []*onnx.ValueInfoProto{vi("logits", 3)}}
	g.Node = append(g.Node, &onnx.NodeProto{OpType: "Relu", Input: []string{"input"}, Output: []string{"feat"}})
	wKD := make([]float32, 12) // [K=3, D=4]
	wDK := make([]float32, 12) // [D=4, K=3]
	for k := 0; k < 3; k++ {
		for j := 0; j < 4; j++ {
			wKD[k*4+j] = float32(10*j + k)
			wDK[j*3+k] = float32(10*j + k)
		}
	}
	bias := tensor("b", []int64{3}, []float32{-1, 0, 1})
	switch o.last {
	case "", "Gemm":
		g.Node = append(g.Node, &onnx.NodeProto{OpType: "Gemm", Input: []string{"feat", "w", "b"}, Output: []string{"logits"},
			Attribute: []*onnx.AttributeProto{{Name: "transB", Type: onnx.AttributeProto_INT, I: 1}}})
		g.Initializer = append(g.Initializer, bias)
		if o.weightAsInput {
			g.Input = append(g.Input, &onnx.ValueInfoProto{Name: "w"})
		} else {
			g.Initializer = append(g.Initializer, tensor("w", []int64{3, 4}, wKD))
		}
	case "MatMulAdd":
		add := []string{"mm", "b"}
		if o.biasFirst {
			add = []string{"b", "mm"}
		}
		g.Node = append(g.Node,
			&onnx.NodeProto{OpType: "MatMul", Input: []string{"feat", "w"}, Output: []string{"mm"}},
			&onnx.NodeProto{OpType: "Add", Input: add, Output: []string{"logits"}})
		g.Initializer = append(g.Initializer, tensor("w", []int64{4, 3}, wDK), bias)
	case "Relu":
		g.Node = append(g.Node, &onnx.NodeProto{OpType: "Relu", Input: []string{"feat"}, Output: []string{"logits"}})
	}
	ir := int64(7)
	if o.opset > 13 {
		ir = 10
	}
	m := &onnx.ModelProto{IrVersion: ir, OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: o.opset}}, Graph: g}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTinyMatMulHead writes the shaping and feature detectors into the MatMul + Add model (the
// weight stored [D, K]) at several opsets and checks ONNX Runtime's scores against the host-side
// ones.
func TestTinyMatMulHead(t *testing.T) {
	for _, opset := range []int64{13, 18, 21} {
		t.Run(fmt.Sprintf("opset%d", opset), func(t *testing.T) { testTinyMatMulHead(t, opset) })
	}
}

func testTinyMatMulHead(t *testing.T, opset int64) {
	data := tinyModel(t, tinyOpts{last: "MatMulAdd", biasFirst: true, opset: opset})
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200
	x := make([]float32, n*4)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		if i%4 == 0 { // one positive feature per row: ASH-S divides by the kept sum
			x[i] = float32(math.Abs(float64(x[i])) + 0.1)
		}
	}
	feats := make([]float32, len(x)) // Relu
	for i, v := range x {
		feats[i] = max(v, 0)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 3
	}
	f, err := Fit(&m.Head, func(yield func([]float32, []int) error) error { return yield(feats, labels) }, FitOptions{BankSize: 64, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	withF, err := m.WithFeatures()
	if err != nil {
		t.Fatal(err)
	}
	got := runORT(t, withF, x, []int64{n, 4}, "logits", FeaturesOutput)
	checkClose(t, "features", f64(got[1]), f64(feats), 0)
	checkClose(t, "logits", f64(got[0]), m.Head.LogitsOf(feats, n), 1e-4)

	react, _ := f.ReAct(80)
	ashS, _ := NewASH(&m.Head, ASHS, 50)
	ashB, _ := NewASH(&m.Head, ASHB, 50)
	dice, _ := f.DICE(50)
	vim, _ := f.ViM(1)
	mds, err := f.Mahalanobis()
	if err != nil {
		t.Fatal(err)
	}
	knn, _ := f.KNN(3)
	for _, d := range []Detector{react, ashS, ashB, dice, vim, mds, knn} {
		want, err := d.Score(feats, n)
		if err != nil {
			t.Fatal(err)
		}
		g, err := m.Write(d)
		if err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		var score []float64
		if d.Shaping() {
			z := runORT(t, g, x, []int64{n, 4}, "logits")[0]
			for r := 0; r < n; r++ {
				score = append(score, logsumexp(f64(z[r*3:(r+1)*3])))
			}
		} else {
			score = f64(runORT(t, g, x, []int64{n, 4}, ScoreOutput)[0])
		}
		checkClose(t, d.Name(), score, want, graphTol(want))
	}
	// The sample is tiny and Relu zeroes many features: ASH's ties among zeros must not
	// change anything, and DICE must have zeroed weights in the [D, K] layout.
	if k := dice.Kept(); k == 0 || k == 12 {
		t.Errorf("DICE p=50 keeps %d of 12 weights", k)
	}
	if math.IsNaN(vim.Alpha) {
		t.Error("ViM alpha is NaN")
	}
}

// TestExtractorFixedBatch: a model exported with a fixed batch size runs in batches of that
// size only, and says so for any other.
func TestExtractorFixedBatch(t *testing.T) {
	m, err := Parse(tinyModel(t, tinyOpts{fixedBatch: 4}))
	if err != nil {
		t.Fatal(err)
	}
	runtimetest.Setup(t)
	if _, err := m.NewExtractor(10, rt.Options{}); err == nil {
		t.Fatal("batches of 10 accepted for a model fixed at 4")
	} else {
		t.Log(err)
	}
	x, err := m.NewExtractor(4, rt.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	in := []float32{1, -2, 3, -4, 0, 5, -1, 2, 7, 7, -7, 0, -3, -3, 1, 1}
	copy(x.Input(), in)
	logits, feats, err := x.Run()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range in {
		if want := max(v, 0); feats[i] != want {
			t.Fatalf("feature %d: %v, want %v", i, feats[i], want)
		}
	}
	checkClose(t, "logits", f64(logits), m.Head.LogitsOf(feats, 4), 1e-4)
}

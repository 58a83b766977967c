package detect

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// editor changes a copy of a model's graph.
type editor struct {
	m     *Model
	mp    *onnx.ModelProto
	g     *onnx.GraphProto
	head  *onnx.NodeProto // the copy's final linear node
	feat  string          // the features the final linear node reads, shaped or not
	names map[string]bool
	pre   []*onnx.NodeProto // nodes to insert just before the head node
	post  []*onnx.NodeProto // nodes to append at the end
}

func (m *Model) edit() (*editor, error) {
	mp, ok := proto.Clone(m.proto).(*onnx.ModelProto)
	if !ok {
		return nil, fmt.Errorf("%w: cannot copy the model", ErrUnsupported)
	}
	e := &editor{m: m, mp: mp, g: mp.GetGraph(), names: map[string]bool{}, feat: m.Head.Features}
	idx := -1
	for i, n := range m.proto.GetGraph().GetNode() {
		if n == m.Head.node {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: the final linear node is gone from the graph", ErrUnsupported)
	}
	e.head = e.g.GetNode()[idx]
	for _, n := range e.g.GetNode() {
		e.names[n.GetName()] = true
		for _, s := range n.GetOutput() {
			e.names[s] = true
		}
	}
	for _, t := range e.g.GetInitializer() {
		e.names[t.GetName()] = true
	}
	for _, v := range e.g.GetInput() {
		e.names[v.GetName()] = true
	}
	return e, nil
}

// name returns a fresh tensor or node name starting with "ood_".
func (e *editor) name(base string) string {
	s := "ood_" + base
	for i := 1; e.names[s]; i++ {
		s = fmt.Sprintf("ood_%s_%d", base, i)
	}
	e.names[s] = true
	return s
}

// initF32 adds a float32 initializer.
func (e *editor) initF32(base string, dims []int64, data []float32) string {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	name := e.name(base)
	e.g.Initializer = append(e.g.Initializer, &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw})
	return name
}

// initF64 adds a float32 initializer from float64 values.
func (e *editor) initF64(base string, dims []int64, data []float64) string {
	f := make([]float32, len(data))
	for i, v := range data {
		f[i] = float32(v)
	}
	return e.initF32(base, dims, f)
}

// initI64 adds an int64 initializer.
func (e *editor) initI64(base string, dims []int64, data ...int64) string {
	name := e.name(base)
	e.g.Initializer = append(e.g.Initializer, &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_INT64), Int64Data: data})
	return name
}

type attribute func() *onnx.AttributeProto

func aInt(name string, v int64) attribute {
	return func() *onnx.AttributeProto {
		return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
	}
}

// op adds a node with one output to the pre (before the head) or post (end) list and returns
// its output.
func (e *editor) op(before bool, opType string, inputs []string, attrs ...attribute) string {
	out := e.name(opType)
	e.opOut(before, opType, inputs, []string{out}, attrs...)
	return out
}

func (e *editor) opOut(before bool, opType string, inputs, outputs []string, attrs ...attribute) {
	n := &onnx.NodeProto{Name: e.name(opType + "_node"), OpType: opType, Input: inputs, Output: outputs}
	for _, a := range attrs {
		n.Attribute = append(n.Attribute, a())
	}
	if before {
		e.pre = append(e.pre, n)
	} else {
		e.post = append(e.post, n)
	}
}

// output declares a float32 graph output [N, dims...] with the logits' batch dimension.
func (e *editor) output(name string, dims ...int64) {
	shape := &onnx.TensorShapeProto{}
	batch := e.m.batch
	if batch == nil {
		batch = &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	}
	shape.Dim = append(shape.Dim, proto.Clone(batch).(*onnx.TensorShapeProto_Dimension))
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	e.g.Output = append(e.g.Output, &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: shape}}}})
}

// marshal places the new nodes and encodes the model.
func (e *editor) marshal() ([]byte, error) {
	var nodes []*onnx.NodeProto
	for _, n := range e.g.GetNode() {
		if n == e.head {
			nodes = append(nodes, e.pre...)
		}
		nodes = append(nodes, n)
	}
	e.g.Node = append(nodes, e.post...)
	data, err := proto.Marshal(e.mp)
	if err != nil {
		return nil, fmt.Errorf("detect: encode the model: %w", err)
	}
	return data, nil
}

// WithFeatures returns a copy of the model that also outputs the penultimate features as
// FeaturesOutput, [N, D], after the logits: one run gives both.
func (m *Model) WithFeatures() ([]byte, error) {
	e, err := m.edit()
	if err != nil {
		return nil, err
	}
	if e.names[FeaturesOutput] {
		return nil, fmt.Errorf("%w: the model already has a tensor named %q", ErrUnsupported, FeaturesOutput)
	}
	e.names[FeaturesOutput] = true
	e.opOut(false, "Identity", []string{m.Head.Features}, []string{FeaturesOutput})
	e.output(FeaturesOutput, int64(m.Head.Dim))
	return e.marshal()
}

// Write returns a copy of the model with the detector written into its graph: a shaping
// detector changes the logits; a feature detector adds the output ScoreOutput, [N].
func (m *Model) Write(d Detector) ([]byte, error) {
	if d == nil {
		return nil, fmt.Errorf("detect: no detector")
	}
	if h := d.headOf(); h == nil || h.Dim != m.Head.Dim || h.Classes != m.Head.Classes {
		return nil, fmt.Errorf("detect: write %s: it was fitted on another model's features", d.Name())
	}
	e, err := m.edit()
	if err != nil {
		return nil, err
	}
	if err := d.write(e); err != nil {
		return nil, fmt.Errorf("detect: write %s: %w", d.Name(), err)
	}
	rec, err := json.Marshal(d.Spec())
	if err != nil {
		return nil, fmt.Errorf("detect: write %s: %w", d.Name(), err)
	}
	e.setMetadata(MetadataName, d.Name())
	e.setMetadata(MetadataSpec, string(rec))
	return e.marshal()
}

// Keys of the model metadata (metadata_props) that Write records the detector under, so that a
// tool that calibrates the written model (oodguard calibrate) can record it too.
const (
	MetadataName = "oodguard.detector.name" // Detector.Name
	MetadataSpec = "oodguard.detector.spec" // Detector.Spec as JSON
)

// setMetadata sets the model metadata key to value, replacing an earlier one (a model written
// from a written model records the last detector).
func (e *editor) setMetadata(key, value string) {
	for _, p := range e.mp.GetMetadataProps() {
		if p.GetKey() == key {
			p.Value = value
			return
		}
	}
	e.mp.MetadataProps = append(e.mp.MetadataProps, &onnx.StringStringEntryProto{Key: key, Value: value})
}

// setFeatures makes x the (shaped) features that the final linear node reads and that the next
// shaping step shapes.
func (e *editor) setFeatures(x string) {
	e.feat = x
	e.head.Input[0] = x
}

// reduceSum sums x over axis, keeping it.
func (e *editor) reduceSum(before bool, x string, axis int64) string {
	return e.op(before, "ReduceSum", []string{x, e.initI64("axes", []int64{1}, axis)}, aInt("keepdims", 1))
}

// energy returns logsumexp of the logits over the classes, [N, 1], as max + log Σ exp(z - max).
func (e *editor) energy(logits string) string {
	m := e.topK(false, logits, 1, true)
	z := e.op(false, "Sub", []string{logits, m})
	s := e.reduceSum(false, e.op(false, "Exp", []string{z}), 1)
	return e.op(false, "Add", []string{m, e.op(false, "Log", []string{s})})
}

// topK returns the k largest (or smallest) values of x along axis 1, sorted.
func (e *editor) topK(before bool, x string, k int64, largest bool) string {
	v, _ := e.topKIdx(before, x, k, largest)
	return v
}

func (e *editor) topKIdx(before bool, x string, k int64, largest bool) (string, string) {
	l := int64(0)
	if largest {
		l = 1
	}
	v, i := e.name("topk_values"), e.name("topk_indices")
	e.opOut(before, "TopK", []string{x, e.initI64("k", []int64{1}, k)}, []string{v, i}, aInt("axis", 1), aInt("largest", l), aInt("sorted", 1))
	return v, i
}

// scoreOutput names s, [N, 1], as the graph output ScoreOutput, [N].
func (e *editor) scoreOutput(s string) error {
	if e.names[ScoreOutput] {
		return fmt.Errorf("%w: the model already has a tensor named %q", ErrUnsupported, ScoreOutput)
	}
	e.names[ScoreOutput] = true
	e.opOut(false, "Squeeze", []string{s, e.initI64("axes", []int64{1}, 1)}, []string{ScoreOutput})
	e.output(ScoreOutput)
	return nil
}

// HeadOnly returns the model's final linear layer as a model of its own: input FeaturesOutput
// [N, D], one Gemm, output the logits (the weights folded to alpha = beta = 1). A detector
// fitted on m, written into it, maps features to its score: a caller that extracted the
// features once (Extractor) can score many detectors under ONNX Runtime without running the
// network again, with the same float32 ops as the device.
func (m *Model) HeadOnly() (*Model, error) {
	h := m.Head
	vi := func(name string, dim int64) *onnx.ValueInfoProto {
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{Dim: []*onnx.TensorShapeProto_Dimension{
				{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
				{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: dim}}}}}}}}
	}
	f32 := func(name string, dims []int64, v []float64) *onnx.TensorProto {
		raw := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(x)))
		}
		return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw}
	}
	g := &onnx.GraphProto{
		Name:   "head",
		Input:  []*onnx.ValueInfoProto{vi(FeaturesOutput, int64(h.Dim))},
		Output: []*onnx.ValueInfoProto{vi(h.Logits, int64(h.Classes))},
		Initializer: []*onnx.TensorProto{
			f32("head_weight", []int64{int64(h.Classes), int64(h.Dim)}, h.W),
			f32("head_bias", []int64{int64(h.Classes)}, h.B),
		},
		Node: []*onnx.NodeProto{{Name: "head", OpType: "Gemm", Input: []string{FeaturesOutput, "head_weight", "head_bias"}, Output: []string{h.Logits},
			Attribute: []*onnx.AttributeProto{{Name: "transB", Type: onnx.AttributeProto_INT, I: 1}}}},
	}
	mp := &onnx.ModelProto{IrVersion: m.proto.GetIrVersion(), ProducerName: "oodguard detect",
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: m.opset}}, Graph: g}
	data, err := proto.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("detect: encode the head: %w", err)
	}
	return Parse(data)
}

package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// MinOpset is the oldest ONNX opset of the default domain that the written graphs support: the
// ops they add (ReduceSum, Squeeze and Unsqueeze with axes as inputs) have their opset-13 form,
// unchanged since.
const MinOpset = 13

// Names of the graph outputs that Model adds.
const (
	FeaturesOutput = "ood_features" // the penultimate features, [N, D] (WithFeatures)
	ScoreOutput    = "ood_score"    // a feature method's score, [N], higher = more ID
)

var (
	// ErrNoHead reports a model whose logits are not made by a final linear layer with constant
	// weights (Gemm, or MatMul with an optional Add of a constant bias).
	ErrNoHead = errors.New("no final linear layer")
	// ErrUnsupported reports a model that the package cannot rewrite (opset, storage, outputs).
	ErrUnsupported = errors.New("unsupported model")
)

// Head is a classifier's final linear layer: logits = features · Wᵀ + B.
type Head struct {
	Features string    // the tensor holding the penultimate features, [N, Dim]
	Logits   string    // the graph output holding the logits, [N, Classes]
	Dim      int       // feature dimension D
	Classes  int       // number of classes K
	W        []float64 // K×D row-major, Gemm's alpha folded in
	B        []float64 // K, Gemm's beta folded in; zeros when the layer has no bias

	node      *onnx.NodeProto // the Gemm or MatMul
	weight    string          // its weight initializer
	weightKxD bool            // the initializer is stored [K, D] (Gemm transB=1), else [D, K]
	alpha     float64         // Gemm's alpha (1 for MatMul)
}

// LogitsOf computes the head's logits of n feature vectors in float64.
func (h *Head) LogitsOf(feats []float32, n int) []float64 {
	out := make([]float64, n*h.Classes)
	for i := 0; i < n; i++ {
		f := feats[i*h.Dim : (i+1)*h.Dim]
		for k := 0; k < h.Classes; k++ {
			w := h.W[k*h.Dim : (k+1)*h.Dim]
			s := h.B[k]
			for j, v := range f {
				s += w[j] * float64(v)
			}
			out[i*h.Classes+k] = s
		}
	}
	return out
}

// Model is an ONNX classifier whose final linear layer has been found.
type Model struct {
	proto *onnx.ModelProto
	opset int64
	batch *onnx.TensorShapeProto_Dimension // the logits' batch dimension, for new outputs
	Head  Head
}

// Load reads and parses the ONNX classifier at path.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("detect: model %s: %w", path, err)
	}
	return m, nil
}

// Parse parses an ONNX classifier with one output (the logits) and finds its final linear layer:
// the Gemm, or MatMul plus an optional Add of a constant, that makes the logits (through
// Identity nodes), with a constant weight. Its first input is the penultimate features.
func Parse(data []byte) (*Model, error) {
	mp := &onnx.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	g := mp.GetGraph()
	if g == nil {
		return nil, fmt.Errorf("%w: the model has no graph", ErrUnsupported)
	}
	m := &Model{proto: mp}
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			m.opset = o.GetVersion()
		}
	}
	if m.opset < MinOpset {
		return nil, fmt.Errorf("%w: opset %d of the default domain; the detectors need opset %d or newer (re-export the model)", ErrUnsupported, m.opset, MinOpset)
	}
	if n := len(g.GetOutput()); n != 1 {
		return nil, fmt.Errorf("%w: the model has %d outputs, want 1 (the logits)", ErrUnsupported, n)
	}
	out := g.GetOutput()[0]
	if dims := out.GetType().GetTensorType().GetShape().GetDim(); len(dims) == 2 {
		m.batch = dims[0]
	}
	h, err := findHead(g, out.GetName())
	if err != nil {
		return nil, err
	}
	m.Head = *h
	return m, nil
}

// Opset returns the model's opset of the default domain.
func (m *Model) Opset() int64 { return m.opset }

func findHead(g *onnx.GraphProto, logits string) (*Head, error) {
	producer := map[string]*onnx.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	consts := constants(g)
	name := logits
	n := producer[name]
	for hops := 0; n != nil && n.GetOpType() == "Identity" && len(n.GetInput()) == 1; hops++ {
		if hops > len(g.GetNode()) {
			return nil, fmt.Errorf("%w: a cycle of Identity nodes before the logits %q", ErrUnsupported, logits)
		}
		name = n.GetInput()[0]
		n = producer[name]
	}
	if n == nil {
		return nil, fmt.Errorf("%w: the logits %q are not made by any node", ErrNoHead, logits)
	}
	h := &Head{Logits: logits, alpha: 1}
	var bias *onnx.TensorProto
	switch n.GetOpType() {
	case "Gemm":
		if attrInt(n, "transA", 0) != 0 {
			return nil, fmt.Errorf("%w: Gemm %q has transA=1", ErrNoHead, nodeName(n))
		}
		h.weightKxD = attrInt(n, "transB", 0) == 1
		h.alpha = attrFloat(n, "alpha", 1)
		if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
			if bias = consts[n.GetInput()[2]]; bias == nil {
				return nil, fmt.Errorf("%w: the bias %q of Gemm %q is not a constant", ErrNoHead, n.GetInput()[2], nodeName(n))
			}
		}
		h.node = n
	case "Add":
		in := n.GetInput()
		var mm *onnx.NodeProto
		for i := 0; i < 2 && i < len(in); i++ {
			if p := producer[in[i]]; p != nil && p.GetOpType() == "MatMul" && consts[in[1-i]] != nil {
				mm, bias = p, consts[in[1-i]]
			}
		}
		if mm == nil {
			return nil, fmt.Errorf("%w: the logits %q are made by Add %q, not by MatMul + a constant bias", ErrNoHead, logits, nodeName(n))
		}
		h.node = mm
	case "MatMul":
		h.node = n
	default:
		return nil, fmt.Errorf("%w: the logits %q are made by %s %q; want Gemm or MatMul (+ Add) with a constant weight (a classifier that ends in a convolution, as SqueezeNet does, or in an op after the last linear layer is not supported)", ErrNoHead, logits, n.GetOpType(), nodeName(n))
	}
	if len(h.node.GetInput()) < 2 || h.node.GetInput()[0] == "" {
		return nil, fmt.Errorf("%w: %s %q has %d inputs", ErrNoHead, h.node.GetOpType(), nodeName(h.node), len(h.node.GetInput()))
	}
	h.Features = h.node.GetInput()[0]
	h.weight = h.node.GetInput()[1]
	wt := consts[h.weight]
	if wt == nil {
		return nil, fmt.Errorf("%w: the weight %q of %s %q is not a constant", ErrNoHead, h.weight, h.node.GetOpType(), nodeName(h.node))
	}
	if _, isInit := initializer(g, h.weight); !isInit {
		return nil, fmt.Errorf("%w: the weight %q of %s %q is a Constant node, not an initializer", ErrUnsupported, h.weight, h.node.GetOpType(), nodeName(h.node))
	}
	w, err := floats(wt)
	if err != nil {
		return nil, fmt.Errorf("%w: weight %q: %v", ErrUnsupported, h.weight, err)
	}
	dims := wt.GetDims()
	if len(dims) != 2 {
		return nil, fmt.Errorf("%w: the weight %q has shape %v, want 2-D", ErrNoHead, h.weight, dims)
	}
	if h.weightKxD {
		h.Classes, h.Dim = int(dims[0]), int(dims[1])
	} else {
		h.Dim, h.Classes = int(dims[0]), int(dims[1])
	}
	if h.Classes < 2 || h.Dim < 1 {
		return nil, fmt.Errorf("%w: the final layer maps %d features to %d classes", ErrNoHead, h.Dim, h.Classes)
	}
	h.W = make([]float64, h.Classes*h.Dim)
	for k := 0; k < h.Classes; k++ {
		for j := 0; j < h.Dim; j++ {
			v := w[j*h.Classes+k]
			if h.weightKxD {
				v = w[k*h.Dim+j]
			}
			h.W[k*h.Dim+j] = h.alpha * float64(v)
		}
	}
	h.B = make([]float64, h.Classes)
	if bias != nil {
		b, err := floats(bias)
		if err != nil {
			return nil, fmt.Errorf("%w: bias %q: %v", ErrUnsupported, bias.GetName(), err)
		}
		beta := 1.0
		if n.GetOpType() == "Gemm" {
			beta = attrFloat(n, "beta", 1)
		}
		switch len(b) {
		case h.Classes:
			for k := range h.B {
				h.B[k] = beta * float64(b[k])
			}
		case 1:
			for k := range h.B {
				h.B[k] = beta * float64(b[0])
			}
		default:
			return nil, fmt.Errorf("%w: the bias %q has %d values for %d classes", ErrNoHead, bias.GetName(), len(b), h.Classes)
		}
	}
	return h, nil
}

// constants maps the names of float initializers and Constant node outputs to their tensors.
func constants(g *onnx.GraphProto) map[string]*onnx.TensorProto {
	c := map[string]*onnx.TensorProto{}
	for _, t := range g.GetInitializer() {
		c[t.GetName()] = t
	}
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Constant" || len(n.GetOutput()) != 1 {
			continue
		}
		for _, a := range n.GetAttribute() {
			if a.GetName() == "value" && a.GetT() != nil {
				c[n.GetOutput()[0]] = a.GetT()
			}
		}
	}
	return c
}

func initializer(g *onnx.GraphProto, name string) (*onnx.TensorProto, bool) {
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return t, true
		}
	}
	return nil, false
}

// floats decodes a float32 tensor stored in the file.
func floats(t *onnx.TensorProto) ([]float32, error) {
	if t.GetDataLocation() == onnx.TensorProto_EXTERNAL {
		return nil, errors.New("stored as external data")
	}
	if t.GetDataType() != int32(onnx.TensorProto_FLOAT) {
		return nil, fmt.Errorf("data type %s, want float32", onnx.TensorProto_DataType(t.GetDataType()))
	}
	n := 1
	for _, d := range t.GetDims() {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in %v", t.GetDims())
		}
		n *= int(d)
	}
	if raw := t.GetRawData(); len(raw) > 0 {
		if len(raw) != 4*n {
			return nil, fmt.Errorf("%d raw bytes for %d floats", len(raw), n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	if len(t.GetFloatData()) != n {
		return nil, fmt.Errorf("%d float values for %d", len(t.GetFloatData()), n)
	}
	return append([]float32(nil), t.GetFloatData()...), nil
}

func nodeName(n *onnx.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOutput()[0]
	}
	return n.GetOpType()
}

func attrInt(n *onnx.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}

func attrFloat(n *onnx.NodeProto, name string, def float64) float64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return float64(a.GetF())
		}
	}
	return def
}

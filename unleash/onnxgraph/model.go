// Package onnxgraph imports an ONNX image classifier into a GoMLX graph and writes changed weights
// back into the ONNX file.
//
// It knows the ops that PyTorch-exported CNNs use (the list is Supported): convolutions (grouped
// and depthwise included), BatchNormalization (inference with running stats, and training with
// batch statistics) and LayerNormalization, the activations of the common families (Relu, Clip as
// ReLU6, Sigmoid, HardSigmoid, HardSwish, Tanh, LeakyRelu, Gelu, Erf), pooling and the reductions
// used as pooling, Gemm and MatMul, elementwise arithmetic with broadcasting (Sqrt, Pow by a
// constant), and the tensor plumbing (Concat, Split, Slice, Transpose, Reshape, Flatten, Squeeze,
// Unsqueeze, Pad). Shape-computing subgraphs
// (Shape, Gather, Cast, Unsqueeze, Concat, ... of integers) are evaluated while the graph is built,
// when every image size is known. Parse refuses a model that uses anything else with one error
// (*UnsupportedError) that lists every unsupported op, how often it occurs and its first node.
//
// Float initializers in weight positions become parameters (see Param); everything else in the
// file is kept as it is, and Write replaces only the initializers it is given.
package onnxgraph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// Role is what an initializer does in the graph.
type Role int

const (
	// RoleWeight is the weight of a Conv, Gemm or MatMul: the tensors UMAP masks.
	RoleWeight Role = iota + 1
	// RoleBias is a Conv or Gemm bias, or a constant added after a MatMul.
	RoleBias
	// RoleBNScale and RoleBNBias are BatchNormalization's affine parameters.
	RoleBNScale
	RoleBNBias
	// RoleBNMean and RoleBNVar are BatchNormalization's running statistics: state, not parameters.
	RoleBNMean
	RoleBNVar
	// RoleScale is LayerNormalization's scale, or a float initializer other than a scalar
	// multiplied with a computed value (ConvNeXt's layer scale, a LayerNorm weight before opset 17).
	RoleScale
)

func (r Role) String() string {
	switch r {
	case RoleWeight:
		return "weight"
	case RoleBias:
		return "bias"
	case RoleBNScale:
		return "bn-scale"
	case RoleBNBias:
		return "bn-bias"
	case RoleBNMean:
		return "bn-running-mean"
	case RoleBNVar:
		return "bn-running-var"
	case RoleScale:
		return "scale"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Param is a float32 initializer that the graph uses as a weight, bias, BatchNorm parameter or
// BatchNorm running statistic.
type Param struct {
	Name  string // initializer name
	Dims  []int  // shape as stored in the file
	Role  Role   // what it is
	Op    string // the op that uses it
	Node  string // the node that uses it (its name, or its first output when unnamed)
	FanIn int    // for RoleWeight: in_channels*kh*kw (Conv) or in_features (Gemm, MatMul)
	// Data holds the values in the file; nil once released (Model.Release): Model.Values then
	// reads them from the file again.
	Data []float32
}

// Maskable reports whether UMAP masks the parameter: Conv, Gemm and MatMul weights.
func (p *Param) Maskable() bool { return p.Role == RoleWeight }

// Size returns the number of values.
func (p *Param) Size() int {
	n := 1
	for _, d := range p.Dims {
		n *= d
	}
	return n
}

// Model is a parsed ONNX image classifier.
type Model struct {
	proto *onnx.ModelProto
	raw   []byte // the file as read, less the float32 values cut out (holes; see file)
	holes []hole

	// path is the file Load read (empty for Parse): Release drops decoded values only when it
	// can read them again from there. released holds, by name, the released initializers'
	// checksums (see Release).
	path     string
	size     int64
	released map[string]uint32

	// Input is the name of the image input, [N,C,H,W] float32 with any batch size.
	Input string
	// Channels, Height and Width are the image size the model takes.
	Channels, Height, Width int
	// Batch is the input's batch size when the file fixes it (a model exported without a dynamic
	// batch axis), 0 when it is dynamic. Build refuses other batch sizes.
	Batch int
	// Output is the name of the logits output, [N,K].
	Output string
	// Classes is K when the file states it (0 when the output's second axis is symbolic).
	Classes int

	// Params lists the parameters in the order their first use appears in the graph.
	Params []*Param

	// TrainingBatchNorm names the BatchNormalization nodes that run in training mode (exported
	// after model.train() with TrainingMode.PRESERVE: training_mode=1, or the running-stat
	// outputs of opsets before 14). ONNX Runtime normalises each batch by its own statistics
	// there; see CheckInference.
	TrainingBatchNorm []string
	// TrainingDropout names the Dropout nodes whose training_mode input is a constant true
	// (exported after model.train()): ONNX Runtime drops values at random there. Build passes
	// their input through in either Mode.
	TrainingDropout []string

	params map[string]*Param
	consts map[string]*constant // every initializer and Constant-node output, by name
	inits  map[string]bool      // the names of the initializers
	nodes  []*onnx.NodeProto
}

type constant struct {
	dims []int
	f32  []float32 // float tensors
	i64  []int64   // integer and boolean tensors (booleans as 0 and 1)
	ints bool      // an integer or boolean tensor (i64 may be empty)
}

func (c *constant) size() int {
	n := 1
	for _, d := range c.dims {
		n *= d
	}
	return n
}

// Load reads and parses the ONNX file at path.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: %w", err)
	}
	size := int64(len(data))
	m, err := parse(data) // data is ours: no copy
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: %s: %w", path, err)
	}
	m.path, m.size = path, size
	return m, nil
}

// Supported lists the ops Parse accepts. Shape and Gather, and Cast to a type other than float,
// are accepted only where they compute shapes: on constants and on the outputs of Shape.
var Supported = []string{
	"Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
	"LeakyRelu", "Gelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
	"ReduceMax", "ReduceMin", "ReduceSum", "Flatten", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div",
	"Reshape", "Pad", "Concat", "Split", "Slice", "Transpose", "Squeeze", "Unsqueeze", "Identity",
	"Dropout", "Constant", "Shape", "Gather", "Cast", "Erf", "Sqrt", "Pow", "LayerNormalization",
}

func supported(op string) bool {
	for _, s := range Supported {
		if s == op {
			return true
		}
	}
	return false
}

// UnsupportedError lists what the importer cannot build in a model: every unsupported op, with
// how often it occurs and the first node that uses it.
type UnsupportedError struct {
	Ops []UnsupportedOp
}

// UnsupportedOp is one op type the importer cannot build (or cannot build in the way the model
// uses it, as Reason says).
type UnsupportedOp struct {
	Op        string // op type, "domain:op" outside the default domain
	Reason    string // empty when the op is not supported at all
	Count     int    // nodes
	FirstNode string // the first such node's name (its first output when unnamed)
}

func (e *UnsupportedError) Error() string {
	var sb strings.Builder
	nodes := 0
	for _, o := range e.Ops {
		nodes += o.Count
	}
	fmt.Fprintf(&sb, "%d unsupported op", len(e.Ops))
	if len(e.Ops) != 1 {
		sb.WriteString("s")
	}
	fmt.Fprintf(&sb, " (%d node", nodes)
	if nodes != 1 {
		sb.WriteString("s")
	}
	sb.WriteString("): ")
	for i, o := range e.Ops {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(o.Op)
		if o.Reason != "" {
			fmt.Fprintf(&sb, " %s", o.Reason)
		}
		if o.Count == 1 {
			fmt.Fprintf(&sb, " x1 (node %q)", o.FirstNode)
		} else {
			fmt.Fprintf(&sb, " x%d (first node %q)", o.Count, o.FirstNode)
		}
	}
	return sb.String()
}

// unsupportedOps collects the refusals of a model, in the order they first occur.
type unsupportedOps struct {
	ops   []UnsupportedOp
	index map[string]int
}

func (u *unsupportedOps) add(n *onnx.NodeProto, op, reason string) {
	key := op + "\x00" + reason
	if i, ok := u.index[key]; ok {
		u.ops[i].Count++
		return
	}
	if u.index == nil {
		u.index = map[string]int{}
	}
	u.index[key] = len(u.ops)
	u.ops = append(u.ops, UnsupportedOp{Op: op, Reason: reason, Count: 1, FirstNode: nodeName(n)})
}

// Parse parses a serialized ONNX model. It checks that the model is an image classifier it can
// build: one float32 [N,C,H,W] input, one output, only supported ops in the default domain, and
// constant shapes where the ops need them.
func Parse(data []byte) (*Model, error) {
	return parse(append([]byte(nil), data...))
}

// parse is Parse of data the model may keep (Model.raw, for the write-back).
func parse(data []byte) (*Model, error) {
	mp := &onnx.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	g := mp.GetGraph()
	if g == nil {
		return nil, fmt.Errorf("ONNX model has no graph")
	}
	m := &Model{proto: mp, raw: data, params: map[string]*Param{}, consts: map[string]*constant{}, inits: map[string]bool{}, nodes: g.GetNode()}

	for _, t := range g.GetInitializer() {
		c, err := decodeTensor(t)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.GetName(), err)
		}
		m.consts[t.GetName()] = c
		m.inits[t.GetName()] = true
		// Decoded: the proto's copy of the values is not needed again (the write-back works on
		// raw), and on a large model it is one more copy of every weight.
		t.RawData, t.FloatData, t.Int64Data, t.Int32Data, t.DoubleData = nil, nil, nil, nil, nil
	}
	// Inputs: the one that is not an initializer is the image.
	var inputs []*onnx.ValueInfoProto
	for _, in := range g.GetInput() {
		if _, ok := m.consts[in.GetName()]; !ok {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("model has %d inputs, an image classifier has one", len(inputs))
	}
	if err := m.setInput(inputs[0]); err != nil {
		return nil, err
	}
	if len(g.GetOutput()) != 1 {
		return nil, fmt.Errorf("model has %d outputs, an image classifier has one (logits)", len(g.GetOutput()))
	}
	m.Output = g.GetOutput()[0].GetName()
	if dims := g.GetOutput()[0].GetType().GetTensorType().GetShape().GetDim(); len(dims) == 2 && dims[1].GetDimValue() > 0 {
		m.Classes = int(dims[1].GetDimValue())
	}

	for _, n := range m.nodes {
		if n.GetOpType() == "Constant" && (n.GetDomain() == "" || n.GetDomain() == "ai.onnx") {
			if err := m.addConstantNode(n); err != nil {
				return nil, fmt.Errorf("node %q: %w", nodeName(n), err)
			}
		}
	}
	if u := m.unsupported(); len(u.ops) > 0 {
		return nil, &UnsupportedError{Ops: u.ops}
	}
	for _, n := range m.nodes {
		if n.GetOpType() != "BatchNormalization" {
			continue
		}
		extra := false
		for _, o := range n.GetOutput()[min(1, len(n.GetOutput())):] {
			extra = extra || o != ""
		}
		if attrInt(n, "training_mode", 0) != 0 || extra {
			m.TrainingBatchNorm = append(m.TrainingBatchNorm, nodeName(n))
		}
	}
	for _, n := range m.nodes {
		if n.GetOpType() == "Dropout" && m.dropoutTraining(n) {
			m.TrainingDropout = append(m.TrainingDropout, nodeName(n))
		}
	}
	if err := m.findParams(); err != nil {
		return nil, err
	}
	m.cutFloats()
	return m, nil
}

// dropoutTraining reports whether Dropout node n has a constant true training_mode input.
func (m *Model) dropoutTraining(n *onnx.NodeProto) bool {
	ins := n.GetInput()
	if len(ins) < 3 || ins[2] == "" {
		return false
	}
	c, ok := m.consts[ins[2]]
	return ok && len(c.i64) == 1 && c.i64[0] != 0
}

func nodeName(n *onnx.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOutput()[0]
	}
	return "?"
}

func (m *Model) setInput(in *onnx.ValueInfoProto) error {
	m.Input = in.GetName()
	tt := in.GetType().GetTensorType()
	if tt == nil || tt.GetElemType() != int32(onnx.TensorProto_FLOAT) {
		return fmt.Errorf("input %q is not a float32 tensor", m.Input)
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != 4 {
		return fmt.Errorf("input %q has rank %d, an image classifier takes [N,C,H,W]", m.Input, len(dims))
	}
	var chw [3]int
	for i, d := range dims[1:] {
		if d.GetDimValue() <= 0 {
			return fmt.Errorf("input %q: dimension %d is not fixed (%q)", m.Input, i+1, d.GetDimParam())
		}
		chw[i] = int(d.GetDimValue())
	}
	// A bound far above any camera classifier's, so that a corrupt file cannot make the graph
	// builders allocate per-pixel tables of absurd sizes.
	if chw[0] > 1<<12 || chw[1] > 1<<12 || chw[2] > 1<<12 || chw[0]*chw[1]*chw[2] > 1<<26 {
		return fmt.Errorf("input %q: %dx%dx%d is too large an image", m.Input, chw[0], chw[1], chw[2])
	}
	m.Channels, m.Height, m.Width = chw[0], chw[1], chw[2]
	if b := dims[0].GetDimValue(); b > 0 {
		m.Batch = int(b)
	}
	return nil
}

func (m *Model) addConstantNode(n *onnx.NodeProto) error {
	if len(n.GetOutput()) != 1 {
		return fmt.Errorf("Constant with %d outputs", len(n.GetOutput()))
	}
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "value":
			c, err := decodeTensor(a.GetT())
			if err != nil {
				return err
			}
			m.consts[n.GetOutput()[0]] = c
			return nil
		case "value_float":
			m.consts[n.GetOutput()[0]] = &constant{f32: []float32{a.GetF()}}
			return nil
		case "value_floats":
			m.consts[n.GetOutput()[0]] = &constant{dims: []int{len(a.GetFloats())}, f32: a.GetFloats()}
			return nil
		case "value_int":
			m.consts[n.GetOutput()[0]] = &constant{i64: []int64{a.GetI()}, ints: true}
			return nil
		case "value_ints":
			m.consts[n.GetOutput()[0]] = &constant{dims: []int{len(a.GetInts())}, i64: append([]int64{}, a.GetInts()...), ints: true}
			return nil
		}
	}
	return fmt.Errorf("Constant without a supported value attribute")
}

// findParams assigns roles to the float initializers that ops use as parameters.
func (m *Model) findParams() error {
	mark := func(n *onnx.NodeProto, idx int, role Role, fanIn int) error {
		if idx >= len(n.GetInput()) || n.GetInput()[idx] == "" {
			return nil
		}
		name := n.GetInput()[idx]
		c, ok := m.consts[name]
		if !ok || !m.isInitializer(name) {
			// Not an initializer (a Constant node, or computed): a constant, or not a parameter.
			return nil
		}
		if c.f32 == nil {
			return fmt.Errorf("node %q: %s input %q is not float32", nodeName(n), role, name)
		}
		if p, ok := m.params[name]; ok {
			if p.Role != role {
				return fmt.Errorf("initializer %q is used both as %s (node %q) and as %s (node %q)", name, p.Role, p.Node, role, nodeName(n))
			}
			return fmt.Errorf("initializer %q is shared by nodes %q and %q: shared weights are not supported", name, p.Node, nodeName(n))
		}
		p := &Param{Name: name, Dims: c.dims, Role: role, Op: n.GetOpType(), Node: nodeName(n), FanIn: fanIn, Data: c.f32}
		m.params[name] = p
		m.Params = append(m.Params, p)
		return nil
	}
	for _, n := range m.nodes {
		in := n.GetInput()
		var err error
		switch n.GetOpType() {
		case "Conv":
			if len(in) < 2 {
				return fmt.Errorf("node %q: Conv with %d inputs", nodeName(n), len(in))
			}
			fan := 0
			if c, ok := m.consts[in[1]]; ok && len(c.dims) >= 2 {
				fan = c.size() / c.dims[0]
			}
			if err = mark(n, 1, RoleWeight, fan); err == nil {
				err = mark(n, 2, RoleBias, 0)
			}
		case "Gemm":
			if len(in) < 2 {
				return fmt.Errorf("node %q: Gemm with %d inputs", nodeName(n), len(in))
			}
			fan := 0
			if c, ok := m.consts[in[1]]; ok && len(c.dims) == 2 {
				fan = c.dims[0]
				if attrInt(n, "transB", 0) != 0 {
					fan = c.dims[1]
				}
			}
			if err = mark(n, 1, RoleWeight, fan); err == nil {
				err = mark(n, 2, RoleBias, 0)
			}
		case "MatMul":
			if len(in) != 2 {
				return fmt.Errorf("node %q: MatMul with %d inputs", nodeName(n), len(in))
			}
			if c, ok := m.consts[in[1]]; ok && m.isInitializer(in[1]) {
				if len(c.dims) != 2 {
					return fmt.Errorf("node %q: MatMul weight %q has rank %d, want 2", nodeName(n), in[1], len(c.dims))
				}
				err = mark(n, 1, RoleWeight, c.dims[0])
			}
		case "Add", "Mul":
			// A float initializer added to a computed value is a bias (PyTorch's x @ w + b); one
			// that multiplies it, other than a scalar, a scale (ConvNeXt's layer scale, a
			// LayerNorm's weight before opset 17). Integer ones are shape arithmetic.
			role := RoleBias
			if n.GetOpType() == "Mul" {
				role = RoleScale
			}
			for i := range in {
				if c, ok := m.consts[in[i]]; ok && !c.ints && m.isInitializer(in[i]) && len(in) == 2 && (role == RoleBias || c.size() > 1) {
					if other := in[1-i]; !m.isConstant(other) {
						err = mark(n, i, role, 0)
					}
				}
			}
		case "LayerNormalization":
			if len(in) < 2 {
				return fmt.Errorf("node %q: LayerNormalization with %d inputs", nodeName(n), len(in))
			}
			if err = mark(n, 1, RoleScale, 0); err == nil {
				err = mark(n, 2, RoleBias, 0)
			}
		case "BatchNormalization":
			if len(in) != 5 {
				return fmt.Errorf("node %q: BatchNormalization with %d inputs", nodeName(n), len(in))
			}
			for i, role := range []Role{RoleBNScale, RoleBNBias, RoleBNMean, RoleBNVar} {
				if err = mark(n, i+1, role, 0); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Model) isInitializer(name string) bool { return m.inits[name] }

func (m *Model) isConstant(name string) bool {
	_, ok := m.consts[name]
	return ok
}

// ErrTrainingBatchNorm is returned for a model whose BatchNormalization runs in training mode,
// where an inference-mode one is needed.
var ErrTrainingBatchNorm = errors.New("BatchNormalization runs in training mode")

// ErrTrainingDropout is returned for a model whose Dropout runs in training mode (and whose
// BatchNorm does not), where an inference-mode one is needed.
var ErrTrainingDropout = errors.New("Dropout runs in training mode")

// CheckInference returns an error wrapping ErrTrainingBatchNorm when the model's BatchNorm runs in
// training mode: ONNX Runtime then normalises every batch by its own statistics, so a frame's
// logits depend on the other frames of its batch (and a batch of one gives the same logits for
// every frame), and GoMLX's inference graph, which uses the running statistics, computes another
// model than ONNX Runtime does.
//
// A model with only training-mode Dropout (no BatchNorm) fails too: ONNX Runtime would drop
// values at random.
func (m *Model) CheckInference() error {
	const how = "export the model for inference: call model.eval() before torch.onnx.export, and do not pass " +
		"training=torch.onnx.TrainingMode.PRESERVE or TRAINING with a model in train mode (or convert it: " +
		"`oodguard inspect -inference-out OUT.onnx` keeps the running statistics stored in the file; " +
		"`oodguard unleash` takes it as it is and writes an inference-mode model)"
	if len(m.TrainingBatchNorm) > 0 {
		more := ""
		if k := len(m.TrainingBatchNorm) - 1; k > 0 {
			more = fmt.Sprintf(" and %d more", k)
		}
		return fmt.Errorf("%w (node %q%s): it normalises each batch by its own statistics; %s", ErrTrainingBatchNorm, m.TrainingBatchNorm[0], more, how)
	}
	if len(m.TrainingDropout) > 0 {
		return fmt.Errorf("%w (node %q): it drops values at random; %s", ErrTrainingDropout, m.TrainingDropout[0], how)
	}
	return nil
}

// Param returns the parameter called name, or nil.
func (m *Model) Param(name string) *Param { return m.params[name] }

// Maskable returns the parameters UMAP masks (Conv, Gemm and MatMul weights), in graph order.
func (m *Model) Maskable() []*Param {
	var out []*Param
	for _, p := range m.Params {
		if p.Maskable() {
			out = append(out, p)
		}
	}
	return out
}

// Nodes returns the number of nodes.
func (m *Model) Nodes() int { return len(m.nodes) }

// decodeTensor reads a TensorProto's values: float32, or integers as int64.
func decodeTensor(t *onnx.TensorProto) (*constant, error) {
	if t == nil {
		return nil, fmt.Errorf("missing tensor")
	}
	if t.GetDataLocation() == onnx.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("external data is not supported")
	}
	c := &constant{dims: make([]int, len(t.GetDims()))}
	for i, d := range t.GetDims() {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension %d", d)
		}
		c.dims[i] = int(d)
	}
	n := c.size()
	raw := t.GetRawData()
	switch onnx.TensorProto_DataType(t.GetDataType()) {
	case onnx.TensorProto_FLOAT:
		if len(raw) > 0 {
			if len(raw) != 4*n {
				return nil, fmt.Errorf("%d raw bytes for %d floats", len(raw), n)
			}
			c.f32 = make([]float32, n)
			for i := range c.f32 {
				c.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			if len(t.GetFloatData()) != n {
				return nil, fmt.Errorf("%d float values for %d", len(t.GetFloatData()), n)
			}
			c.f32 = append([]float32(nil), t.GetFloatData()...)
		}
	case onnx.TensorProto_INT64:
		c.ints = true
		if len(raw) > 0 {
			if len(raw) != 8*n {
				return nil, fmt.Errorf("%d raw bytes for %d int64", len(raw), n)
			}
			c.i64 = make([]int64, n)
			for i := range c.i64 {
				c.i64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		} else {
			if len(t.GetInt64Data()) != n {
				return nil, fmt.Errorf("%d int64 values for %d", len(t.GetInt64Data()), n)
			}
			c.i64 = append([]int64{}, t.GetInt64Data()...)
		}
	case onnx.TensorProto_INT32:
		c.ints = true
		if len(raw) > 0 {
			if len(raw) != 4*n {
				return nil, fmt.Errorf("%d raw bytes for %d int32", len(raw), n)
			}
			c.i64 = make([]int64, n)
			for i := range c.i64 {
				c.i64[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		} else {
			if len(t.GetInt32Data()) != n {
				return nil, fmt.Errorf("%d int32 values for %d", len(t.GetInt32Data()), n)
			}
			c.i64 = make([]int64, n)
			for i, v := range t.GetInt32Data() {
				c.i64[i] = int64(v)
			}
		}
	case onnx.TensorProto_BOOL:
		// Booleans are stored one byte each in raw data, or as int32 values.
		c.ints = true
		c.i64 = make([]int64, n)
		switch {
		case len(raw) > 0:
			if len(raw) != n {
				return nil, fmt.Errorf("%d raw bytes for %d booleans", len(raw), n)
			}
			for i, v := range raw {
				if v != 0 {
					c.i64[i] = 1
				}
			}
		case len(t.GetInt32Data()) == n:
			for i, v := range t.GetInt32Data() {
				if v != 0 {
					c.i64[i] = 1
				}
			}
		default:
			return nil, fmt.Errorf("%d boolean values for %d", len(t.GetInt32Data()), n)
		}
	default:
		return nil, fmt.Errorf("data type %s is not supported", onnx.TensorProto_DataType(t.GetDataType()))
	}
	return c, nil
}

func attr(n *onnx.NodeProto, name string) *onnx.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func attrInt(n *onnx.NodeProto, name string, def int) int {
	if a := attr(n, name); a != nil {
		return int(a.GetI())
	}
	return def
}

func attrFloat(n *onnx.NodeProto, name string, def float64) float64 {
	if a := attr(n, name); a != nil {
		return float64(a.GetF())
	}
	return def
}

func attrInts(n *onnx.NodeProto, name string) []int {
	a := attr(n, name)
	if a == nil {
		return nil
	}
	out := make([]int, len(a.GetInts()))
	for i, v := range a.GetInts() {
		out[i] = int(v)
	}
	return out
}

func attrString(n *onnx.NodeProto, name, def string) string {
	if a := attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

package onnxgraph

import (
	"fmt"

	onnx "github.com/gomlx/compute-onnx/support/protos"
)

// foldable lists the ops that Build evaluates on the host, as integer tensors, when every input
// is known: the shape computations PyTorch exports around Reshape (Shape, Gather, Unsqueeze,
// Concat, ...).
var foldable = map[string]bool{
	"Identity": true, "Shape": true, "Gather": true, "Unsqueeze": true, "Squeeze": true, "Concat": true,
	"Slice": true, "Cast": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Reshape": true,
}

// knownInputs lists, per op, the inputs that must be integers known when the graph is built:
// constants, or computed from constants and Shape outputs.
var knownInputs = map[string][]int{
	"Reshape": {1}, "Pad": {1}, "Slice": {1, 2, 3, 4}, "Split": {1}, "Unsqueeze": {1}, "Squeeze": {1},
	"ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceSum": {1},
}

// constInputs lists, per op, the inputs that must be constant tensors of any type.
var constInputs = map[string][]int{"Clip": {1, 2}, "Pad": {2}, "Dropout": {1, 2}, "Pow": {1}}

// unsupported returns what Build cannot do in the model: ops it does not know, and known ops used
// in ways it does not support (shapes computed from data, Gather of data). Its decisions mirror
// the builder's. (A training-mode Dropout is built as its input: TrainingDropout.)
func (m *Model) unsupported() *unsupportedOps {
	u := &unsupportedOps{}
	known := map[string]bool{} // integer values known at build time
	for name, c := range m.consts {
		if c.ints {
			known[name] = true
		}
	}
	// Values computed by refused nodes are tainted: a supported op that reads one is not refused
	// for it (the refusal that matters is listed already).
	tainted := map[string]bool{}
	taint := func(n *onnx.NodeProto) {
		for _, o := range n.GetOutput() {
			tainted[o] = true
		}
	}
	for _, n := range m.nodes {
		op, ins := n.GetOpType(), n.GetInput()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			u.add(n, d+":"+op, "")
			taint(n)
			continue
		}
		if !supported(op) {
			u.add(n, op, "")
			taint(n)
			continue
		}
		readsTainted := false
		for _, in := range ins {
			readsTainted = readsTainted || tainted[in]
		}
		if readsTainted {
			taint(n)
			continue
		}
		allKnown := len(ins) > 0
		for _, in := range ins {
			if in != "" && !known[in] {
				allKnown = false
			}
		}
		if op == "Shape" || (foldable[op] && allKnown) {
			for _, o := range n.GetOutput() {
				known[o] = true
			}
			continue
		}
		if reason := m.unsupportedUse(n, known); reason != "" {
			u.add(n, op, reason)
			taint(n)
		}
	}
	return u
}

// unsupportedUse says why a supported op cannot be built as the node uses it, or "".
func (m *Model) unsupportedUse(n *onnx.NodeProto, known map[string]bool) string {
	op, ins := n.GetOpType(), n.GetInput()
	switch op {
	case "Gather":
		return "of a computed tensor (only shape computations are supported)"
	case "Cast":
		if attrInt(n, "to", 0) != int(onnx.TensorProto_FLOAT) {
			return fmt.Sprintf("of a computed tensor to %s (only float32 or shape computations)", onnx.TensorProto_DataType(attrInt(n, "to", 0)))
		}
	}
	for _, i := range knownInputs[op] {
		if i < len(ins) && ins[i] != "" && !known[ins[i]] {
			return fmt.Sprintf("with input %d computed from data (it must be a constant or a shape computation)", i)
		}
	}
	for _, i := range constInputs[op] {
		if i < len(ins) && ins[i] != "" {
			if _, ok := m.consts[ins[i]]; !ok {
				return fmt.Sprintf("with a computed input %d (it must be a constant)", i)
			}
		}
	}
	return ""
}

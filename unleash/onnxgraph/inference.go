package onnxgraph

import (
	"fmt"
	"io"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// fieldGraphNode is GraphProto.node.
const fieldGraphNode = 1

// InTrainingMode reports whether the model has a BatchNormalization or a Dropout that runs in
// training mode (TrainingBatchNorm, TrainingDropout): a model exported after model.train() with
// TrainingMode.PRESERVE. MarshalInference converts such a model.
func (m *Model) InTrainingMode() bool {
	return len(m.TrainingBatchNorm) > 0 || len(m.TrainingDropout) > 0
}

// MarshalInference is Marshal for a model that must come out in inference mode: each
// training-mode BatchNormalization loses its training_mode attribute and its running-statistics
// outputs (Y only, so that ONNX Runtime normalises with the running_mean and running_var
// initializers: the values in the file, or in replace), and each training-mode Dropout loses its
// training_mode input and its mask output (so that it passes its input through). Nothing else
// changes: every other node, the initializers (but the replaced values), names, shapes, opsets
// and metadata keep their bytes; only those nodes are re-encoded and the graph's length prefix
// follows. A model with neither gives Marshal(replace).
//
// It fails when a statistics or mask output it would drop is read by another node or is a graph
// output.
func (m *Model) MarshalInference(replace map[string][]float32) ([]byte, error) {
	if !m.InTrainingMode() {
		return m.Marshal(replace)
	}
	if err := m.checkReplace(replace); err != nil {
		return nil, err
	}
	data, err := m.inferenceBytes(replace)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: to inference mode: %w", err)
	}
	return data, nil
}

// WriteInference writes MarshalInference(replace) to w.
func (m *Model) WriteInference(w io.Writer, replace map[string][]float32) error {
	data, err := m.MarshalInference(replace)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// inferenceBytes returns the file with the training-mode nodes converted (see MarshalInference).
// The replaced values (checked by checkReplace) go in already, so that released ones that
// replace gives are not read again.
func (m *Model) inferenceBytes(replace map[string][]float32) ([]byte, error) {
	g := m.proto.GetGraph()
	read := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			read[in] = true
		}
	}
	for _, o := range g.GetOutput() {
		read[o.GetName()] = true
	}
	training := map[string]bool{}
	for _, name := range m.TrainingBatchNorm {
		training[name] = true
	}
	for _, name := range m.TrainingDropout {
		training[name] = true
	}
	// convert returns the node's new encoding, or nil to keep its bytes; converted holds the
	// training-mode nodes it rewrote (all of them, or the file would still train: checked below
	// instead of parsing the whole result again).

	converted := map[string]bool{}
	convert := func(raw []byte) ([]byte, error) {
		n := &onnx.NodeProto{}
		if err := proto.Unmarshal(raw, n); err != nil {
			return nil, err
		}
		op := n.GetOpType()
		if (op != "BatchNormalization" && op != "Dropout") || !training[nodeName(n)] {
			return nil, nil
		}
		outs := n.GetOutput()
		for _, o := range outs[min(1, len(outs)):] {
			if o != "" && read[o] {
				return nil, fmt.Errorf("node %q: its training-mode output %q is used", nodeName(n), o)
			}
		}
		n.Output = outs[:min(1, len(outs))]
		switch op {
		case "BatchNormalization":
			var attrs []*onnx.AttributeProto
			for _, a := range n.GetAttribute() {
				if a.GetName() != "training_mode" {
					attrs = append(attrs, a)
				}
			}
			n.Attribute = attrs
		case "Dropout":
			n.Input = n.GetInput()[:min(2, len(n.GetInput()))]
		}
		converted[nodeName(n)] = true
		return proto.MarshalOptions{Deterministic: true}.Marshal(n)
	}
	// Rewrite ModelProto.graph's node fields, copying every other field's bytes as they are.
	file, err := m.file(replace)
	if err != nil {
		return nil, err
	}
	out, err := rewriteField(file, fieldModelGraph, func(graph []byte) ([]byte, error) {
		return rewriteField(graph, fieldGraphNode, convert)
	})
	if err != nil {
		return nil, err
	}
	if len(converted) != len(training) {
		return nil, fmt.Errorf("%d of the %d training-mode nodes %v converted", len(converted), len(training), append(m.TrainingBatchNorm, m.TrainingDropout...))
	}
	return out, nil
}

// rewriteField returns msg with each length-delimited field num replaced by fn(payload) (kept
// when fn returns nil), and every other field's bytes (tag included) as they are.
func rewriteField(msg []byte, num protowire.Number, fn func([]byte) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, len(msg))
	for i := 0; i < len(msg); {
		n, typ, tl := protowire.ConsumeTag(msg[i:])
		if tl < 0 {
			return nil, fmt.Errorf("bad protobuf tag at byte %d: %w", i, protowire.ParseError(tl))
		}
		vl := protowire.ConsumeFieldValue(n, typ, msg[i+tl:])
		if vl < 0 {
			return nil, fmt.Errorf("bad protobuf field at byte %d: %w", i, protowire.ParseError(vl))
		}
		field := msg[i : i+tl+vl]
		i += tl + vl
		if n != num || typ != protowire.BytesType {
			out = append(out, field...)
			continue
		}
		payload, _ := protowire.ConsumeBytes(field[tl:])
		repl, err := fn(payload)
		if err != nil {
			return nil, err
		}
		if repl == nil {
			out = append(out, field...)
			continue
		}
		out = protowire.AppendTag(out, num, protowire.BytesType)
		out = protowire.AppendBytes(out, repl)
	}
	return out, nil
}

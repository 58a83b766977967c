package runtime

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrTrainingBatchNorm is returned by Open for a model whose BatchNormalization runs in
// training mode (exported from a model in train mode with TrainingMode.PRESERVE or TRAINING):
// ONNX Runtime then normalises every batch by its own statistics, so a frame's score depends on
// the other frames of its batch, and a batch of one gives every frame the same logits.
var ErrTrainingBatchNorm = errors.New("BatchNormalization runs in training mode")

// checkInferenceBatchNorm refuses a model with a training-mode BatchNormalization in its main
// graph: one with training_mode=1 (opset 15 on) or with the running-statistics outputs that
// only training mode has (opset 9-14).
func checkInferenceBatchNorm(model []byte) error {
	nodes, err := trainingBatchNorms(model)
	if err != nil || len(nodes) == 0 {
		return err // a model the reader cannot follow is left to ONNX Runtime to judge
	}
	more := ""
	if len(nodes) > 1 {
		more = fmt.Sprintf(" and %d more", len(nodes)-1)
	}
	return fmt.Errorf("%w (node %q%s): it normalises each batch by its own statistics, so scores would depend "+
		"on the batch; export the model for inference: call model.eval() before torch.onnx.export and do not pass "+
		"training=torch.onnx.TrainingMode.PRESERVE or TRAINING (or convert it: `oodguard inspect -inference-out OUT.onnx MODEL` "+
		"normalises with the running statistics stored in the file; `oodguard unleash` takes it and writes an inference-mode model)",
		ErrTrainingBatchNorm, nodes[0], more)
}

// ONNX protobuf field numbers (onnx.proto3) the reader follows.
const (
	modelGraph    = 7 // ModelProto.graph
	graphNode     = 1 // GraphProto.node
	nodeOutput    = 2 // NodeProto.output
	nodeName      = 3 // NodeProto.name
	nodeOpType    = 4 // NodeProto.op_type
	nodeAttribute = 5 // NodeProto.attribute
	attrName      = 1 // AttributeProto.name
	attrInt       = 3 // AttributeProto.i
)

// trainingBatchNorms returns the names (or "#index") of the main graph's BatchNormalization
// nodes that run in training mode, reading only the protobuf fields it needs.
func trainingBatchNorms(model []byte) ([]string, error) {
	var out []string
	err := eachField(model, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != modelGraph || typ != protowire.BytesType {
			return nil
		}
		i := 0
		return eachField(v, func(num protowire.Number, typ protowire.Type, node []byte) error {
			if num != graphNode || typ != protowire.BytesType {
				return nil
			}
			i++
			name, training, err := batchNormMode(node)
			if err != nil {
				return err
			}
			if training {
				if name == "" {
					name = fmt.Sprintf("#%d", i)
				}
				out = append(out, name)
			}
			return nil
		})
	})
	return out, err
}

// batchNormMode reads one NodeProto: its name, and whether it is a training-mode
// BatchNormalization.
func batchNormMode(node []byte) (name string, training bool, err error) {
	var op string
	outputs, trainAttr := 0, false
	err = eachField(node, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case nodeOpType:
			op = string(v)
		case nodeName:
			name = string(v)
		case nodeOutput:
			if len(v) > 0 { // an empty name is an omitted optional output
				outputs++
			}
		case nodeAttribute:
			var an string
			var ai int64
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, av []byte) error {
				switch {
				case num == attrName && typ == protowire.BytesType:
					an = string(av)
				case num == attrInt && typ == protowire.VarintType:
					x, n := protowire.ConsumeVarint(av)
					if n < 0 {
						return protowire.ParseError(n)
					}
					ai = int64(x)
				}
				return nil
			}); err != nil {
				return err
			}
			if an == "training_mode" && ai != 0 {
				trainAttr = true
			}
		}
		return nil
	})
	return name, op == "BatchNormalization" && (trainAttr || outputs > 1), err
}

// eachField calls f for each field of the message b; for varints v holds the encoded varint,
// for length-delimited fields the bytes.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			x, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = x, m
		case protowire.VarintType:
			_, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = b[:m], m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
		}
		b = b[n:]
		if err := f(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

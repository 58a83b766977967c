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

// ErrTrainingDropout is returned by Open for a model without training-mode BatchNorm whose
// Dropout runs in training mode (its training_mode input a constant true).
var ErrTrainingDropout = errors.New("Dropout runs in training mode")

// checkInferenceBatchNorm refuses a model with a training-mode BatchNormalization in its main
// graph: one with training_mode=1 (opset 15 on) or with the running-statistics outputs that
// only training mode has (opset 9-14); and, failing that, one whose Dropout has a constant true
// training_mode input (a train-mode export without BatchNorm).
func checkInferenceBatchNorm(model []byte) error {
	nodes, err := trainingBatchNorms(model)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		if drop, err := trainingDropouts(model); err == nil && len(drop) > 0 {
			return fmt.Errorf("%w (node %q): it drops values at random, so scores would be random; export the model for "+
				"inference: call model.eval() before torch.onnx.export and do not pass training=torch.onnx.TrainingMode.PRESERVE "+
				"or TRAINING", ErrTrainingDropout, drop[0])
		}
		return nil
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
	graphInit     = 5 // GraphProto.initializer
	nodeInput     = 1 // NodeProto.input
	attrTensor    = 5 // AttributeProto.t
	tensorInt32   = 5 // TensorProto.int32_data (booleans too)
	tensorInt64   = 7 // TensorProto.int64_data
	tensorName    = 8 // TensorProto.name
	tensorRaw     = 9 // TensorProto.raw_data
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

// trainingDropouts returns the names (or "#index") of the main graph's Dropout nodes whose
// training_mode input is a constant true: the output of a Constant node or an initializer with
// a nonzero value.
func trainingDropouts(model []byte) ([]string, error) {
	truth := map[string]bool{} // constant tensors by name: nonzero
	type dropout struct {
		name, mode string
	}
	var drops []dropout
	err := eachField(model, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != modelGraph || typ != protowire.BytesType {
			return nil
		}
		i := 0
		return eachField(v, func(num protowire.Number, typ protowire.Type, b []byte) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case graphInit:
				name, nonzero, err := tensorTruth(b)
				if err != nil {
					return err
				}
				truth[name] = nonzero
			case graphNode:
				i++
				var op, name string
				var ins, outs []string
				var value []byte
				if err := eachField(b, func(num protowire.Number, typ protowire.Type, f []byte) error {
					if typ != protowire.BytesType {
						return nil
					}
					switch num {
					case nodeOpType:
						op = string(f)
					case nodeName:
						name = string(f)
					case nodeInput:
						ins = append(ins, string(f))
					case nodeOutput:
						outs = append(outs, string(f))
					case nodeAttribute:
						var an string
						var t []byte
						if err := eachField(f, func(num protowire.Number, typ protowire.Type, av []byte) error {
							switch {
							case num == attrName && typ == protowire.BytesType:
								an = string(av)
							case num == attrTensor && typ == protowire.BytesType:
								t = av
							}
							return nil
						}); err != nil {
							return err
						}
						if an == "value" && t != nil {
							value = t
						}
					}
					return nil
				}); err != nil {
					return err
				}
				if name == "" {
					name = fmt.Sprintf("#%d", i)
				}
				switch {
				case op == "Constant" && len(outs) == 1 && value != nil:
					_, nonzero, err := tensorTruth(value)
					if err != nil {
						return err
					}
					truth[outs[0]] = nonzero
				case op == "Dropout" && len(ins) >= 3 && ins[2] != "":
					drops = append(drops, dropout{name, ins[2]})
				}
			}
			return nil
		})
	})
	var out []string
	for _, d := range drops {
		if truth[d.mode] {
			out = append(out, d.name)
		}
	}
	return out, err
}

// tensorTruth reads a TensorProto's name and whether any of its integer or raw values is nonzero.
func tensorTruth(t []byte) (name string, nonzero bool, err error) {
	err = eachField(t, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == tensorName && typ == protowire.BytesType:
			name = string(v)
		case num == tensorRaw && typ == protowire.BytesType:
			for _, c := range v {
				nonzero = nonzero || c != 0
			}
		case (num == tensorInt32 || num == tensorInt64) && typ == protowire.BytesType: // packed
			for len(v) > 0 {
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return protowire.ParseError(n)
				}
				nonzero = nonzero || x != 0
				v = v[n:]
			}
		case (num == tensorInt32 || num == tensorInt64) && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return protowire.ParseError(n)
			}
			nonzero = nonzero || x != 0
		}
		return nil
	})
	return name, nonzero, err
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

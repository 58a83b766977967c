package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto (stable across ONNX versions).
const (
	fieldModelGraph       = 7 // ModelProto.graph
	fieldGraphInitializer = 5 // GraphProto.initializer
	fieldTensorFloatData  = 4 // TensorProto.float_data (repeated float, packed or not)
	fieldTensorName       = 8 // TensorProto.name
	fieldTensorRawData    = 9 // TensorProto.raw_data
)

// chunk is a run of little-endian float32 values inside the serialized model.
type chunk struct{ off, count int }

// floatSpans finds, for every initializer, where its float values lie in the serialized model.
func floatSpans(data []byte) (map[string][]chunk, error) {
	spans := map[string][]chunk{}
	err := walk(data, 0, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
		if num != fieldModelGraph || typ != protowire.BytesType {
			return nil
		}
		return walk(v, off, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
			if num != fieldGraphInitializer || typ != protowire.BytesType {
				return nil
			}
			var name string
			var chunks []chunk
			err := walk(v, off, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
				switch {
				case num == fieldTensorName && typ == protowire.BytesType:
					name = string(v)
				case num == fieldTensorRawData && typ == protowire.BytesType:
					chunks = append(chunks, chunk{off, len(v) / 4})
				case num == fieldTensorFloatData && typ == protowire.BytesType: // packed
					chunks = append(chunks, chunk{off, len(v) / 4})
				case num == fieldTensorFloatData && typ == protowire.Fixed32Type:
					chunks = append(chunks, chunk{off, 1})
				}
				return nil
			})
			if err != nil {
				return err
			}
			if _, dup := spans[name]; dup {
				return fmt.Errorf("initializer %q appears twice", name)
			}
			spans[name] = chunks
			return nil
		})
	})
	return spans, err
}

// walk calls fn for every field of the message in data; off is data's offset in the file, and
// fn gets the offset of the field's value (for length-delimited fields, of its payload).
func walk(data []byte, off int, fn func(num protowire.Number, typ protowire.Type, v []byte, off int) error) error {
	for i := 0; i < len(data); {
		num, typ, n := protowire.ConsumeTag(data[i:])
		if n < 0 {
			return fmt.Errorf("bad protobuf tag at byte %d: %w", off+i, protowire.ParseError(n))
		}
		i += n
		var v []byte
		voff := off + i
		switch typ {
		case protowire.BytesType:
			b, m := protowire.ConsumeBytes(data[i:])
			if m < 0 {
				return fmt.Errorf("bad protobuf field at byte %d: %w", off+i, protowire.ParseError(m))
			}
			v = b
			voff = off + i + (m - len(b))
			i += m
		case protowire.Fixed32Type:
			if len(data)-i < 4 {
				return fmt.Errorf("truncated protobuf at byte %d", off+i)
			}
			v = data[i : i+4]
			i += 4
		default:
			m := protowire.ConsumeFieldValue(num, typ, data[i:])
			if m < 0 {
				return fmt.Errorf("bad protobuf field at byte %d: %w", off+i, protowire.ParseError(m))
			}
			v = data[i : i+m]
			i += m
		}
		if err := fn(num, typ, v, voff); err != nil {
			return err
		}
	}
	return nil
}

// Marshal returns the model file as it was read, byte for byte, except that each float32
// initializer named in replace holds the given values (as many as it has). Nothing else changes:
// not the nodes, names, shapes, opsets or metadata, not even the encoding of the other fields.
// Replacing nothing gives back the input file.
func (m *Model) Marshal(replace map[string][]float32) ([]byte, error) {
	out := append([]byte(nil), m.raw...)
	if len(replace) == 0 {
		return out, nil
	}
	spans, err := floatSpans(m.raw)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: %w", err)
	}
	for name, vals := range replace {
		c, ok := m.consts[name]
		if !ok || !m.inits[name] || c.f32 == nil {
			return nil, fmt.Errorf("onnxgraph: no float32 initializer %q to replace", name)
		}
		if len(vals) != len(c.f32) {
			return nil, fmt.Errorf("onnxgraph: initializer %q has %d values, replacement has %d", name, len(c.f32), len(vals))
		}
		total := 0
		for _, ch := range spans[name] {
			total += ch.count
		}
		if total != len(vals) {
			return nil, fmt.Errorf("onnxgraph: initializer %q: found %d stored values for %d", name, total, len(vals))
		}
		k := 0
		for _, ch := range spans[name] {
			for j := 0; j < ch.count; j++ {
				binary.LittleEndian.PutUint32(out[ch.off+4*j:], math.Float32bits(vals[k]))
				k++
			}
		}
	}
	return out, nil
}

// Write writes Marshal(replace) to w.
func (m *Model) Write(w io.Writer, replace map[string][]float32) error {
	data, err := m.Marshal(replace)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

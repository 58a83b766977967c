package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"

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

// hole is where Model.raw lacks the stored values of a float32 initializer: before byte at of
// raw, count values, consts[name].f32[first:first+count]; they were at byte src of the file.
type hole struct {
	at, src      int
	name         string
	first, count int
}

// cutFloats takes out of m.raw the stored values of every float32 initializer decoded into
// m.consts (m.holes says where they were), so that the model holds its weights once, not twice
// (the file and the decoded values); file puts them back, bit for bit. An initializer whose
// stored values the reader does not find all of stays in raw.
func (m *Model) cutFloats() {
	spans, err := floatSpans(m.raw)
	if err != nil {
		return // Marshal reports it
	}
	type cut struct {
		off   int
		name  string
		first int
		count int
	}
	var cuts []cut
	size := 0
	for name, chunks := range spans {
		c := m.consts[name]
		if c == nil || c.f32 == nil {
			continue
		}
		total := 0
		for _, ch := range chunks {
			total += ch.count
		}
		if total != len(c.f32) {
			continue
		}
		first := 0
		for _, ch := range chunks {
			cuts = append(cuts, cut{ch.off, name, first, ch.count})
			first += ch.count
			size += 4 * ch.count
		}
	}
	if len(cuts) == 0 {
		return
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].off < cuts[j].off })
	skel := make([]byte, 0, len(m.raw)-size)
	prev := 0
	for _, c := range cuts {
		skel = append(skel, m.raw[prev:c.off]...)
		m.holes = append(m.holes, hole{at: len(skel), src: c.off, name: c.name, first: c.first, count: c.count})
		prev = c.off + 4*c.count
	}
	m.raw = append(skel, m.raw[prev:]...)
}

// file returns the model file as read, with the values of the initializers named in replace
// (only those cut out of raw; checkReplace has checked their sizes) in place of the stored ones.
// Released values that replace does not give are read from the file again.
func (m *Model) file(replace map[string][]float32) ([]byte, error) {
	total := len(m.raw)
	for _, h := range m.holes {
		total += 4 * h.count
	}
	out := make([]byte, 0, total)
	prev := 0
	var name string // the initializer of vals, re-read once for all its holes
	var vals []float32
	for i, h := range m.holes {
		out = append(out, m.raw[prev:h.at]...)
		if i == 0 || h.name != name {
			var ok bool
			if vals, ok = replace[h.name]; !ok {
				var err error
				if vals, err = m.floats(h.name); err != nil {
					return nil, err
				}
			}
			name = h.name
		}
		for _, v := range vals[h.first : h.first+h.count] {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
		prev = h.at
	}
	return append(out, m.raw[prev:]...), nil
}

// checkReplace checks that every initializer named in replace is a float32 initializer with as
// many values as given.
func (m *Model) checkReplace(replace map[string][]float32) error {
	for name, vals := range replace {
		c, ok := m.consts[name]
		if !ok || !m.inits[name] || c.ints || (c.f32 == nil && !m.Released(name)) {
			return fmt.Errorf("onnxgraph: no float32 initializer %q to replace", name)
		}
		if len(vals) != c.size() {
			return fmt.Errorf("onnxgraph: initializer %q has %d values, replacement has %d", name, c.size(), len(vals))
		}
	}
	return nil
}

// Marshal returns the model file as it was read, byte for byte, except that each float32
// initializer named in replace holds the given values (as many as it has). Nothing else changes:
// not the nodes, names, shapes, opsets or metadata, not even the encoding of the other fields.
// Replacing nothing gives back the input file.
func (m *Model) Marshal(replace map[string][]float32) ([]byte, error) {
	if err := m.checkReplace(replace); err != nil {
		return nil, err
	}
	out, err := m.file(replace)
	if err != nil {
		return nil, err
	}
	cut := map[string]bool{}
	for _, h := range m.holes {
		cut[h.name] = true
	}
	rest := 0
	for name := range replace {
		if !cut[name] {
			rest++
		}
	}
	if rest == 0 {
		return out, nil
	}
	// Initializers left in raw (their stored values not all found): patch them in place.
	spans, err := floatSpans(out)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: %w", err)
	}
	for name, vals := range replace {
		if cut[name] {
			continue
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

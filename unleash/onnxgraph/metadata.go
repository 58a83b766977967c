package onnxgraph

import (
	"fmt"
	"slices"

	onnx "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// Metadata returns the value of the model's metadata key (ONNX metadata_props) and whether the
// model has it.
func (m *Model) Metadata(key string) (string, bool) {
	for _, p := range m.proto.GetMetadataProps() {
		if p.GetKey() == key {
			return p.GetValue(), true
		}
	}
	return "", false
}

// SetMetadata returns the serialized model with each key of kv set to its value in the model
// metadata (metadata_props): an existing key takes the new value in place, a new one is
// appended (in key order). Nothing else of the model changes.
func SetMetadata(model []byte, kv map[string]string) ([]byte, error) {
	mp := &onnx.ModelProto{}
	if err := proto.Unmarshal(model, mp); err != nil {
		return nil, fmt.Errorf("onnxgraph: set metadata: %w", err)
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(mp.MetadataProps, func(p *onnx.StringStringEntryProto) bool { return p.GetKey() == k })
		if i >= 0 {
			mp.MetadataProps[i].Value = kv[k]
			continue
		}
		mp.MetadataProps = append(mp.MetadataProps, &onnx.StringStringEntryProto{Key: k, Value: kv[k]})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: set metadata: %w", err)
	}
	return b, nil
}

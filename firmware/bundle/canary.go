package bundle

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// CanaryInput returns the input tensor of canary i, float32 [C,H,W], from the manifest or, for
// an input file, from the extracted bundle.
func (b *Bundle) CanaryInput(i int) ([]float32, error) {
	if i < 0 || i >= len(b.Manifest.Canaries) {
		return nil, fmt.Errorf("canary %d: bundle has %d canaries", i, len(b.Manifest.Canaries))
	}
	c := b.Manifest.Canaries[i]
	raw := c.Input
	if c.InputFile != "" {
		if b.Dir == "" {
			return nil, fmt.Errorf("canary %d: %s: bundle was not extracted", i, c.InputFile)
		}
		var err error
		if raw, err = os.ReadFile(filepath.Join(b.Dir, c.InputFile)); err != nil {
			return nil, fmt.Errorf("canary %d: %w", i, err)
		}
	}
	if int64(len(raw)) != b.Manifest.InputBytes() {
		return nil, fmt.Errorf("canary %d: %d bytes, the model takes %d", i, len(raw), b.Manifest.InputBytes())
	}
	return DecodeFloat32(raw), nil
}

// DecodeFloat32 decodes raw little-endian float32 values; a trailing partial value is ignored.
func DecodeFloat32(raw []byte) []float32 {
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return x
}

// EncodeFloat32 encodes values as raw little-endian float32, the canary input format.
func EncodeFloat32(x []float32) []byte {
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return raw
}

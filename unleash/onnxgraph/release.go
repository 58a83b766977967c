package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Release drops the decoded values of the named float parameters, for a caller that holds them
// elsewhere (unleash's UM trainer holds them in the backend's buffers while it trains): on a
// full-width model that is one copy of every weight less. Where the model needs them again (Values,
// a Build that takes them as constants, a Marshal that does not replace them) it reads them from
// the file Load read, and fails if that file no longer holds them (a checksum of each released
// parameter's values is kept). It returns how many parameters it released: none for a model that
// Parse read (it has no file to read them from again), and parameters whose stored values the
// model did not find all of in the file (see cutFloats) keep their values. A name that is not a
// parameter is an error.
func (m *Model) Release(names ...string) (int, error) {
	for _, name := range names {
		if m.params[name] == nil {
			return 0, fmt.Errorf("onnxgraph: no parameter %q to release", name)
		}
	}
	if m.path == "" {
		return 0, nil
	}
	cut := map[string]bool{}
	for _, h := range m.holes {
		cut[h.name] = true
	}
	n := 0
	for _, name := range names {
		c := m.consts[name]
		if !cut[name] || c.f32 == nil {
			continue
		}
		if m.released == nil {
			m.released = map[string]uint32{}
		}
		m.released[name] = checksum(c.f32)
		c.f32 = nil
		m.params[name].Data = nil
		n++
	}
	return n, nil
}

// Released reports whether the values of initializer name were released (see Release).
func (m *Model) Released(name string) bool {
	_, ok := m.released[name]
	return ok
}

// Values returns the values of float32 initializer name as the file stores them: the decoded
// ones (not a copy: do not change them), or, when they were released, a fresh copy read from the
// file again.
func (m *Model) Values(name string) ([]float32, error) {
	c, ok := m.consts[name]
	if !ok || !m.inits[name] || c.ints {
		return nil, fmt.Errorf("onnxgraph: no float32 initializer %q", name)
	}
	return m.floats(name)
}

// floats returns the float values of constant name, read again from the file when released.
func (m *Model) floats(name string) ([]float32, error) {
	c := m.consts[name]
	if c == nil {
		return nil, fmt.Errorf("onnxgraph: no constant %q", name)
	}
	sum, ok := m.released[name]
	if !ok {
		return c.f32, nil
	}
	f, err := os.Open(m.path)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: read the released values of %q again: %w", name, err)
	}
	defer f.Close()
	changed := fmt.Errorf("onnxgraph: read the released values of %q again: %s changed since it was read", name, m.path)
	if st, err := f.Stat(); err != nil || st.Size() != m.size {
		return nil, changed
	}
	out := make([]float32, c.size())
	var buf []byte
	for _, h := range m.holes {
		if h.name != name {
			continue
		}
		for done := 0; done < h.count; {
			k := min(h.count-done, 1<<18) // 1 MB at a time
			if cap(buf) < 4*k {
				buf = make([]byte, 4*k)
			}
			b := buf[:4*k]
			if _, err := f.ReadAt(b, int64(h.src+4*done)); err != nil {
				if err == io.EOF {
					return nil, changed
				}
				return nil, fmt.Errorf("onnxgraph: read the released values of %q again: %w", name, err)
			}
			for i := range k {
				out[h.first+done+i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
			done += k
		}
	}
	if checksum(out) != sum {
		return nil, changed
	}
	return out, nil
}

// checksum is the CRC-32C of the values' little-endian bits.
func checksum(v []float32) uint32 {
	var b [4096]byte
	var sum uint32
	for len(v) > 0 {
		k := min(len(v), len(b)/4)
		for i, x := range v[:k] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		sum = crc32.Update(sum, castagnoli, b[:4*k])
		v = v[k:]
	}
	return sum
}

package unleash

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/internal/atomicfile"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// A Trainer's whole training state is what it holds outside the input model: the value and SGD
// momentum buffer of every trained tensor (UM: the parameters other than BatchNorm's running
// statistics; UMAP: the scores), the BatchNorm running statistics as training updated them,
// and the number of steps taken. The trainer keeps these as GoMLX tensors of its own (it builds
// its graphs with explicit inputs and outputs, not GoMLX context variables); UMAP's masks are
// the top-k of the scores, recomputed from them, and the frozen weights are the input model's.
// A Trainer made by New on the same model with the same options and restored from State
// continues exactly as the one that wrote it: the next step gets bit-identical inputs.

// TrainerState is a snapshot of a Trainer's training state (State, Restore).
type TrainerState struct {
	Method  string        `json:"method"`
	Steps   int           `json:"steps"`
	Tensors []StateTensor `json:"tensors"`
}

// StateTensor is one tensor of a TrainerState. Kind is "value" or "momentum" (a trained
// tensor, by its parameter's name; for UMAP the scores of that weight) or "bn" (a BatchNorm
// running statistic).
type StateTensor struct {
	Name string    `json:"name"`
	Kind string    `json:"kind"`
	Dims []int     `json:"dims"`
	Data []float32 `json:"-"`
}

// State returns a copy of the trainer's training state.
func (t *Trainer) State() (*TrainerState, error) {
	s := &TrainerState{Method: t.opts.Method.String(), Steps: t.steps}
	add := func(name, kind string, dims []int, v *tensors.Tensor) error {
		d, err := tensors.CopyFlatData[float32](v)
		if err != nil {
			return fmt.Errorf("unleash: state of %s: %w", name, err)
		}
		s.Tensors = append(s.Tensors, StateTensor{Name: name, Kind: kind, Dims: append([]int(nil), dims...), Data: d})
		return nil
	}
	for _, st := range t.trained {
		if err := add(st.name, "value", st.dims, st.value); err != nil {
			return nil, err
		}
		if err := add(st.name, "momentum", st.dims, st.mom); err != nil {
			return nil, err
		}
	}
	for _, p := range t.m.Params {
		if p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar {
			if err := add(p.Name, "bn", p.Dims, t.params[p.Name]); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Restore sets the trainer's training state to s, which must hold exactly the tensors State
// gives for this model and method, with the same shapes; on error the trainer is unchanged.
func (t *Trainer) Restore(s *TrainerState) error {
	if s.Method != t.opts.Method.String() {
		return fmt.Errorf("unleash: the state is of method %s, the trainer runs %s", s.Method, t.opts.Method)
	}
	if s.Steps < 0 {
		return fmt.Errorf("unleash: the state has %d steps", s.Steps)
	}
	want, err := t.State()
	if err != nil {
		return err
	}
	if len(s.Tensors) != len(want.Tensors) {
		return fmt.Errorf("unleash: the state holds %d tensors, this model and method need %d", len(s.Tensors), len(want.Tensors))
	}
	for i, w := range want.Tensors {
		g := s.Tensors[i]
		if g.Name != w.Name || g.Kind != w.Kind {
			return fmt.Errorf("unleash: state tensor %d is %s %q, want %s %q", i, g.Kind, g.Name, w.Kind, w.Name)
		}
		if !slices.Equal(g.Dims, w.Dims) || len(g.Data) != len(w.Data) {
			return fmt.Errorf("unleash: state tensor %s %q has shape %v (%d values), want %v", g.Kind, g.Name, g.Dims, len(g.Data), w.Dims)
		}
	}
	// Made in the backend's buffers as New makes them, all before any is swapped in: on an
	// error the trainer is unchanged.
	made := make([]*tensors.Tensor, len(s.Tensors))
	for i, g := range s.Tensors {
		v, err := t.newTensor(g.Data, g.Dims)
		if err != nil {
			for _, m := range made[:i] {
				release(m)
			}
			return err
		}
		made[i] = v
	}
	k := 0
	for _, st := range t.trained {
		release(st.value)
		release(st.mom)
		st.value, st.mom = made[k], made[k+1]
		k += 2
	}
	for _, p := range t.m.Params {
		if p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar {
			release(t.params[p.Name])
			t.params[p.Name] = made[k]
			k++
		}
	}
	for _, l := range t.masked {
		l.dirty = true
	}
	t.steps = s.Steps
	return nil
}

// ErrStateCorrupt is returned by ReadStateFile for a file that is not a whole state file.
var ErrStateCorrupt = errors.New("corrupt or truncated state file")

// StateFile is what a state file holds: the caller's metadata (JSON) and named trainer states.
//
// On disk: the magic "OODGUARD-STATE1\n", the length (uint64, little endian) of a JSON header
// {"meta": ..., "trainers": [{"key", "method", "steps", "tensors": [{"name", "kind",
// "dims"}]}]}, the header, every tensor's float32 values (little endian) in header order,
// and last the SHA-256 of everything before it.
type StateFile struct {
	Meta     json.RawMessage `json:"meta"`
	Trainers []NamedState    `json:"trainers"`
}

// NamedState is a trainer state with the key its owner stores it under.
type NamedState struct {
	Key string `json:"key"`
	TrainerState
}

// Trainer returns the state stored under key, or nil.
func (f *StateFile) Trainer(key string) *TrainerState {
	for i := range f.Trainers {
		if f.Trainers[i].Key == key {
			return &f.Trainers[i].TrainerState
		}
	}
	return nil
}

const stateMagic = "OODGUARD-STATE1\n"

// maxStateHeader bounds the JSON header a reader accepts.
const maxStateHeader = 64 << 20

// WriteStateFile writes f to path atomically (a temporary file, synced, renamed): a reader sees
// the previous file or the whole new one.
func WriteStateFile(path string, f *StateFile) error {
	hdr, err := json.Marshal(f)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(stateMagic)
	binary.Write(&buf, binary.LittleEndian, uint64(len(hdr)))
	buf.Write(hdr)
	var b [4]byte
	for _, tr := range f.Trainers {
		for _, ts := range tr.Tensors {
			for _, v := range ts.Data {
				binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
				buf.Write(b[:])
			}
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

// ReadStateFile reads a state file written by WriteStateFile. A file that is truncated, altered
// or not a state file gives an error that names it and wraps ErrStateCorrupt.
func ReadStateFile(path string) (*StateFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w: %v", path, ErrStateCorrupt, err)
	}
	return f, nil
}

func decodeState(data []byte) (*StateFile, error) {
	if len(data) < len(stateMagic) || string(data[:len(stateMagic)]) != stateMagic {
		return nil, errors.New("not an oodguard state file (no magic)")
	}
	if len(data) < len(stateMagic)+8+sha256.Size {
		return nil, fmt.Errorf("%d bytes, shorter than the smallest state file", len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("checksum mismatch (the file was cut short or altered)")
	}
	r := bytes.NewReader(body[len(stateMagic):])
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	if n > maxStateHeader || n > uint64(r.Len()) {
		return nil, fmt.Errorf("header of %d bytes in a file of %d", n, len(data))
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	f := &StateFile{}
	if err := json.Unmarshal(hdr, f); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var b [4]byte
	for i := range f.Trainers {
		for j := range f.Trainers[i].Tensors {
			ts := &f.Trainers[i].Tensors[j]
			size := 1
			for _, d := range ts.Dims {
				if d < 0 || (d > 0 && size > math.MaxInt32/d) {
					return nil, fmt.Errorf("tensor %q: bad shape %v", ts.Name, ts.Dims)
				}
				size *= d
			}
			if 4*size > r.Len() {
				return nil, fmt.Errorf("tensor %q of shape %v: only %d bytes left", ts.Name, ts.Dims, r.Len())
			}
			ts.Data = make([]float32, size)
			for k := range ts.Data {
				io.ReadFull(r, b[:])
				ts.Data[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
			}
		}
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the last tensor", r.Len())
	}
	return f, nil
}

// SettingsDiff compares the settings a run stored in its state with those of the run that
// would continue it, and returns one line per setting that differs ("lr: 0.1 in the state,
// 0.05 now"), in sorted order; none when they match.
func SettingsDiff(stored, now map[string]string) []string {
	keys := map[string]bool{}
	for k := range stored {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, inA := stored[k]
		b, inB := now[k]
		switch {
		case !inA:
			out = append(out, fmt.Sprintf("%s: not in the state, %s now", k, b))
		case !inB:
			out = append(out, fmt.Sprintf("%s: %s in the state, not set now", k, a))
		case a != b:
			out = append(out, fmt.Sprintf("%s: %s in the state, %s now", k, a, b))
		}
	}
	return out
}

// NumberedFile is a file named PREFIX + number + SUFFIX.
type NumberedFile struct {
	Path string
	N    int
}

// NumberedFiles lists the files in dir named prefix + a decimal number + suffix, by number.
func NumberedFiles(dir, prefix, suffix string) ([]NumberedFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []NumberedFile
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) <= len(prefix)+len(suffix) {
			continue
		}
		n, err := strconv.Atoi(name[len(prefix) : len(name)-len(suffix)])
		if err != nil || n < 0 {
			continue
		}
		out = append(out, NumberedFile{Path: filepath.Join(dir, name), N: n})
	}
	slices.SortFunc(out, func(a, b NumberedFile) int { return a.N - b.N })
	return out, nil
}

// NewestState returns the path of the newest state file NumberedFiles lists ("" when there is
// none) and, when there is an older one, a hint to add to errors about the newest: "; to resume
// from the one before (NAME), remove it". It reads neither file.
func NewestState(dir, prefix, suffix string) (path, hint string, err error) {
	files, err := NumberedFiles(dir, prefix, suffix)
	if err != nil || len(files) == 0 {
		return "", "", err
	}
	if len(files) > 1 {
		hint = fmt.Sprintf("; to resume from the one before (%s), remove it", filepath.Base(files[len(files)-2].Path))
	}
	return files[len(files)-1].Path, hint, nil
}

// RemoveNumberedFiles removes the files NumberedFiles lists whose number is at most upTo.
func RemoveNumberedFiles(dir, prefix, suffix string, upTo int) error {
	files, err := NumberedFiles(dir, prefix, suffix)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.N <= upTo {
			if err := os.Remove(f.Path); err != nil {
				return err
			}
		}
	}
	return nil
}

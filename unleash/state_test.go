package unleash

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

func sampleStateFile() *StateFile {
	return &StateFile{
		Meta: json.RawMessage(`{"epoch":3}`),
		Trainers: []NamedState{{Key: "current", TrainerState: TrainerState{Method: "um", Steps: 7, Tensors: []StateTensor{
			{Name: "w", Kind: "value", Dims: []int{2, 3}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), 0, float32(math.Copysign(0, -1))}},
			{Name: "w", Kind: "momentum", Dims: []int{2, 3}, Data: []float32{1e-30, 2, 3, 4, 5, 6}},
			{Name: "s", Kind: "bn", Dims: []int{}, Data: []float32{9}},
		}}}},
	}
}

func encodeState(t testing.TB, f *StateFile) []byte {
	path := filepath.Join(t.TempDir(), "s.state")
	if err := WriteStateFile(path, f); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStateFileRoundTrip: what WriteStateFile writes reads back to the bit; a truncated file
// or one with a flipped bit is ErrStateCorrupt naming the file.
func TestStateFileRoundTrip(t *testing.T) {
	want := sampleStateFile()
	path := filepath.Join(t.TempDir(), "x.state")
	if err := WriteStateFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Meta) != string(want.Meta) || len(got.Trainers) != 1 || got.Trainer("current") == nil || got.Trainer("kept") != nil {
		t.Fatalf("read back %+v", got)
	}
	for i, w := range want.Trainers[0].Tensors {
		g := got.Trainers[0].Tensors[i]
		if g.Name != w.Name || g.Kind != w.Kind || len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %d: %+v, want %+v", i, g, w)
		}
		for k := range w.Data {
			if math.Float32bits(g.Data[k]) != math.Float32bits(w.Data[k]) {
				t.Errorf("tensor %d value %d: %v, want %v", i, k, g.Data[k], w.Data[k])
			}
		}
	}
	b, _ := os.ReadFile(path)
	for _, bad := range [][]byte{b[:len(b)-1], b[:len(b)/2], append(bytes.Clone(b[:40]), b[41:]...)} {
		os.WriteFile(path, bad, 0o644)
		if _, err := ReadStateFile(path); !errors.Is(err, ErrStateCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%d of %d bytes: %v, want ErrStateCorrupt naming the file", len(bad), len(b), err)
		}
	}
}

// TestRestoreChecks: a state of another method, model or shape is refused and leaves the trainer
// as it was; its own state restores.
func TestRestoreChecks(t *testing.T) {
	m, err := onnxgraph.Load("../testdata/unleash/tinybn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions(UM)
	tr, err := New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Restore(s); err != nil {
		t.Fatal(err)
	}
	o.Method = UMAP
	umap, err := New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := umap.Restore(s); err == nil {
		t.Error("a UM state restored into a UMAP trainer")
	}
	for name, edit := range map[string]func(*TrainerState){
		"renamed":   func(s *TrainerState) { s.Tensors[0].Name += "x" },
		"reshaped":  func(s *TrainerState) { s.Tensors[1].Dims = append(s.Tensors[1].Dims, 1) },
		"short":     func(s *TrainerState) { s.Tensors[1].Data = s.Tensors[1].Data[1:] },
		"one less":  func(s *TrainerState) { s.Tensors = s.Tensors[1:] },
		"neg steps": func(s *TrainerState) { s.Steps = -1 },
	} {
		c := *s
		c.Tensors = append([]StateTensor(nil), s.Tensors...)
		edit(&c)
		if err := tr.Restore(&c); err == nil {
			t.Errorf("%s state restored", name)
		}
	}
}

// FuzzStateFile feeds arbitrary bytes to the state file reader, as they are and with a valid
// checksum appended (so that the header and tensor parsing are reached): a state or an error,
// never a panic; a state read back writes and reads again to the same bytes.
func FuzzStateFile(f *testing.F) {
	good := encodeState(f, sampleStateFile())
	f.Add(good)
	f.Add(good[:len(good)-sha256.Size])
	f.Add([]byte(stateMagic + "\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add([]byte(stateMagic + "\x40\x00\x00\x00\x00\x00\x00\x00" + `{"trainers":[{"tensors":[{"dims":[65536,65536,65536]}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sum := sha256.Sum256(b)
		for _, in := range [][]byte{b, append(bytes.Clone(b), sum[:]...)} {
			st, err := decodeState(in)
			if err != nil {
				continue
			}
			again, err := decodeState(encodeState(t, st))
			if err != nil {
				t.Fatalf("a state read back does not read again: %v", err)
			}
			if len(again.Trainers) != len(st.Trainers) {
				t.Fatalf("%d trainers, then %d", len(st.Trainers), len(again.Trainers))
			}
		}
	})
}

// TestNewestState: the newest numbered state file by number (not by name), a hint naming the
// one before when there is one, and nothing for a missing or empty folder.
func TestNewestState(t *testing.T) {
	dir := t.TempDir()
	for _, dir := range []string{dir, filepath.Join(dir, "missing")} {
		if path, hint, err := NewestState(dir, "epoch-", ".state"); path != "" || hint != "" || err != nil {
			t.Errorf("%s: %q, %q, %v; want nothing", dir, path, hint, err)
		}
	}
	for _, name := range []string{"epoch-9.state", "epoch-x.state", "epoch-10.tmp", "other-11.state"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, hint, err := NewestState(dir, "epoch-", ".state")
	if path != filepath.Join(dir, "epoch-9.state") || hint != "" || err != nil {
		t.Errorf("one state file: %q, %q, %v", path, hint, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "epoch-10.state"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path, hint, err = NewestState(dir, "epoch-", ".state")
	if want := "; to resume from the one before (epoch-9.state), remove it"; path != filepath.Join(dir, "epoch-10.state") || hint != want || err != nil {
		t.Errorf("two state files: %q, %q, %v; want epoch-10.state and %q", path, hint, err, want)
	}
}

package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/score"
)

// testKey returns a deterministic Ed25519 key; distinct seeds give distinct keys.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testPub(seed byte) ed25519.PublicKey { return testKey(seed).Public().(ed25519.PublicKey) }

// testSpec is a 1x4x4 gray input: canaries are 64 bytes.
var testSpec = preprocess.Spec{
	Width: 4, Height: 4, Channels: 1, Resize: preprocess.ResizeStretch,
	Mean: []float32{0.5}, Std: []float32{0.25}, Layout: "NCHW",
}

// testManifest holds the manifest fields a test bundle gets.
func testManifest() Manifest {
	return Manifest{
		Version:     MustParseVersion("1.2.0"),
		DeviceClass: "test-board",
		Created:     time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Preprocess:  testSpec,
		Score:       score.Spec{Kind: score.KindEnergy, Temperature: 1},
		Threshold:   -3.25,
		MinDaemon:   MustParseVersion("0.1.0"),
		MinORT:      MustParseVersion("1.24.1"),
		Canaries: []Canary{
			{Name: "inline", Input: EncodeFloat32(make([]float32, 16)), Expected: 2.5, Tolerance: 1e-4},
			{Name: "file", InputFile: "canary-ood.f32", Expected: -7, Tolerance: 1e-4},
		},
	}
}

// writeTestFile writes data to dir/name and returns the path.
func writeTestFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testInput returns the inputs of a valid bundle signed with testKey(1), with files in a new
// temp dir; edit may change them before Build.
func testInput(t testing.TB) BuildInput {
	t.Helper()
	dir := t.TempDir()
	ramp := make([]float32, 16)
	for i := range ramp {
		ramp[i] = float32(i) / 4
	}
	return BuildInput{
		Model:       writeTestFile(t, dir, "m.onnx", bytes.Repeat([]byte("not really onnx "), 100)),
		Calibration: writeTestFile(t, dir, "c.json", []byte(`{"threshold": -3.25}`+"\n")),
		Canaries:    map[string]string{"canary-ood.f32": writeTestFile(t, dir, "ood.f32", EncodeFloat32(ramp))},
		Manifest:    testManifest(),
		Key:         testKey(1),
	}
}

// buildTest builds a valid bundle into a new temp dir and returns its path.
func buildTest(t testing.TB, edit func(*BuildInput)) string {
	t.Helper()
	in := testInput(t)
	if edit != nil {
		edit(&in)
	}
	dst := filepath.Join(t.TempDir(), "b.tar")
	if _, err := Build(dst, in); err != nil {
		t.Fatal(err)
	}
	return dst
}

// entry is one tar entry read back from, or crafted into, a test archive.
type entry struct {
	hdr  tar.Header
	data []byte
}

func readEntries(t testing.TB, data []byte) []entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var es []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{*h, b})
	}
}

// writeEntries makes a tar of es; each header's Size is set from its data unless the
// entry is not a regular file.
func writeEntries(t testing.TB, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func regular(name string, data []byte) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, data}
}

// find returns the index of the entry called name.
func find(t testing.TB, es []entry, name string) int {
	t.Helper()
	for i, e := range es {
		if e.hdr.Name == name {
			return i
		}
	}
	t.Fatalf("no entry %s", name)
	return -1
}

// resign replaces the manifest (edited by edit) and signs it with key.
func resign(t testing.TB, es []entry, key ed25519.PrivateKey, edit func([]byte) []byte) []entry {
	t.Helper()
	i, j := find(t, es, ManifestName), find(t, es, SignatureName)
	m := edit(bytes.Clone(es[i].data))
	sig, err := Sign(m, key).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	es[i].data, es[j].data = m, sig
	return es
}

// mustRead reads a file or fails the test.
func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package bundle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestBuildDeterministicAndAtomic(t *testing.T) {
	in := testInput(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, p := range []string{a, b} {
		if _, err := Build(p, in); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(mustRead(t, a), mustRead(t, b)) {
		t.Error("two builds of the same input differ")
	}
	es := readEntries(t, mustRead(t, a))
	var names []string
	for _, e := range es {
		names = append(names, e.hdr.Name)
	}
	want := []string{ManifestName, SignatureName, ModelName, CalibrationName, "canary-ood.f32"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v", names, want)
		}
	}

	// A failed build leaves neither the bundle nor a temporary file.
	bad := in
	bad.Manifest.DeviceClass = ""
	if _, err := Build(filepath.Join(dir, "c.tar"), bad); err == nil {
		t.Error("manifest without device class built")
	}
	bad = in
	bad.Canaries = map[string]string{"canary-ood.f32": filepath.Join(dir, "missing")}
	if _, err := Build(filepath.Join(dir, "c.tar"), bad); err == nil {
		t.Error("missing canary file built")
	}
	bad = in
	bad.Key = nil
	if _, err := Build(filepath.Join(dir, "c.tar"), bad); err == nil {
		t.Error("unsigned bundle built")
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 2 {
		t.Errorf("dir holds %v", left)
	}
}

func TestBuildRefusesChangedInput(t *testing.T) {
	in := testInput(t)
	m := in.Manifest
	m.FormatVersion = FormatVersion
	m.Files = map[string]File{ModelName: {}}
	names := []string{ModelName}
	sources := map[string]string{ModelName: in.Model}
	f, err := hashFile(in.Model)
	if err != nil {
		t.Fatal(err)
	}
	m.Files[ModelName] = f
	// The model changes between hashing and copying.
	if err := os.WriteFile(in.Model, []byte("swapped"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeArchive(&buf, &m, []byte("{}"), []byte("{}"), names, sources); err == nil {
		t.Error("changed model packed")
	}
}

package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
)

// seedBundles returns a valid bundle, plain and gzipped, and every refused variant of
// TestVerifyRefuses.
func seedBundles(f *testing.F) [][]byte {
	valid := mustRead(f, buildTest(f, nil))
	seeds := [][]byte{valid, mustRead(f, buildTest(f, func(in *BuildInput) { in.Gzip = true }))}
	for _, c := range refusals {
		data := valid
		if c.edit != nil {
			data = writeEntries(f, c.edit(f, readEntries(f, valid)))
		}
		if c.raw != nil {
			data = c.raw(bytes.Clone(data))
		}
		seeds = append(seeds, data)
	}
	return seeds
}

func FuzzManifest(f *testing.F) {
	valid := validManifest(f)
	f.Add(valid)
	for _, seed := range seedBundles(f) {
		if b := firstEntry(seed); b != nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"{}", "null", `{"format_version":1}`, string(valid[:len(valid)/2])} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if m != nil || !errors.Is(err, ErrMalformedManifest) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("ParseManifest = %v, %v", m, err)
			}
			return
		}
		// What parses re-encodes to a manifest that parses to the same encoding.
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("re-encoded manifest: %v\n%s", err, out)
		}
		if out2, _ := m2.Marshal(); !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable:\n%s\n%s", out, out2)
		}
	})
}

func FuzzOpenBundle(f *testing.F) {
	for _, seed := range seedBundles(f) {
		f.Add(seed)
	}
	kr := NewKeyring(testPub(1), testPub(2))
	root := f.TempDir()
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		staging := filepath.Join(root, strconv.FormatInt(n.Add(1), 10))
		opts := Options{StagingDir: staging, DeviceClass: "test-board", Limits: Limits{Total: 1 << 20}}
		b, err := Verify(bytes.NewReader(data), kr, opts)
		if err != nil {
			if b != nil {
				t.Fatalf("Verify returned a bundle and %v", err)
			}
			if !wrapsSentinel(err) {
				t.Errorf("error wraps no sentinel: %v", err)
			}
			for _, p := range []string{staging, staging + UnverifiedSuffix} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("failed Verify left %s", p)
				}
			}
			return
		}
		if b.Dir != staging || b.Manifest == nil {
			t.Fatalf("bundle = %+v", b)
		}
		if _, err := os.Stat(filepath.Join(staging, ModelName)); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(staging)
	})
}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// firstEntry returns the data of a tar archive's first entry, or nil.
func firstEntry(data []byte) []byte {
	tr := tar.NewReader(bytes.NewReader(data))
	if _, err := tr.Next(); err != nil {
		return nil
	}
	b, _ := io.ReadAll(tr)
	return b
}

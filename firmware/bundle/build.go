package bundle

import (
	"archive/tar"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/oodguard/oodguard/internal/atomicfile"
)

// BuildInput is what Build packs.
type BuildInput struct {
	Model       string            // path of the ONNX model, packed as model.onnx
	Calibration string            // path of its calibration, packed as calibration.json
	Canaries    map[string]string // canary input files: entry name (canary-NAME.f32) -> path
	// Manifest gives every manifest field except FormatVersion and Files, which Build fills;
	// a zero Created becomes the current time (UTC, whole seconds).
	Manifest Manifest
	Key      ed25519.PrivateKey // signing key
	Gzip     bool               // compress the archive with gzip
}

// Build writes a signed bundle to dst atomically (temporary file, fsync, rename) and returns
// its manifest. The archive is deterministic: the same inputs and Created give the same bytes.
func Build(dst string, in BuildInput) (*Manifest, error) {
	if len(in.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("build bundle: no Ed25519 signing key")
	}
	sources := map[string]string{ModelName: in.Model, CalibrationName: in.Calibration}
	for name, path := range in.Canaries {
		if !canaryFileRE.MatchString(name) {
			return nil, fmt.Errorf("build bundle: canary file name %q does not match %s", name, canaryFileRE)
		}
		sources[name] = path
	}
	m := in.Manifest
	m.FormatVersion = FormatVersion
	if m.Created.IsZero() {
		m.Created = time.Now().UTC().Truncate(time.Second)
	}
	m.Files = make(map[string]File, len(sources))
	for name, path := range sources {
		f, err := hashFile(path)
		if err != nil {
			return nil, fmt.Errorf("build bundle: %s: %w", name, err)
		}
		m.Files[name] = f
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("build bundle: %w", err)
	}
	manifest, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("build bundle: %w", err)
	}
	sig, err := Sign(manifest, in.Key).Marshal()
	if err != nil {
		return nil, fmt.Errorf("build bundle: %w", err)
	}
	// Payload order: model, calibration, then canaries by name.
	names := append([]string{ModelName, CalibrationName},
		slices.Sorted(maps.Keys(in.Canaries))...)
	err = atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		if in.Gzip {
			zw := gzip.NewWriter(w)
			if err := writeArchive(zw, &m, manifest, sig, names, sources); err != nil {
				return err
			}
			return zw.Close()
		}
		return writeArchive(w, &m, manifest, sig, names, sources)
	})
	if err != nil {
		return nil, fmt.Errorf("build bundle %s: %w", dst, err)
	}
	return &m, nil
}

// writeArchive writes the tar: manifest, signature, then the payload files in names order,
// each checked against the digest in m while it is copied.
func writeArchive(w io.Writer, m *Manifest, manifest, sig []byte, names []string, sources map[string]string) error {
	tw := tar.NewWriter(w)
	add := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
			ModTime: m.Created.Truncate(time.Second), Format: tar.FormatUSTAR,
		})
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{ManifestName, manifest}, {SignatureName, sig}} {
		if err := add(e.name, int64(len(e.data))); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	for _, name := range names {
		if err := add(name, m.Files[name].Size); err != nil {
			return err
		}
		if err := copyChecked(tw, sources[name], m.Files[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return tw.Close()
}

// copyChecked copies the file at path to w and fails if it no longer matches f (it changed
// after it was hashed).
func copyChecked(w io.Writer, path string, f File) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(src, f.Size+1))
	if err != nil {
		return err
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("%s changed while the bundle was built", path)
	}
	return nil
}

// hashFile returns the sha256 and size of the file at path.
func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

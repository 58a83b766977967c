package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
)

// Bundle is a verified bundle.
type Bundle struct {
	Manifest *Manifest
	KeyID    string // the key that signed it
	Dir      string // where its files are: Options.StagingDir, or "" when nothing was extracted
}

// Open verifies the bundle file at path; see Verify.
func Open(path string, kr *Keyring, opts Options) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	b, err := Verify(f, kr, opts)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	return b, nil
}

// Verify reads a bundle from r in one pass and checks, in order: the entry layout, the
// signature of manifest.json with the key its key id names in kr, the manifest itself, the
// device class and version policy of opts, then each file's size and sha256. With
// opts.StagingDir it extracts the files (see Options.StagingDir); nothing touches the disk
// before the manifest is authenticated, and on any failure nothing is left behind.
func Verify(r io.Reader, kr *Keyring, opts Options) (b *Bundle, err error) {
	if opts.StagingDir != "" {
		if err := checkStagingFree(opts.StagingDir); err != nil {
			return nil, err
		}
	}
	v := &verifier{kr: kr, opts: opts, lim: opts.Limits.withDefaults(), seen: map[string]bool{}}
	defer func() {
		if err != nil && v.stage != nil {
			v.stage.abort()
		}
	}()
	ar, err := openArchive(r, v.lim.Total)
	if err != nil {
		return nil, err
	}
	var end int64 // where the last entry ended
	for {
		h, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, archiveError(fmt.Sprintf("after %d entries", len(v.seen)), err)
		}
		start := ar.consumed()
		if err := v.entry(h, ar); err != nil {
			return nil, err
		}
		end = start + padded(h.Size)
	}
	if err := ar.finish(end); err != nil {
		return nil, err
	}
	if err := v.finish(); err != nil {
		return nil, err
	}
	b = &Bundle{Manifest: v.m, KeyID: v.keyID}
	if v.stage != nil {
		if err := v.stage.commit(); err != nil {
			return nil, err
		}
		b.Dir = v.stage.dir
	}
	return b, nil
}

// verifier holds the state of one pass over a bundle.
type verifier struct {
	kr   *Keyring
	opts Options
	lim  Limits

	seen     map[string]bool
	manifest []byte    // exact bytes of manifest.json, once read
	m        *Manifest // parsed once the signature checked out
	keyID    string
	stage    *staging // nil without a staging dir
}

// entry checks one archive entry and consumes its data.
func (v *verifier) entry(h *tar.Header, r io.Reader) error {
	if err := checkEntry(h); err != nil {
		return err
	}
	name := h.Name
	if v.seen[name] {
		return fmt.Errorf("entry %q: %w", name, ErrDuplicateEntry)
	}
	v.seen[name] = true
	switch {
	case v.manifest == nil:
		if name != ManifestName {
			return fmt.Errorf("entry %q: %w: %s must come first", name, ErrUnexpectedEntry, ManifestName)
		}
		data, err := readEntry(name, h.Size, v.lim.Manifest, r)
		v.manifest = data
		return err
	case v.m == nil:
		if name != SignatureName {
			return fmt.Errorf("entry %q: %w: %s must follow %s", name, ErrUnexpectedEntry, SignatureName, ManifestName)
		}
		sig, err := readEntry(name, h.Size, maxSignature, r)
		if err != nil {
			return err
		}
		return v.authenticate(sig)
	}
	f, ok := v.m.Files[name]
	if !ok {
		return fmt.Errorf("entry %q: %w: not listed in %s", name, ErrUnexpectedEntry, ManifestName)
	}
	if h.Size != f.Size {
		return fmt.Errorf("%s: %w: archive entry has %d bytes, manifest says %d", name, ErrSizeMismatch, h.Size, f.Size)
	}
	return v.payload(name, f, r)
}

// readEntry reads a small entry whole, refusing one over max bytes.
func readEntry(name string, size, max int64, r io.Reader) ([]byte, error) {
	if size > max {
		return nil, fmt.Errorf("%s: %w: %d bytes (limit %d)", name, ErrTooLarge, size, max)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, archiveError(name, err)
	}
	return data, nil
}

// authenticate checks the signature over the manifest, then parses it and applies the policy
// and size limits; only then may anything be written.
func (v *verifier) authenticate(sigData []byte) error {
	sig, err := ParseSignature(sigData)
	if err != nil {
		return err
	}
	if v.keyID, err = v.kr.Verify(v.manifest, sig); err != nil {
		return err
	}
	m, err := ParseManifest(v.manifest)
	if err != nil {
		return err
	}
	if err := v.opts.accept(m); err != nil {
		return err
	}
	if err := v.lim.checkSizes(m); err != nil {
		return err
	}
	v.m = m
	if v.opts.StagingDir == "" {
		return nil
	}
	if v.stage, err = newStaging(v.opts.StagingDir); err != nil {
		return err
	}
	if err := v.stage.writeFile(ManifestName, v.manifest); err != nil {
		return err
	}
	return v.stage.writeFile(SignatureName, sigData)
}

// payload copies one payload file to the staging dir (or nowhere) and checks its digest.
func (v *verifier) payload(name string, f File, r io.Reader) (err error) {
	dst := io.Discard
	if v.stage != nil {
		out, cerr := v.stage.create(name)
		if cerr != nil {
			return cerr
		}
		defer func() {
			if cerr := out.close(); err == nil {
				err = cerr
			}
		}()
		dst = out
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), r); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errOverCap) {
			return archiveError(name, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%s: %w: sha256 %s, manifest says %s", name, ErrHashMismatch, got, f.SHA256)
	}
	return nil
}

// finish checks that the archive held every file it had to.
func (v *verifier) finish() error {
	switch {
	case v.manifest == nil:
		return fmt.Errorf("%s: %w", ManifestName, ErrMissingFile)
	case v.m == nil:
		return fmt.Errorf("%s: %w", SignatureName, ErrMissingFile)
	}
	for _, name := range slices.Sorted(maps.Keys(v.m.Files)) {
		if !v.seen[name] {
			return fmt.Errorf("%s: %w: listed in %s, not in the archive", name, ErrMissingFile, ManifestName)
		}
	}
	return nil
}

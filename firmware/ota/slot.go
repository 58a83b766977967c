package ota

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/internal/atomicfile"
)

// Slot is an installed bundle: a folder slots/NAME holding the files bundle.Open extracted
// (manifest.json, manifest.sig, model.onnx, calibration.json, canaries). Slots are never
// changed once installed. The embedded Bundle gives the manifest, the folder (Dir) and the
// canary inputs (CanaryInput).
type Slot struct {
	Name string // VERSION-N, e.g. "1.3.0-1"
	*bundle.Bundle
}

// ModelPath returns the path of the slot's model.onnx.
func (s Slot) ModelPath() string { return filepath.Join(s.Dir, bundle.ModelName) }

// CalibrationPath returns the path of the slot's calibration.json.
func (s Slot) CalibrationPath() string { return filepath.Join(s.Dir, bundle.CalibrationName) }

// Version returns the slot's bundle version.
func (s Slot) Version() bundle.Version { return s.Manifest.Version }

// validSlotName reports whether name is VERSION-N with a valid version and N >= 1.
func validSlotName(name string) bool {
	_, _, err := parseSlotName(name)
	return err == nil
}

func parseSlotName(name string) (bundle.Version, int, error) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return bundle.Version{}, 0, fmt.Errorf("slot name %q: no -N suffix", name)
	}
	v, err := bundle.ParseVersion(name[:i])
	if err != nil || v.String() != name[:i] {
		return bundle.Version{}, 0, fmt.Errorf("slot name %q: bad version", name)
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 1 || strconv.Itoa(n) != name[i+1:] {
		return bundle.Version{}, 0, fmt.Errorf("slot name %q: bad number", name)
	}
	return v, n, nil
}

// nextSlotName returns VERSION-N with N one more than any slot of that version in dir, so
// that a reinstalled version gets a folder of its own.
func nextSlotName(dir string, v bundle.Version) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	n := 0
	for _, e := range entries {
		if ev, en, err := parseSlotName(e.Name()); err == nil && ev == v {
			n = max(n, en)
		}
	}
	return v.String() + "-" + strconv.Itoa(n+1), nil
}

// checkSlot reads the slot folder dir and checks that every file its manifest lists is there
// with the size and sha256 the manifest gives. It does not check the signature again: the
// signature was checked when the slot was installed, and the state folder is trusted as much
// as the keyring (a key rotation must not turn installed slots unusable).
func checkSlot(name, dir string) (Slot, error) {
	fail := func(err error) (Slot, error) {
		return Slot{}, fmt.Errorf("slot %s: %w: %w", name, ErrSlotDamaged, err)
	}
	raw, err := readCapped(filepath.Join(dir, bundle.ManifestName), bundle.DefaultMaxManifest)
	if err != nil {
		return fail(err)
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return fail(err)
	}
	if v, _, err := parseSlotName(name); err != nil || v != m.Version {
		return fail(fmt.Errorf("manifest version %s does not match the slot name", m.Version))
	}
	sigRaw, err := readCapped(filepath.Join(dir, bundle.SignatureName), 4<<10)
	if err != nil {
		return fail(err)
	}
	sig, err := bundle.ParseSignature(sigRaw)
	if err != nil {
		return fail(err)
	}
	for _, fname := range slices.Sorted(maps.Keys(m.Files)) {
		if err := checkFile(filepath.Join(dir, fname), m.Files[fname]); err != nil {
			return fail(err)
		}
	}
	return Slot{Name: name, Bundle: &bundle.Bundle{Manifest: m, KeyID: sig.KeyID, Dir: dir}}, nil
}

// checkFile compares a file's size and sha256 with want.
func checkFile(path string, want bundle.File) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, want.Size+1))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if n != want.Size {
		return fmt.Errorf("%s: %w: %d bytes, manifest says %d", filepath.Base(path), bundle.ErrSizeMismatch, n, want.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return fmt.Errorf("%s: %w: %s, manifest says %s", filepath.Base(path), bundle.ErrHashMismatch, got, want.SHA256)
	}
	return nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", filepath.Base(path), limit)
	}
	return b, nil
}

// setLink points the symlink dir/name at slots/slot ("" removes it). It creates the new link
// under a temporary name and renames it over the old one, so that the link always exists and
// names a whole slot, then syncs dir so that the switch survives a power loss. A link that is
// already right is left alone.
func (s *Store) setLink(name, slot string) error {
	path := filepath.Join(s.dir, name)
	old, err := os.Readlink(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, err)
	}
	if slot == "" {
		if err != nil {
			return nil // already absent
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		crash("link-removed:" + name)
		return atomicfile.SyncDir(s.dir)
	}
	target := filepath.Join(SlotsDir, slot)
	if err == nil && old == target {
		return nil
	}
	tmp := filepath.Join(s.dir, "."+name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	crash("link-created:" + name)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", name, err)
	}
	crash("link-renamed:" + name)
	return atomicfile.SyncDir(s.dir)
}

// applyLinks makes the current and previous links say what st says. The state file is written
// first, so after a crash the links may lag behind it; this brings them in line.
func (s *Store) applyLinks(st State) error {
	if err := s.setLink(CurrentLink, st.Current); err != nil {
		return err
	}
	return s.setLink(PreviousLink, st.Previous)
}

// gc removes every entry of slots/ that st does not name (older slots, slots of installs that
// were interrupted before their state was written, extraction leftovers) and the temporary files
// a crash may leave in the state folder. Call it only once the links agree with st.
func (s *Store) gc(st State) error {
	keep := map[string]bool{}
	for _, name := range []string{st.Current, st.Previous, st.Pending} {
		if name != "" {
			keep[name] = true
		}
	}
	entries, err := os.ReadDir(s.slots)
	if err != nil {
		return fmt.Errorf("collect slots: %w", err)
	}
	removed := false
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.slots, e.Name())); err != nil {
			return fmt.Errorf("collect slots: %w", err)
		}
		removed = true
		s.log.Info("removed slot", fieldSlot(e.Name()))
		crash("gc-removed")
	}
	if removed {
		if err := atomicfile.SyncDir(s.slots); err != nil {
			return err
		}
	}
	for _, pat := range []string{"." + CurrentLink + ".tmp", "." + PreviousLink + ".tmp", "." + StateName + ".tmp-*"} {
		matches, _ := filepath.Glob(filepath.Join(s.dir, pat))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	return nil
}

package ota

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/score"
)

const testClass = "test-board"

// Bundles the tests install, built once per test binary into bundlesDir by TestMain (a crash
// child reuses its parent's through envBundles).
var testVersions = []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"}

var bundlesDir string

const envBundles = "OTA_TEST_BUNDLES"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envBundles); dir != "" {
		bundlesDir = dir
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ota-bundles-")
	if err != nil {
		panic(err)
	}
	bundlesDir = dir
	for _, v := range testVersions {
		if err := buildBundle(filepath.Join(dir, v+".bundle"), v, testKey(1), testClass); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testKey returns a deterministic Ed25519 key; distinct seeds give distinct keys.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testKeyring() *bundle.Keyring {
	return bundle.NewKeyring(testKey(1).Public().(ed25519.PublicKey))
}

// bundlePath returns the path of the test bundle of version v.
func bundlePath(v string) string { return filepath.Join(bundlesDir, v+".bundle") }

// modelBytes is the fake model.onnx of version v: the slot tests never load it.
func modelBytes(v string) []byte {
	return bytes.Repeat([]byte("not really onnx, version "+v+"\n"), 200)
}

// buildBundle builds a signed bundle of version v for class into dst.
func buildBundle(dst, v string, key ed25519.PrivateKey, class string) error {
	src, err := os.MkdirTemp("", "ota-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	model := filepath.Join(src, "m.onnx")
	cal := filepath.Join(src, "c.json")
	if err := os.WriteFile(model, modelBytes(v), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cal, []byte(`{"version": "`+v+`"}`+"\n"), 0o644); err != nil {
		return err
	}
	_, err = bundle.Build(dst, bundle.BuildInput{
		Model:       model,
		Calibration: cal,
		Key:         key,
		Manifest: bundle.Manifest{
			Version:     bundle.MustParseVersion(v),
			DeviceClass: class,
			Created:     time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
			Preprocess: preprocess.Spec{
				Width: 4, Height: 4, Channels: 1, Resize: preprocess.ResizeStretch,
				Mean: []float32{0.5}, Std: []float32{0.25}, Layout: "NCHW",
			},
			Score:     score.Spec{Kind: score.KindEnergy, Temperature: 1},
			Threshold: -3.25,
			Canaries: []bundle.Canary{
				{Name: "zeros", Input: bundle.EncodeFloat32(make([]float32, 16)), Expected: 2.5, Tolerance: 1e-4},
			},
		},
	})
	return err
}

// recorder collects the states a store reports.
type recorder struct {
	mu     sync.Mutex
	states []State
}

func (r *recorder) record(st State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, st)
}

func (r *recorder) phases() []Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ps []Phase
	for _, st := range r.states {
		ps = append(ps, st.Phase)
	}
	return ps
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = nil
}

func testConfig(dir string) Config {
	return Config{Dir: dir, Keyring: testKeyring(), DeviceClass: testClass}
}

// openStore opens a store in dir with the test configuration, edited by edit when not nil.
func openStore(t testing.TB, dir string, edit func(*Config)) *Store {
	t.Helper()
	cfg := testConfig(dir)
	if edit != nil {
		edit(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRecover(t testing.TB, s *Store) State {
	t.Helper()
	st, err := s.Recover()
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	return st
}

func mustInstall(t testing.TB, s *Store, v string, opts InstallOptions) Slot {
	t.Helper()
	slot, err := s.Install(bundlePath(v), opts)
	if err != nil {
		t.Fatalf("install %s: %v", v, err)
	}
	return slot
}

func mustCommit(t testing.TB, s *Store) {
	t.Helper()
	if _, err := s.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// installCommitted installs and commits each version in turn, as a daemon would across
// restarts.
func installCommitted(t testing.TB, s *Store, versions ...string) {
	t.Helper()
	for _, v := range versions {
		mustInstall(t, s, v, InstallOptions{})
		mustRecover(t, s)
		mustCommit(t, s)
	}
}

// checkDisk checks the state folder dir from scratch, without the store's code: the state
// file parses and is at rest; the current and previous links name exactly the slots it names;
// each of those slots is complete (every file's sha256 matches its manifest, whose signature
// verifies) and has the version the state says; the current slot's version is one of want (""
// for no slot); nothing else is left in slots/ or the state folder. It returns the state.
func checkDisk(t testing.TB, dir string, want ...string) State {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, StateName))
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	st, err := parseState(raw)
	if err != nil {
		t.Fatalf("state file: %v\n%s", err, raw)
	}
	switch st.Phase {
	case PhaseIdle, PhaseTrial, PhaseCommitted, PhaseRolledBack:
	default:
		t.Errorf("phase %s after recovery", st.Phase)
	}
	version := ""
	if st.Current != "" {
		version = checkSlotOnDisk(t, dir, st.Current).String()
		if v := st.Version.String(); v != version {
			t.Errorf("state version %s, current slot has %s", v, version)
		}
	} else if !st.Version.IsZero() {
		t.Errorf("state version %s without a current slot", st.Version)
	}
	if !slices.Contains(want, version) {
		t.Errorf("current slot has version %q, want one of %q (state %+v)", version, want, st)
	}
	if st.Previous != "" {
		checkSlotOnDisk(t, dir, st.Previous)
	}
	checkLink(t, dir, CurrentLink, st.Current)
	checkLink(t, dir, PreviousLink, st.Previous)
	if st.Phase == PhaseTrial && (st.Pending != st.Current || st.Attempts < 1) {
		t.Errorf("trial state %+v: pending must be current, attempts at least 1", st)
	}
	if st.Phase != PhaseTrial && st.Pending != "" {
		t.Errorf("pending slot %q in phase %s", st.Pending, st.Phase)
	}
	var slots []string
	entries, err := os.ReadDir(filepath.Join(dir, SlotsDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		slots = append(slots, e.Name())
	}
	var named []string
	for _, n := range []string{st.Current, st.Previous} {
		if n != "" {
			named = append(named, n)
		}
	}
	slices.Sort(named)
	if !slices.Equal(slots, named) {
		t.Errorf("slots/ holds %q, the state names %q", slots, named)
	}
	entries, err = os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case StateName, SlotsDir, DownloadsDir, CurrentLink, PreviousLink:
		default:
			t.Errorf("leftover %s in the state folder", e.Name())
		}
	}
	return st
}

// checkSlotOnDisk checks the slot folder on its own and returns its version.
func checkSlotOnDisk(t testing.TB, dir, name string) bundle.Version {
	t.Helper()
	sdir := filepath.Join(dir, SlotsDir, name)
	mraw, err := os.ReadFile(filepath.Join(sdir, bundle.ManifestName))
	if err != nil {
		t.Fatalf("slot %s: %v", name, err)
	}
	sraw, err := os.ReadFile(filepath.Join(sdir, bundle.SignatureName))
	if err != nil {
		t.Fatalf("slot %s: %v", name, err)
	}
	sig, err := bundle.ParseSignature(sraw)
	if err != nil {
		t.Fatalf("slot %s: %v", name, err)
	}
	if _, err := testKeyring().Verify(mraw, sig); err != nil {
		t.Fatalf("slot %s: %v", name, err)
	}
	m, err := bundle.ParseManifest(mraw)
	if err != nil {
		t.Fatalf("slot %s: %v", name, err)
	}
	for fname, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(sdir, fname))
		if err != nil {
			t.Fatalf("slot %s: %v", name, err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != f.SHA256 || int64(len(data)) != f.Size {
			t.Errorf("slot %s: %s has sha256 %s (%d bytes), manifest says %s (%d bytes)", name, fname, got, len(data), f.SHA256, f.Size)
		}
	}
	if want := modelBytes(m.Version.String()); !bytes.Equal(mustRead(t, filepath.Join(sdir, bundle.ModelName)), want) {
		t.Errorf("slot %s: model.onnx is not the model of %s", name, m.Version)
	}
	if !strings.HasPrefix(name, m.Version.String()+"-") {
		t.Errorf("slot %s holds version %s", name, m.Version)
	}
	return m.Version
}

// checkLink checks that dir/link points at slots/slot, or is absent when slot is "".
func checkLink(t testing.TB, dir, link, slot string) {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, link))
	switch {
	case slot == "" && errors.Is(err, fs.ErrNotExist):
	case slot == "":
		t.Errorf("%s link: %q, %v; want none", link, target, err)
	case err != nil || target != filepath.Join(SlotsDir, slot):
		t.Errorf("%s link: %q, %v; want %s", link, target, err, filepath.Join(SlotsDir, slot))
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

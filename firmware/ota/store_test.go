package ota

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/firmware/bundle"
)

func TestInstallTrialCommit(t *testing.T) {
	dir := t.TempDir()
	var rec recorder
	s := openStore(t, dir, func(c *Config) { c.OnState = rec.record })
	if st := mustRecover(t, s); st.Phase != PhaseIdle || st.Current != "" {
		t.Fatalf("fresh store: %+v", st)
	}
	if _, err := s.Current(); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("Current on a fresh store: %v, want ErrNoSlot", err)
	}
	checkDisk(t, dir, "")

	rec.reset()
	slot := mustInstall(t, s, "1.0.0", InstallOptions{})
	if slot.Name != "1.0.0-1" || slot.Dir != filepath.Join(dir, SlotsDir, "1.0.0-1") || slot.Version().String() != "1.0.0" {
		t.Errorf("slot %+v", slot)
	}
	if got := mustRead(t, slot.ModelPath()); !bytes.Equal(got, modelBytes("1.0.0")) {
		t.Error("model.onnx differs from the bundle's")
	}
	if x, err := slot.CanaryInput(0); err != nil || len(x) != 16 {
		t.Errorf("canary input: %d values, %v", len(x), err)
	}
	if got, want := rec.phases(), []Phase{PhaseVerifying, PhaseInstalled, PhaseTrial}; !slices.Equal(got, want) {
		t.Errorf("reported phases %v, want %v", got, want)
	}
	if st := s.State(); st.Phase != PhaseTrial || st.Current != "1.0.0-1" || st.Pending != "1.0.0-1" || st.Previous != "" || st.Attempts != 0 {
		t.Errorf("after install: %+v", st)
	}
	checkLink(t, dir, CurrentLink, "1.0.0-1")
	if _, err := s.Commit(); !errors.Is(err, ErrTrialNotStarted) {
		t.Errorf("commit before a start on the slot: %v, want ErrTrialNotStarted", err)
	}

	// The daemon restarts into the slot (RecommendedSwap), then commits.
	s = openStore(t, dir, func(c *Config) { c.OnState = rec.record })
	if st := mustRecover(t, s); st.Phase != PhaseTrial || st.Attempts != 1 {
		t.Fatalf("recover on trial: %+v", st)
	}
	rec.reset()
	mustCommit(t, s)
	if got := rec.phases(); !slices.Equal(got, []Phase{PhaseCommitted}) {
		t.Errorf("reported %v", got)
	}
	if st := checkDisk(t, dir, "1.0.0"); st.Phase != PhaseCommitted {
		t.Errorf("after commit: %+v", st)
	}
	if _, err := s.Commit(); !errors.Is(err, ErrNoTrial) {
		t.Errorf("second commit: %v, want ErrNoTrial", err)
	}
	if _, err := s.Rollback("late"); !errors.Is(err, ErrNoTrial) {
		t.Errorf("rollback after commit: %v, want ErrNoTrial", err)
	}

	// A second version keeps the first as previous; the third drops the first.
	installCommitted(t, s, "1.1.0")
	if st := checkDisk(t, dir, "1.1.0"); st.Previous != "1.0.0-1" {
		t.Errorf("previous %q, want 1.0.0-1", st.Previous)
	}
	installCommitted(t, s, "1.2.0")
	if st := checkDisk(t, dir, "1.2.0"); st.Previous != "1.1.0-1" {
		t.Errorf("previous %q, want 1.1.0-1", st.Previous)
	}
}

func TestInstallRefusedDuringTrial(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	installCommitted(t, s, "1.0.0")
	mustInstall(t, s, "1.1.0", InstallOptions{})
	if _, err := s.Install(bundlePath("1.2.0"), InstallOptions{}); !errors.Is(err, ErrTrialPending) {
		t.Fatalf("install during trial: %v, want ErrTrialPending", err)
	}
	if _, err := s.Update(context.Background(), "http://127.0.0.1:1/x", strings.Repeat("0", 64), InstallOptions{}); !errors.Is(err, ErrTrialPending) {
		t.Fatalf("update during trial: %v, want ErrTrialPending", err)
	}
	mustRecover(t, s)
	if st := checkDisk(t, dir, "1.1.0"); st.Phase != PhaseTrial {
		t.Errorf("state %+v", st)
	}
}

// TestBadBundleLeavesCurrent installs bundles that must be refused and checks that the slot
// in service, the links and the slots are as they were.
func TestBadBundleLeavesCurrent(t *testing.T) {
	good, err := os.ReadFile(bundlePath("1.2.0"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	i := bytes.Index(tampered, modelBytes("1.2.0"))
	if i < 0 {
		t.Fatal("model not found in the bundle")
	}
	tampered[i+100] ^= 1
	src := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	build := func(name, v string, seed byte, class string) string {
		p := filepath.Join(src, name)
		if err := buildBundle(p, v, testKey(seed), class); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		path string
		opts InstallOptions
		want error
	}{
		{"tampered model", write("tampered", tampered), InstallOptions{}, bundle.ErrHashMismatch},
		{"truncated", write("truncated", good[:len(good)/2]), InstallOptions{}, bundle.ErrTruncated},
		{"unknown key", build("otherkey", "1.2.0", 9, testClass), InstallOptions{}, bundle.ErrUnknownKey},
		{"other device", build("otherclass", "1.2.0", 1, "other-board"), InstallOptions{}, bundle.ErrWrongDevice},
		{"downgrade", bundlePath("1.0.0"), InstallOptions{}, bundle.ErrDowngrade},
		{"reinstall", bundlePath("1.1.0"), InstallOptions{AllowDowngrade: true}, bundle.ErrReinstall},
		{"missing file", filepath.Join(src, "nope"), InstallOptions{}, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, nil)
			installCommitted(t, s, "1.0.0", "1.1.0")
			before := s.State()
			_, err := s.Install(tc.path, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("install: %v, want %v", err, tc.want)
			}
			st := s.State()
			if st.Phase != PhaseIdle || st.Current != before.Current || st.Previous != before.Previous || !strings.Contains(st.Reason, err.Error()) {
				t.Errorf("state after a refused bundle: %+v (before %+v)", st, before)
			}
			checkDisk(t, dir, "1.1.0")
			s = openStore(t, dir, nil)
			if st := mustRecover(t, s); st.Current != before.Current {
				t.Errorf("after restart: %+v", st)
			}
			checkDisk(t, dir, "1.1.0")
		})
	}
}

func TestVersionPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	installCommitted(t, s, "1.0.0", "1.1.0")
	slot := mustInstall(t, s, "1.1.0", InstallOptions{AllowReinstall: true})
	if slot.Name != "1.1.0-2" {
		t.Errorf("reinstalled slot %s, want 1.1.0-2", slot.Name)
	}
	mustRecover(t, s)
	mustCommit(t, s)
	if st := checkDisk(t, dir, "1.1.0"); st.Previous != "1.1.0-1" {
		t.Errorf("state %+v", st)
	}
	mustInstall(t, s, "1.0.0", InstallOptions{AllowDowngrade: true})
	mustRecover(t, s)
	mustCommit(t, s)
	checkDisk(t, dir, "1.0.0")
}

func TestRollback(t *testing.T) {
	dir := t.TempDir()
	var rec recorder
	s := openStore(t, dir, func(c *Config) { c.OnState = rec.record })
	installCommitted(t, s, "1.0.0")
	mustInstall(t, s, "1.1.0", InstallOptions{})
	mustRecover(t, s)
	rec.reset()
	st, err := s.Rollback("canary zeros: score 7.1, want 2.5±0.0001")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseRolledBack || st.Current != "1.0.0-1" || st.Previous != "" || !strings.Contains(st.Reason, "canary zeros") {
		t.Errorf("rolled back: %+v", st)
	}
	if got := rec.phases(); !slices.Equal(got, []Phase{PhaseRolledBack}) {
		t.Errorf("reported %v", got)
	}
	checkDisk(t, dir, "1.0.0")
	slot, err := s.Current()
	if err != nil || slot.Name != "1.0.0-1" || !bytes.Equal(mustRead(t, slot.ModelPath()), modelBytes("1.0.0")) {
		t.Errorf("current after rollback: %+v, %v", slot, err)
	}
	// The rolled-back version may be offered again, and installs as a new slot.
	if slot := mustInstall(t, s, "1.1.0", InstallOptions{}); slot.Name != "1.1.0-1" {
		t.Errorf("slot %s", slot.Name)
	}
}

func TestRollbackFirstInstall(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	mustInstall(t, s, "1.0.0", InstallOptions{})
	st, err := s.Rollback("model does not load")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseRolledBack || st.Current != "" {
		t.Errorf("state %+v", st)
	}
	checkDisk(t, dir, "")
	if _, err := s.Current(); !errors.Is(err, ErrNoSlot) {
		t.Errorf("Current: %v, want ErrNoSlot", err)
	}
}

// TestAttemptsExceeded is a daemon that dies every time it starts on the slot on trial.
func TestAttemptsExceeded(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(c *Config) { c.MaxAttempts = 2 })
	installCommitted(t, s, "1.0.0")
	mustInstall(t, s, "1.1.0", InstallOptions{})
	for i := 1; i <= 2; i++ {
		s = openStore(t, dir, func(c *Config) { c.MaxAttempts = 2 })
		if st := mustRecover(t, s); st.Phase != PhaseTrial || st.Attempts != i {
			t.Fatalf("start %d: %+v", i, st)
		}
	}
	s = openStore(t, dir, func(c *Config) { c.MaxAttempts = 2 })
	st := mustRecover(t, s)
	if st.Phase != PhaseRolledBack || st.Current != "1.0.0-1" || !strings.Contains(st.Reason, "started 2 times") {
		t.Fatalf("third start: %+v", st)
	}
	checkDisk(t, dir, "1.0.0")
}

func TestActivate(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (string, *Store) {
		dir := t.TempDir()
		s := openStore(t, dir, nil)
		installCommitted(t, s, "1.0.0")
		mustInstall(t, s, "1.1.0", InstallOptions{})
		mustRecover(t, s)
		return dir, s
	}
	// failCanary is a fake check: the canary of version bad is off.
	failCanary := func(bad string, seen *[]string) CheckFunc {
		return func(ctx context.Context, slot Slot) error {
			*seen = append(*seen, slot.Name)
			if slot.Version().String() == bad {
				return errors.New("canary zeros: score 7.1, want 2.5±0.0001")
			}
			return nil
		}
	}

	t.Run("trial passes", func(t *testing.T) {
		dir, s := setup(t)
		var seen []string
		slot, err := s.Activate(ctx, failCanary("none", &seen))
		if err != nil || slot.Name != "1.1.0-1" || !slices.Equal(seen, []string{"1.1.0-1"}) {
			t.Fatalf("activate: %s, %v (checked %v)", slot.Name, err, seen)
		}
		if st := checkDisk(t, dir, "1.1.0"); st.Phase != PhaseTrial {
			t.Errorf("state %+v", st)
		}
	})
	t.Run("canary fails on trial", func(t *testing.T) {
		dir, s := setup(t)
		var seen []string
		slot, err := s.Activate(ctx, failCanary("1.1.0", &seen))
		if err != nil || slot.Name != "1.0.0-1" || !slices.Equal(seen, []string{"1.1.0-1", "1.0.0-1"}) {
			t.Fatalf("activate: %s, %v (checked %v)", slot.Name, err, seen)
		}
		st := checkDisk(t, dir, "1.0.0")
		if st.Phase != PhaseRolledBack || !strings.Contains(st.Reason, "canary zeros") || !strings.Contains(st.Reason, "1.1.0-1") {
			t.Errorf("state %+v", st)
		}
	})
	t.Run("committed slot fails", func(t *testing.T) {
		dir, s := setup(t)
		mustCommit(t, s)
		var seen []string
		if _, err := s.Activate(ctx, failCanary("1.1.0", &seen)); err == nil || !strings.Contains(err.Error(), "canary zeros") {
			t.Fatalf("activate: %v", err)
		}
		if st := checkDisk(t, dir, "1.1.0"); st.Phase != PhaseCommitted {
			t.Errorf("state %+v", st)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		dir, s := setup(t)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Activate(ctx, func(ctx context.Context, slot Slot) error { return ctx.Err() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("activate: %v", err)
		}
		if st := checkDisk(t, dir, "1.1.0"); st.Phase != PhaseTrial {
			t.Errorf("a cancelled check rolled back: %+v", st)
		}
	})
	t.Run("nothing installed", func(t *testing.T) {
		s := openStore(t, t.TempDir(), nil)
		mustRecover(t, s)
		if _, err := s.Activate(ctx, func(context.Context, Slot) error { return nil }); !errors.Is(err, ErrNoSlot) {
			t.Fatalf("activate: %v, want ErrNoSlot", err)
		}
	})
}

func TestRecoverRepairs(t *testing.T) {
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		installCommitted(t, openStore(t, dir, nil), "1.0.0", "1.1.0")
		return dir
	}
	t.Run("missing state file", func(t *testing.T) {
		dir := setup(t)
		os.Remove(filepath.Join(dir, StateName))
		st := mustRecover(t, openStore(t, dir, nil))
		if st.Phase != PhaseCommitted || st.Current != "1.1.0-1" || st.Previous != "1.0.0-1" {
			t.Errorf("state %+v", st)
		}
		checkDisk(t, dir, "1.1.0")
	})
	t.Run("unreadable state file", func(t *testing.T) {
		dir := setup(t)
		if err := os.WriteFile(filepath.Join(dir, StateName), []byte(`{"phase": "tri`), 0o644); err != nil {
			t.Fatal(err)
		}
		st := mustRecover(t, openStore(t, dir, nil))
		if st.Phase != PhaseCommitted || st.Current != "1.1.0-1" || !strings.Contains(st.Reason, "unreadable") {
			t.Errorf("state %+v", st)
		}
		checkDisk(t, dir, "1.1.0")
	})
	t.Run("damaged current slot", func(t *testing.T) {
		dir := setup(t)
		model := filepath.Join(dir, SlotsDir, "1.1.0-1", bundle.ModelName)
		if err := os.WriteFile(model, []byte("bit rot"), 0o644); err != nil {
			t.Fatal(err)
		}
		st := mustRecover(t, openStore(t, dir, nil))
		if st.Phase != PhaseRolledBack || st.Current != "1.0.0-1" || !strings.Contains(st.Reason, "damaged") {
			t.Errorf("state %+v", st)
		}
		checkDisk(t, dir, "1.0.0")
	})
	t.Run("leftovers", func(t *testing.T) {
		dir := setup(t)
		for _, d := range []string{".staging.unverified", ".staging", "1.2.0-1", "1.2.0-1.unverified"} {
			p := filepath.Join(dir, SlotsDir, d)
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, bundle.ModelName), []byte("partial"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("slots/1.2.0-1", filepath.Join(dir, ".current.tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".ota-state.json.tmp-123"), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		if st := mustRecover(t, openStore(t, dir, nil)); st.Phase != PhaseCommitted {
			t.Errorf("state %+v", st)
		}
		checkDisk(t, dir, "1.1.0")
	})
	t.Run("interrupted update", func(t *testing.T) {
		dir := setup(t)
		s := openStore(t, dir, nil)
		st := s.State()
		st.Phase = PhaseVerifying
		if err := s.setState(st); err != nil {
			t.Fatal(err)
		}
		st = mustRecover(t, openStore(t, dir, nil))
		if st.Phase != PhaseIdle || st.Current != "1.1.0-1" || !strings.Contains(st.Reason, "interrupted while verifying") {
			t.Errorf("state %+v", st)
		}
		checkDisk(t, dir, "1.1.0")
	})
}

func TestOpenConfig(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.Dir = "" },
		func(c *Config) { c.Keyring = nil },
		func(c *Config) { c.DeviceClass = "" },
		func(c *Config) { c.MaxAttempts = -1 },
	} {
		cfg := testConfig(t.TempDir())
		edit(&cfg)
		if _, err := Open(cfg); err == nil {
			t.Errorf("Open(%+v) accepted", cfg)
		}
	}
}

func TestStateFile(t *testing.T) {
	for _, bad := range []string{
		`{"format": 2, "phase": "idle", "updated": "2026-01-01T00:00:00Z"}`,
		`{"format": 1, "phase": "sleeping", "updated": "2026-01-01T00:00:00Z"}`,
		`{"format": 1, "phase": "trial", "current": "1.0.0-1", "updated": "2026-01-01T00:00:00Z"}`,
		`{"format": 1, "phase": "committed", "current": "../etc-1", "updated": "2026-01-01T00:00:00Z"}`,
		`{"format": 1, "phase": "committed", "current": "1.0.0-1", "previous": "1.0.0-1", "updated": "2026-01-01T00:00:00Z"}`,
		`{"format": 1, "phase": "idle", "extra": 1, "updated": "2026-01-01T00:00:00Z"}`,
		`{"format": 1, "phase": "idle", "updated": "2026-01-01T00:00:00Z"} {}`,
	} {
		if st, err := parseState([]byte(bad)); err == nil {
			t.Errorf("parseState(%s) = %+v, want an error", bad, st)
		}
	}
	st := State{Phase: PhaseTrial, Current: "1.2.0-rc.1-3", Version: bundle.MustParseVersion("1.2.0-rc.1"), Previous: "1.1.0-1", Pending: "1.2.0-rc.1-3", Attempts: 2}
	b, err := marshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseState(b)
	if err != nil || got != st {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, st)
	}
}

func TestSlotNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"1.0.0-1": true, "1.2.0-rc.1-12": true, "1.0.0": false, "1.0.0-0": false, "1.0.0-01": false,
		"v1.0.0-1": false, "../1.0.0-1": false, ".staging": false, "1.0.0-1.unverified": false,
	} {
		if got := validSlotName(name); got != ok {
			t.Errorf("validSlotName(%q) = %v", name, got)
		}
	}
	dir := t.TempDir()
	for _, d := range []string{"1.0.0-1", "1.0.0-3", "1.0.0-rc.1-7", ".staging"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	for v, want := range map[string]string{"1.0.0": "1.0.0-4", "1.0.0-rc.1": "1.0.0-rc.1-8", "2.0.0": "2.0.0-1"} {
		if got, err := nextSlotName(dir, bundle.MustParseVersion(v)); err != nil || got != want {
			t.Errorf("nextSlotName(%s) = %s, %v; want %s", v, got, err, want)
		}
	}
}

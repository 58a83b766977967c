package ota

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/internal/atomicfile"
	"go.uber.org/zap"
)

// Names in the state folder.
const (
	StateName    = "ota-state.json" // the state machine (State), written atomically
	SlotsDir     = "slots"          // one folder per installed slot, slots/VERSION-N
	CurrentLink  = "current"        // symlink to slots/NAME: the slot in service
	PreviousLink = "previous"       // symlink to slots/NAME: the slot kept to roll back to
	DownloadsDir = "downloads"      // bundles being downloaded (SHA256.bundle.part)
	stagingName  = ".staging"       // under slots/: where bundle.Open extracts a new slot
)

// DefaultMaxAttempts is how many daemon starts a slot on trial gets by default before Recover
// rolls it back.
const DefaultMaxAttempts = 3

// Config says where the store lives and which bundles it accepts.
type Config struct {
	Dir         string          // state folder, e.g. /var/lib/oodguard; created when missing
	Keyring     *bundle.Keyring // keys a bundle may be signed with
	DeviceClass string          // this device's class; bundles for another class are refused
	Daemon      bundle.Version  // the running oodguardd, checked against min_daemon; zero skips
	ORT         bundle.Version  // the loaded ONNX Runtime, checked against min_onnxruntime; zero skips
	// MaxAttempts is how many times the daemon may start on a slot on trial without committing
	// it: the next Recover rolls it back. DefaultMaxAttempts when zero.
	MaxAttempts int
	Limits      bundle.Limits // caps on bundle sizes
	Downloader  *Downloader   // how Update fetches bundles; nil: the zero Downloader
	// OnState is called with every new state once it is on disk (and by Recover with the state
	// it recovered, changed or not), in order, while the store is locked: it must not call the
	// Store's methods other than State, and should hand the state off quickly (e.g. publish it
	// retained on MQTT).
	OnState func(State)
	Logger  *zap.Logger // used as given (callers name it, e.g. log.Named("ota")); nil logs nothing
}

// Store is the slot store of one state folder. Its methods are safe for concurrent use; they
// run one at a time. One process at a time may use a state folder.
type Store struct {
	cfg   Config
	dl    *Downloader
	log   *zap.Logger
	dir   string
	slots string

	mu      sync.Mutex      // serialises operations
	st      State           // as on disk; guarded by mu
	checked map[string]Slot // slots checked whole since they were installed or loaded; guarded by mu
	snap    atomic.Pointer[State]
}

// Open opens the store in cfg.Dir, creating the folder when needed. It changes nothing else:
// the daemon calls Recover next, before it uses a slot.
func Open(cfg Config) (*Store, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("ota: no state folder")
	case cfg.Keyring == nil:
		return nil, errors.New("ota: no keyring")
	case cfg.DeviceClass == "":
		return nil, errors.New("ota: no device class")
	case cfg.MaxAttempts < 0:
		return nil, fmt.Errorf("ota: max attempts %d is negative", cfg.MaxAttempts)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	s := &Store{cfg: cfg, dl: cfg.Downloader, log: cfg.Logger, dir: filepath.Clean(cfg.Dir), checked: map[string]Slot{}}
	if s.dl == nil {
		s.dl = &Downloader{}
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.slots = filepath.Join(s.dir, SlotsDir)
	for _, d := range []string{s.dir, s.slots, filepath.Join(s.dir, DownloadsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ota: %w", err)
		}
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return nil, fmt.Errorf("ota: %w", err)
	}
	st, err := s.readState()
	if err != nil { // Recover rebuilds it
		st = State{Phase: PhaseIdle}
	}
	s.st = st
	s.snap.Store(&st)
	return s, nil
}

// State returns the current state. It does not wait for a running operation.
func (s *Store) State() State { return *s.snap.Load() }

// Current returns the slot in service: on trial in PhaseTrial, else committed or rolled back
// to. It fails with ErrNoSlot when there is none, and with ErrSlotDamaged when its files do
// not match its manifest.
func (s *Store) Current() (Slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, _, err := s.current()
	return slot, err
}

func (s *Store) current() (Slot, State, error) {
	st := s.st
	if st.Current == "" {
		return Slot{}, st, ErrNoSlot
	}
	slot, err := s.check(st.Current)
	return slot, st, err
}

// check returns the named slot after checking its files once per process.
func (s *Store) check(name string) (Slot, error) {
	if slot, ok := s.checked[name]; ok {
		return slot, nil
	}
	slot, err := checkSlot(name, s.slotDir(name))
	if err != nil {
		return Slot{}, err
	}
	s.checked[name] = slot
	return slot, nil
}

func (s *Store) slotDir(name string) string { return filepath.Join(s.slots, name) }

// Recover brings the store to a consistent state; the daemon calls it once at every start,
// before it loads a slot. It
//
//   - rebuilds a missing or unreadable state file from the current link,
//   - ends an update that a stop interrupted before its switch (PhaseIdle, with a reason),
//   - checks the current slot's files against its manifest, and rolls back to the previous
//     slot when they do not match,
//   - counts this start against a slot on trial: when the daemon already started
//     Config.MaxAttempts times on it without committing it (it died while the slot was
//     pending, e.g. crashed loading the model), rolls back to the previous slot,
//   - points the current and previous links where the state file says, which completes a
//     switch that a crash interrupted, and removes slots and leftovers the state does not name.
//
// It reports the resulting state through OnState and returns it.
func (s *Store) Recover() (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.readState()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st = s.adopt("")
	case err != nil:
		st = s.adopt(fmt.Sprintf("%s was unreadable (%v); state rebuilt from the %s link", StateName, err, CurrentLink))
	}
	s.checked = map[string]Slot{}
	orig := st
	switch st.Phase {
	case PhaseDownloading, PhaseVerifying, PhaseInstalled:
		st.Reason = fmt.Sprintf("update interrupted while %s", st.Phase)
		st.Phase, st.Pending = PhaseIdle, ""
	}
	if st.Current != "" {
		if _, err := s.check(st.Current); err != nil {
			st = s.fallback(st, err.Error())
		}
	}
	if st.Phase == PhaseTrial {
		if st.Attempts >= s.cfg.MaxAttempts {
			st = s.fallback(st, fmt.Sprintf("slot %s on trial: the daemon started %d times without committing it", st.Current, st.Attempts))
		} else {
			st.Attempts++
		}
	}
	if st != orig || err != nil {
		if err := s.setState(st); err != nil {
			return s.st, err
		}
	} else {
		s.st = st
		s.snap.Store(&st)
		s.notify(st)
	}
	if err := s.settle(st); err != nil {
		return st, err
	}
	s.log.Info("recovered", zap.String("phase", string(st.Phase)), fieldSlot(st.Current), zap.Int("attempts", st.Attempts))
	return st, nil
}

// adopt builds a state from the links when the state file is missing or unreadable.
func (s *Store) adopt(reason string) State {
	st := State{Phase: PhaseIdle, Reason: reason}
	if name := s.linked(CurrentLink); name != "" {
		if slot, err := checkSlot(name, s.slotDir(name)); err == nil {
			st.Phase, st.Current, st.Version = PhaseCommitted, name, slot.Version()
		}
	}
	if name := s.linked(PreviousLink); name != "" && name != st.Current {
		if _, err := checkSlot(name, s.slotDir(name)); err == nil {
			st.Previous = name
		}
	}
	return st
}

// linked returns the slot a link names, or "".
func (s *Store) linked(link string) string {
	target, err := os.Readlink(filepath.Join(s.dir, link))
	if err != nil {
		return ""
	}
	dir, name := filepath.Split(filepath.Clean(target))
	if filepath.Clean(dir) != SlotsDir || !validSlotName(name) {
		return ""
	}
	return name
}

// fallback returns the state after abandoning st's current slot for reason: the previous slot
// in service again when it is whole, else no slot at all.
func (s *Store) fallback(st State, reason string) State {
	next := State{Phase: PhaseRolledBack, Reason: reason}
	if st.Previous != "" {
		prev, err := s.check(st.Previous)
		if err == nil {
			next.Current, next.Version = st.Previous, prev.Version()
		} else {
			next.Reason += "; no slot to roll back to: " + err.Error()
		}
	} else {
		next.Reason += "; no slot to roll back to"
	}
	s.log.Warn("rolling back", fieldSlot(st.Current), zap.String("to", next.Current), zap.String("reason", next.Reason))
	return next
}

// settle points the links where st says and removes what st does not name.
func (s *Store) settle(st State) error {
	if err := s.applyLinks(st); err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	if err := s.gc(st); err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	for name := range s.checked {
		if name != st.Current && name != st.Previous && name != st.Pending {
			delete(s.checked, name)
		}
	}
	return nil
}

// InstallOptions relax the version policy for one install.
type InstallOptions struct {
	AllowDowngrade bool // accept a bundle older than the current slot
	AllowReinstall bool // accept the current slot's version again
}

// Update downloads the bundle at url, whose sha256 (lowercase hex) the update command gave,
// resuming an earlier interrupted download of it, and installs it (see Install). A download
// that fails keeps what it got: calling Update again with the same sha256 resumes it.
func (s *Store) Update(ctx context.Context, url, sha256 string, opts InstallOptions) (Slot, error) {
	if !validSHA256(sha256) {
		return Slot{}, fmt.Errorf("ota: update: %w: %q", ErrBadChecksum, sha256)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.st
	if base.Phase == PhaseTrial {
		return Slot{}, fmt.Errorf("ota: update: %w: slot %s", ErrTrialPending, base.Current)
	}
	st := base
	st.Phase, st.Pending, st.Reason, st.Attempts = PhaseDownloading, "", "", 0
	if err := s.setState(st); err != nil {
		return Slot{}, err
	}
	downloads := filepath.Join(s.dir, DownloadsDir)
	dst := filepath.Join(downloads, sha256+".bundle")
	removeStale(downloads, dst)
	if err := s.dl.Download(ctx, url, sha256, dst); err != nil {
		return Slot{}, s.fail(base, fmt.Errorf("ota: update: %w", err))
	}
	defer os.Remove(dst)
	return s.install(base, dst, opts)
}

// removeStale removes the downloads other than keep and its partial file.
func removeStale(dir, keep string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if p != keep && p != keep+PartSuffix {
			os.RemoveAll(p)
		}
	}
}

// Install verifies the bundle file at path with bundle.Open (signature, every file's sha256,
// device class, version policy against the current slot) into a new slot, then puts the new
// slot on trial: the state file records it as pending, with the current slot as previous,
// before the current link switches to it. The daemon then brings the slot into service (see
// RecommendedSwap) and calls Commit or Rollback. A bundle that fails leaves the current slot as
// it was; the error wraps the bundle package's sentinel (bundle.ErrHashMismatch, ...). While a
// slot is on trial, Install fails with ErrTrialPending.
func (s *Store) Install(path string, opts InstallOptions) (Slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Phase == PhaseTrial {
		return Slot{}, fmt.Errorf("ota: install: %w: slot %s", ErrTrialPending, s.st.Current)
	}
	return s.install(s.st, path, opts)
}

// install runs an install from the state base (at rest, not on trial).
func (s *Store) install(base State, path string, opts InstallOptions) (Slot, error) {
	st := base
	st.Phase, st.Pending, st.Reason, st.Attempts = PhaseVerifying, "", "", 0
	if err := s.setState(st); err != nil {
		return Slot{}, err
	}
	if err := s.gc(st); err != nil { // leftovers of an interrupted install, .staging included
		return Slot{}, s.fail(base, fmt.Errorf("ota: install: %w", err))
	}
	staging := filepath.Join(s.slots, stagingName)
	b, err := bundle.Open(path, s.cfg.Keyring, bundle.Options{
		DeviceClass:    s.cfg.DeviceClass,
		Installed:      base.Version,
		AllowDowngrade: opts.AllowDowngrade,
		AllowReinstall: opts.AllowReinstall,
		Daemon:         s.cfg.Daemon,
		ORT:            s.cfg.ORT,
		StagingDir:     staging,
		Limits:         s.cfg.Limits,
	})
	if err != nil {
		return Slot{}, s.fail(base, fmt.Errorf("ota: install: %w", err))
	}
	crash("extracted")
	name, err := nextSlotName(s.slots, b.Manifest.Version)
	if err != nil {
		return Slot{}, s.fail(base, fmt.Errorf("ota: install: %w", err))
	}
	dir := s.slotDir(name)
	if err := os.Rename(staging, dir); err != nil {
		return Slot{}, s.fail(base, fmt.Errorf("ota: install: %w", err))
	}
	if err := atomicfile.SyncDir(s.slots); err != nil {
		return Slot{}, s.fail(base, fmt.Errorf("ota: install: %w", err))
	}
	crash("slot-renamed")
	b.Dir = dir
	slot := Slot{Name: name, Bundle: b}
	s.checked[name] = slot

	st.Phase, st.Pending = PhaseInstalled, name
	if err := s.setState(st); err != nil {
		return Slot{}, err
	}
	// Mark the trial before the switch: from here on, a crash at any point leaves a state file
	// that Recover completes the switch from.
	st = State{Phase: PhaseTrial, Current: name, Version: b.Manifest.Version, Previous: base.Current, Pending: name}
	if err := s.setState(st); err != nil {
		return Slot{}, err
	}
	if err := s.settle(st); err != nil {
		return slot, err
	}
	s.log.Info("installed", fieldSlot(name), zap.String("previous", base.Current), zap.String("key_id", b.KeyID))
	return slot, nil
}

// fail ends a failed update: back to base at rest, in PhaseIdle with the error as reason.
func (s *Store) fail(base State, err error) error {
	st := base
	st.Phase, st.Pending, st.Attempts, st.Reason = PhaseIdle, "", 0, err.Error()
	if base.Phase == PhaseTrial { // not reached: updates refuse to start during a trial
		st = base
	}
	s.log.Warn("update failed", zap.Error(err))
	if serr := s.setState(st); serr != nil {
		return errors.Join(err, serr)
	}
	if gerr := s.gc(st); gerr != nil {
		return errors.Join(err, gerr)
	}
	return err
}

// Commit ends the trial of the current slot successfully; the daemon calls it once the slot
// passed its health checks (e.g. K frames scored without error). The previous slot is kept.
// It fails with ErrNoTrial when no slot is on trial, and with ErrTrialNotStarted when no daemon
// start (Recover) has counted an attempt on it yet: the frames the process that installed the
// slot scored came from the previous model.
func (s *Store) Commit() (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if st.Phase != PhaseTrial {
		return st, fmt.Errorf("ota: commit: %w (phase %s)", ErrNoTrial, st.Phase)
	}
	if st.Attempts == 0 {
		return st, fmt.Errorf("ota: commit: %w: slot %s", ErrTrialNotStarted, st.Current)
	}
	st = State{Phase: PhaseCommitted, Current: st.Current, Version: st.Version, Previous: st.Previous}
	if err := s.setState(st); err != nil {
		return s.st, err
	}
	if err := s.settle(st); err != nil {
		return st, err
	}
	s.log.Info("committed", fieldSlot(st.Current))
	return st, nil
}

// Rollback ends the trial of the current slot as failed, for reason (the model does not load,
// its inputs or outputs do not match the manifest's preprocessing, a canary is off): the
// previous slot is current again and the failed one is removed. The daemon then serves the
// previous slot (see RecommendedSwap). It fails with ErrNoTrial when no slot is on trial.
func (s *Store) Rollback(reason string) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rollback("", reason)
}

// rollback rolls back the slot on trial; when slot is not "", only if that is the one.
func (s *Store) rollback(slot, reason string) (State, error) {
	st := s.st
	if st.Phase != PhaseTrial || (slot != "" && st.Current != slot) {
		return st, fmt.Errorf("ota: rollback: %w (phase %s)", ErrNoTrial, st.Phase)
	}
	st = s.fallback(st, reason)
	if err := s.setState(st); err != nil {
		return s.st, err
	}
	return st, s.settle(st)
}

// A CheckFunc brings a slot into service the way the daemon serves it and checks it: it opens
// the model with ONNX Runtime, checks that its input and output match the manifest's
// preprocessing, and scores the canaries (Slot.CanaryInput) within their tolerance. It returns
// nil when the slot may serve, and keeps what it loaded (the daemon's closure holds it); on error
// it releases what it loaded. The ota package never loads models itself.
type CheckFunc func(ctx context.Context, slot Slot) error

// Activate brings the current slot into service with check. When check fails on a slot on
// trial, Activate rolls it back, with the check's error as reason, and tries the previous slot;
// the error names the slot that failed. It fails with ErrNoSlot when nothing is installed (or
// left after a rollback). A check that fails because ctx ended rolls nothing back.
func (s *Store) Activate(ctx context.Context, check CheckFunc) (Slot, error) {
	for {
		s.mu.Lock()
		slot, st, err := s.current()
		if err != nil && st.Phase == PhaseTrial {
			_, rerr := s.rollback(st.Current, err.Error())
			s.mu.Unlock()
			if rerr != nil {
				return Slot{}, rerr
			}
			continue
		}
		s.mu.Unlock()
		if err != nil {
			return Slot{}, fmt.Errorf("ota: activate: %w", err)
		}
		err = check(ctx, slot)
		if err == nil {
			return slot, nil
		}
		if ctx.Err() != nil || st.Phase != PhaseTrial {
			return Slot{}, fmt.Errorf("ota: activate slot %s: %w", slot.Name, err)
		}
		s.mu.Lock()
		_, rerr := s.rollback(slot.Name, fmt.Sprintf("check of slot %s failed: %v", slot.Name, err))
		s.mu.Unlock()
		if rerr != nil {
			return Slot{}, rerr
		}
	}
}

// readState reads ota-state.json.
func (s *Store) readState() (State, error) {
	b, err := readCapped(filepath.Join(s.dir, StateName), 64<<10)
	if err != nil {
		return State{}, err
	}
	return parseState(b)
}

// setState writes st to ota-state.json atomically (temporary file, fsync, rename, folder
// fsync), then reports it.
func (s *Store) setState(st State) error {
	st.Updated = time.Now().UTC()
	b, err := marshalState(st)
	if err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, StateName), b, 0o644); err != nil {
		return fmt.Errorf("ota: %w", err)
	}
	s.st = st
	s.snap.Store(&st)
	crash("state:" + string(st.Phase))
	s.notify(st)
	return nil
}

func (s *Store) notify(st State) {
	if s.cfg.OnState != nil {
		s.cfg.OnState(st)
	}
}

// crashHook, when set (by tests only), is called after every step that changes the disk, with
// the step's name; the power-loss tests make it kill the process at a chosen step.
var crashHook func(step string)

func crash(step string) {
	if crashHook != nil {
		crashHook(step)
	}
}

func fieldSlot(name string) zap.Field { return zap.String("slot", name) }

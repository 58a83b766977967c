package ota

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The power-loss tests run an operation in a child process (this test binary, re-executed to
// run TestCrashChild) that kills itself with SIGKILL right after its Nth step that changes the
// disk (crashHook), for every N the operation has, then recover the state folder in the parent
// as a daemon start would and check it from scratch (checkDisk): the current link names a
// complete slot, old or new, and the state file agrees with the links and slots. Then the
// device must still update: commit what is on trial, install a newer version, commit it.
//
// A killed process loses nothing that it wrote, unlike a power cut, which loses what was not
// synced; the order of writes and fsyncs (state file before links, each followed by a folder
// fsync) is what makes the two the same here, and these tests check that every prefix of that
// order recovers.

const (
	envCrashCase = "OTA_CRASH_CASE" // the case TestCrashChild runs
	envCrashDir  = "OTA_CRASH_DIR"  // its state folder
	envCrashAt   = "OTA_CRASH_AT"   // the step after which it kills itself; 0: none
	envCrashURL  = "OTA_CRASH_URL"  // where the update case downloads the 1.2.0 bundle
)

// crashCase is an operation run to a crash and what may be current after recovery.
type crashCase struct {
	setup func(t testing.TB, dir string) // run in the parent before each child
	op    func(s *Store) error           // run in the child
	want  []string                       // versions the current slot may have after recovery
}

// onTrial sets dir up with 1.0.0 committed and 1.1.0 on trial, the daemon started once on it.
func onTrial(t testing.TB, dir string) {
	s := openStore(t, dir, nil)
	installCommitted(t, s, "1.0.0")
	mustInstall(t, s, "1.1.0", InstallOptions{})
	mustRecover(t, s)
}

// twoCommitted sets dir up with 1.0.0 and 1.1.0 installed, 1.1.0 current.
func twoCommitted(t testing.TB, dir string) {
	installCommitted(t, openStore(t, dir, nil), "1.0.0", "1.1.0")
}

var crashCases = map[string]crashCase{
	"install": {
		setup: twoCommitted,
		op:    func(s *Store) error { _, err := s.Install(bundlePath("1.2.0"), InstallOptions{}); return err },
		want:  []string{"1.1.0", "1.2.0"},
	},
	"first-install": {
		setup: func(testing.TB, string) {},
		op:    func(s *Store) error { _, err := s.Install(bundlePath("1.0.0"), InstallOptions{}); return err },
		want:  []string{"", "1.0.0"},
	},
	"update": {
		setup: twoCommitted,
		op: func(s *Store) error {
			sum, err := fileSHA256(bundlePath("1.2.0"))
			if err != nil {
				return err
			}
			_, err = s.Update(context.Background(), os.Getenv(envCrashURL), sum, InstallOptions{})
			return err
		},
		want: []string{"1.1.0", "1.2.0"},
	},
	"commit": {
		setup: onTrial,
		op:    func(s *Store) error { _, err := s.Commit(); return err },
		want:  []string{"1.1.0"},
	},
	"rollback": {
		setup: onTrial,
		op:    func(s *Store) error { _, err := s.Rollback("canary zeros is off"); return err },
		want:  []string{"1.0.0", "1.1.0"},
	},
	"canary-fails": {
		setup: onTrial,
		op: func(s *Store) error {
			_, err := s.Activate(context.Background(), func(_ context.Context, slot Slot) error {
				if slot.Version().String() == "1.1.0" {
					return errors.New("canary zeros is off")
				}
				return nil
			})
			return err
		},
		want: []string{"1.0.0", "1.1.0"},
	},
	"recover-on-trial": {
		setup: onTrial,
		op:    func(s *Store) error { _, err := s.Recover(); return err },
		want:  []string{"1.1.0"},
	},
	"recover-attempts-exceeded": {
		setup: func(t testing.TB, dir string) {
			onTrial(t, dir)
			for range DefaultMaxAttempts - 1 {
				mustRecover(t, openStore(t, dir, nil))
			}
		},
		op:   func(s *Store) error { _, err := s.Recover(); return err },
		want: []string{"1.0.0"},
	},
}

func TestCrash(t *testing.T) {
	data, err := os.ReadFile(bundlePath("1.2.0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer srv.Close()
	t.Setenv(envCrashURL, srv.URL)

	for _, name := range slices.Sorted(maps.Keys(crashCases)) {
		c := crashCases[name]
		t.Run(name, func(t *testing.T) {
			steps := dryRun(t, c)
			t.Logf("steps: %q", steps)
			if len(steps) == 0 {
				t.Fatal("the operation has no steps")
			}
			for at := 1; at <= len(steps)+1; at++ {
				label := "completes"
				if at <= len(steps) {
					label = steps[at-1]
				}
				dir := t.TempDir()
				c.setup(t, dir)
				killed := runChild(t, name, dir, at, nil)
				if killed != (at <= len(steps)) {
					t.Fatalf("step %d (%s): killed %v", at, label, killed)
				}
				s := openStore(t, dir, nil)
				mustRecover(t, s)
				st := checkDisk(t, dir, c.want...)
				if t.Failed() {
					t.Fatalf("after a crash at step %d (%s) of %v", at, label, steps)
				}
				goOn(t, s, dir, st)
				if t.Failed() {
					t.Fatalf("updating after a crash at step %d (%s) of %v", at, label, steps)
				}
			}
		})
	}
}

// goOn checks that a recovered device still updates: it commits a slot on trial, then installs
// and commits 1.3.0.
func goOn(t *testing.T, s *Store, dir string, st State) {
	t.Helper()
	if st.Phase == PhaseTrial {
		mustCommit(t, s)
	}
	mustInstall(t, s, "1.3.0", InstallOptions{})
	mustRecover(t, s)
	mustCommit(t, s)
	checkDisk(t, dir, "1.3.0")
}

// dryRun runs c in this process on a fresh setup and returns the names of its steps.
func dryRun(t *testing.T, c crashCase) []string {
	dir := t.TempDir()
	c.setup(t, dir)
	var steps []string
	crashHook = func(step string) { steps = append(steps, step) }
	defer func() { crashHook = nil }()
	if err := c.op(openStore(t, dir, nil)); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	return steps
}

// runChild runs crash case name on dir in a child process that kills itself after step at,
// with extra environment, and reports whether it was killed. A child that fails otherwise
// fails the test.
func runChild(t *testing.T, name, dir string, at int, extra []string) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashCase+"="+name, envCrashDir+"="+dir,
		envCrashAt+"="+strconv.Itoa(at), envBundles+"="+bundlesDir)
	cmd.Env = append(cmd.Env, extra...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("child %s at step %d: %v\n%s", name, at, err, out)
	}
	return false
}

// TestCrashChild is the child process of the crash tests; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	name := os.Getenv(envCrashCase)
	if name == "" {
		t.Skip("run by TestCrash")
	}
	at, err := strconv.Atoi(os.Getenv(envCrashAt))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	crashHook = func(string) {
		if n++; n == at {
			killSelf()
		}
	}
	var op func(*Store) error
	if c, ok := crashCases[name]; ok {
		op = c.op
	} else if op = childOps[name]; op == nil {
		t.Fatalf("no crash case %q", name)
	}
	s, err := Open(testConfig(os.Getenv(envCrashDir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := op(s); err != nil {
		t.Fatal(err)
	}
}

// childOps are operations the child runs outside the crash matrix.
var childOps = map[string]func(*Store) error{
	// daemon-start-dies is a daemon start that dies loading the slot on trial (a segfault in
	// ONNX Runtime, the OOM killer, a watchdog kill: nothing runs after it).
	"daemon-start-dies": func(s *Store) error {
		if _, err := s.Recover(); err != nil {
			return err
		}
		_, err := s.Activate(context.Background(), func(_ context.Context, slot Slot) error {
			if slot.Version().String() == "1.1.0" {
				killSelf()
			}
			return nil
		})
		return err
	},
}

func killSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestKilledDuringTrial: the daemon dies every time it loads the new slot; after
// DefaultMaxAttempts starts, the next one rolls back and the previous model serves.
func TestKilledDuringTrial(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	installCommitted(t, s, "1.0.0")
	mustInstall(t, s, "1.1.0", InstallOptions{})
	for i := range DefaultMaxAttempts {
		if !runChild(t, "daemon-start-dies", dir, 0, nil) {
			t.Fatalf("start %d survived loading 1.1.0", i+1)
		}
		if st := checkDisk(t, dir, "1.1.0"); st.Phase != PhaseTrial || st.Attempts != i+1 {
			t.Fatalf("after start %d: %+v", i+1, st)
		}
	}
	// The next start rolls back before it loads anything, and serves 1.0.0.
	if runChild(t, "daemon-start-dies", dir, 0, nil) {
		t.Fatal("the start after the last attempt died: it loaded 1.1.0 again")
	}
	s = openStore(t, dir, nil)
	st := mustRecover(t, s)
	if st.Phase != PhaseRolledBack || !strings.Contains(st.Reason, fmt.Sprintf("started %d times", DefaultMaxAttempts)) {
		t.Errorf("state %+v", st)
	}
	checkDisk(t, dir, "1.0.0")
	slot, err := s.Activate(context.Background(), func(context.Context, Slot) error { return nil })
	if err != nil || slot.Version().String() != "1.0.0" {
		t.Fatalf("serving %s, %v; want 1.0.0", slot.Name, err)
	}
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return sumHex(data), nil
}

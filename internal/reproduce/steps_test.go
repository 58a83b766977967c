package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStepResumesInterruptedStep: a step whose command holds -resume and that an earlier run
// started but did not finish keeps its folder (the state files its command continues from); a
// step without -resume, or after a finished one, starts from an empty folder.
func TestStepResumesInterruptedStep(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "train")
	// The command records what it finds, then fails the first time (an interruption) and
	// succeeds once its own state file exists.
	script := `mkdir -p "$1"; if [ -f "$1/state" ]; then echo resumed > "$1/result"; exit 0; fi; touch "$1/state"; exit 1`
	cmd := func(extra ...string) []string {
		return append([]string{"/bin/sh", "-c", script, "sh", out}, extra...)
	}
	newRunner := func() *runner {
		return &runner{opts: options{out: dir}, start: time.Now(), log: nopFile(t)}
	}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	ctx := context.Background()

	if err := newRunner().step(ctx, "ds", 1, "train", dir, cmd("-resume"), out); err == nil {
		t.Fatal("the first, interrupted run succeeded")
	}
	if err := newRunner().step(ctx, "ds", 1, "train", dir, cmd("-resume"), out); err != nil {
		t.Fatalf("resumed step failed: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "result")); err != nil || string(b) != "resumed\n" {
		t.Fatalf("the resumed step did not find its state: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".started-train.json")); !os.IsNotExist(err) {
		t.Fatalf("the started marker stays after the step finished: %v", err)
	}

	// Without -resume the folder is cleared: the command fails again on its empty folder.
	os.Remove(filepath.Join(out, "result"))
	if err := newRunner().step(ctx, "ds", 1, "other", dir, cmd(), out); err == nil {
		t.Fatal("a step without -resume kept its folder")
	}
	// A resumable step started with another command starts afresh too.
	if err := newRunner().step(ctx, "ds", 1, "other", dir, cmd("-resume", "-x"), out); err == nil {
		t.Fatal("a resumable step with another command kept the folder of the first")
	}
}

// nopFile is a file that takes the runner's console output.
func nopFile(t *testing.T) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

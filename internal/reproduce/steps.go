package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StepRecord is one step's command and wall time (steps.csv, results.json).
type StepRecord struct {
	Dataset string    `json:"dataset"`
	Seed    uint64    `json:"seed,omitempty"`
	Step    string    `json:"step"`
	Command []string  `json:"command,omitempty"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Log     string    `json:"log,omitempty"`
	// Reused: the step had finished in an earlier run of reproduce; Seconds is that run's.
	Reused bool `json:"reused,omitempty"`
}

// step runs one oodguard command, unless an earlier run finished it (a marker file in dir
// holding the same command) and no earlier step of dir ran in this run.
// clear, the command's output folder, is emptied first, so that a half-written output never counts,
// except for a resumable step (cmd holds -resume: train, unleash) that an earlier run started
// with the same command and did not finish: its folder keeps the state files the command
// continues from.
// The command's output goes to dir/logs/STEP.log and, less ONNX Runtime's API-version
// chatter, to the console.
func (r *runner) step(ctx context.Context, ds string, seed uint64, name, dir string, cmd []string, clear string) error {
	rec := &StepRecord{Dataset: ds, Seed: seed, Step: name, Command: cmd, Log: filepath.Join(dir, "logs", name+".log")}
	marker := filepath.Join(dir, ".done-"+name+".json")
	r.printf("%s seed %d: %s", ds, seed, name)
	fmt.Fprintf(r.log, "    $ %s\n", shellJoin(cmd))
	if r.opts.dry {
		return nil
	}
	if !r.opts.fresh && !r.ran[dir] {
		if old, ok := recordOf(marker, cmd); ok {
			old.Reused = true
			r.steps = append(r.steps, old)
			r.printf("%s seed %d: %s finished in an earlier run (%.0fs), reused", ds, seed, name, old.Seconds)
			return nil
		}
	}
	// Every later step of this seed depends on this one: run them again too.
	if r.ran == nil {
		r.ran = map[string]bool{}
	}
	r.ran[dir] = true
	os.Remove(marker)
	started := filepath.Join(dir, ".started-"+name+".json")
	// A command with -resume continues an interrupted run of itself.
	if slices.Contains(cmd, "-resume") && !r.opts.fresh && hasRecord(started, cmd) {
		r.printf("%s seed %d: %s was interrupted in an earlier run; resuming it", ds, seed, name)
	} else if err := os.RemoveAll(clear); err != nil {
		return err
	}
	if err := os.MkdirAll(clear, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(rec.Log)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s\n", shellJoin(cmd))
	if b, err := json.Marshal(StepRecord{Step: name, Command: cmd}); err == nil {
		if err := os.WriteFile(started, b, 0o644); err != nil {
			return err
		}
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Stdout, c.Stderr = pw, pw
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = 10 * time.Second
	rec.Started = time.Now().UTC()
	t0 := time.Now()
	if err := c.Start(); err != nil {
		pw.Close()
		pr.Close()
		return err
	}
	pw.Close()
	copied := make(chan error, 1)
	go func() { copied <- r.copyOutput(pr, logf) }()
	werr := c.Wait()
	cerr := <-copied
	pr.Close()
	rec.Seconds = time.Since(t0).Seconds()
	if werr != nil {
		return fmt.Errorf("%s failed after %.0fs (log: %s): %w", name, rec.Seconds, rec.Log, werr)
	}
	if cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		return cerr
	}
	r.steps = append(r.steps, rec)
	r.printf("%s seed %d: %s done in %.1fs", ds, seed, name, rec.Seconds)
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(marker, b, 0o644); err != nil {
		return err
	}
	return os.Remove(started)
}

// recordOf returns the step record at path if there is one and it holds cmd.
func recordOf(path string, cmd []string) (*StepRecord, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var old StepRecord
	if json.Unmarshal(b, &old) != nil || shellJoin(old.Command) != shellJoin(cmd) {
		return nil, false
	}
	return &old, true
}

// hasRecord reports whether the record at path holds cmd.
func hasRecord(path string, cmd []string) bool {
	_, ok := recordOf(path, cmd)
	return ok
}

// copyOutput copies the command's output line by line to the log and, filtered, to the console.
func (r *runner) copyOutput(src io.Reader, logf io.Writer) error {
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		if strings.Contains(line, "The requested API version") || strings.TrimSpace(line) == "" {
			continue
		}
		fmt.Fprintf(r.log, "    %s\n", line)
	}
	return sc.Err()
}

// shellJoin quotes a command for printing.
func shellJoin(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`#*?[]{}()<>|&;!~") {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

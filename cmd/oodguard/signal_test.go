package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/train/traintest"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startUntil starts cmd with its standard output and error in one syncBuffer and polls that
// buffer every poll until it contains ready (a fatal error after 120 s). The process is killed
// when the test ends, if still running.
func startUntil(t *testing.T, cmd *exec.Cmd, ready string, poll time.Duration) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(120 * time.Second)
	for !strings.Contains(out.String(), ready) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 120 s:\n%s", ready, out.String())
		}
		time.Sleep(poll)
	}
	return out
}

// train and unleash stop soon after SIGTERM, exit 130, and leave the last complete checkpoint
// and no partial file.
func TestSIGTERMStopsTrainingAndUnleash(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "oodguard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := traintest.WriteIDX(t, dir, "train", traintest.Squares(4096, 4, 28, 1))

	for _, tc := range []struct {
		name  string
		args  []string
		ready string // in the output once a step is running
		out   string // the output folder or file
	}{
		{"train", []string{"train", "-arch", "cnn28", "-width", "8", "-data", data, "-epochs", "100", "-batch", "32", "-threads", "1",
			"-out", filepath.Join(dir, "run")}, "epoch   1/100", filepath.Join(dir, "run")},
		{"unleash", []string{"unleash", "-mode", "umap", "-model", runtimetest.Model(t, "cnn28.onnx"), "-data", data, "-epochs", "100",
			"-batch", "32", "-constraint", "0.1", "-keep-worse", "-out", filepath.Join(dir, "u", "umap.onnx")}, "epoch 1/100", filepath.Join(dir, "u")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.MkdirAll(filepath.Join(dir, "u"), 0o755)
			cmd := binCommand(bin, tc.args...)
			out := startUntil(t, cmd, tc.ready, 50*time.Millisecond)
			time.Sleep(300 * time.Millisecond) // into the next epoch's steps
			sent := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			took := time.Since(sent)
			t.Logf("%s stopped %v after SIGTERM", tc.name, took.Round(time.Millisecond))
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(out.String(), "interrupted") {
				t.Errorf("exit %v, want 130 with 'interrupted':\n%s", err, out.String())
			}
			if took > 5*time.Second { // the issue asks for 2 s; CI machines are shared
				t.Errorf("took %v to stop", took)
			}
			ents, _ := os.ReadDir(tc.out)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("partial file %s left behind", e.Name())
				}
			}
			if tc.name == "train" {
				if _, err := os.Stat(filepath.Join(tc.out, "epoch-001.onnx")); err != nil {
					t.Errorf("the first complete checkpoint: %v", err)
				}
			} else if _, err := os.Stat(filepath.Join(tc.out, "umap.onnx")); err == nil {
				t.Error("an interrupted unleash wrote its output model")
			}
		})
	}
}

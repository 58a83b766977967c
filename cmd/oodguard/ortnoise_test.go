package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// envRunMain makes TestRunMain run oodguard with the arguments after "--" and exit: for tests
// that need a process of their own (what ONNX Runtime writes to file descriptor 2 happens once
// per process, and runCLI's buffers do not see it).
const envRunMain = "OODGUARD_TEST_RUN_MAIN"

func TestRunMain(t *testing.T) {
	if os.Getenv(envRunMain) != "1" {
		t.Skip("runs oodguard in a child process of other tests")
	}
	i := slices.Index(os.Args, "--")
	if i < 0 {
		t.Fatal("no -- before the oodguard arguments")
	}
	os.Exit(run(os.Args[i+1:], os.Stdout, os.Stderr))
}

// runMain runs oodguard args in a child process and returns its exit error and combined output.
func runMain(t *testing.T, args ...string) (error, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestRunMain$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	out, err := cmd.CombinedOutput()
	return err, string(out)
}

// ONNX Runtime's "The requested API version [26] is not available" lines, printed while the
// GoMLX onnx backend (ODIN here, unleash and train too) looks for the library's API version,
// do not reach the terminal; the command's own output does.
func TestNoONNXRuntimeAPIProbeLines(t *testing.T) {
	runtimetest.Setup(t)
	frames := filepath.Dir(frame(t, "id-fashion-000.png"))
	err, out := runMain(t, "eval", "-model", fixture(t, "cnn28.onnx"), "-id", frames, "-ood", frames,
		"-scores", "energy,odin", "-out", filepath.Join(t.TempDir(), "report"))
	if err != nil {
		t.Fatalf("eval -scores energy,odin: %v\n%s", err, out)
	}
	if strings.Contains(out, "requested API version") {
		t.Errorf("ONNX Runtime's API-version probe reached the output:\n%s", out)
	}
	if !strings.Contains(out, "odin testdata/frames: 20 images") || !strings.Contains(out, "odin(T=") {
		t.Errorf("eval's own output is missing:\n%s", out)
	}
}

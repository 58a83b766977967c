// Package runtimetest gives tests the real ONNX Runtime and the repository's test models.
//
// A test that needs ONNX Runtime calls Setup. When the library cannot be found the test is
// skipped with a message saying how to get it, unless the environment says the library must be
// there (CI=true or OODGUARD_REQUIRE_ORT=1): then the test fails, so that CI never passes by
// skipping.
package runtimetest

import (
	"os"
	"path/filepath"
	"testing"

	ort "github.com/oodguard/oodguard/runtime"
)

// Required reports whether missing test dependencies must fail tests instead of skipping them.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("OODGUARD_REQUIRE_ORT") == "1"
}

// Setup finds and initialises ONNX Runtime and returns the library path.
func Setup(tb testing.TB) string {
	tb.Helper()
	path, err := ort.FindLibrary("")
	if err != nil {
		if Required() {
			tb.Fatalf("ONNX Runtime is required here: %v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	if err := ort.Init(path); err != nil {
		tb.Fatalf("init ONNX Runtime: %v", err)
	}
	return path
}

// RepoRoot returns the repository root: the nearest folder above the working directory with a
// go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Model returns the path of testdata/models/name.
func Model(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(RepoRoot(tb), "testdata", "models", name)
}

// Logits runs the ONNX model in data (written to a temporary file) on n images x with ONNX
// Runtime through the runtime package, one intra-op thread, and returns a copy of the logits.
func Logits(tb testing.TB, data []byte, x []float32, n int) []float32 {
	tb.Helper()
	Setup(tb)
	path := filepath.Join(tb.TempDir(), "model.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	c, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	r, err := c.NewRunner(n)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	if err := r.SetInput(x); err != nil {
		tb.Fatal(err)
	}
	z, err := r.Run()
	if err != nil {
		tb.Fatal(err)
	}
	return append([]float32(nil), z...)
}

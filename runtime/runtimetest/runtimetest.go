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

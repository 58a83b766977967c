package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oodguardCLI runs oodguard with args and returns its exit code, stdout and stderr.
func oodguardCLI(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// keygen makes a key pair in a new directory and returns the directory.
func keygen(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if code, out, errOut := oodguardCLI(t, "keygen", "-out", dir, "-name", name); code != 0 || !strings.Contains(out, "key id") {
		t.Fatalf("keygen: exit %d\n%s%s", code, out, errOut)
	}
	return dir
}

func TestKeygen(t *testing.T) {
	dir := keygen(t, "release")
	for name, mode := range map[string]os.FileMode{"release.key": 0o600, "release.pub": 0o644, ".": 0o700} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", name, fi.Mode(), err, mode)
		}
	}
	if code, _, errOut := oodguardCLI(t, "keygen", "-out", dir, "-name", "release"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("second keygen: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{{}, {"-out", dir, "-name", "../x"}, {"-out", dir, "extra"}} {
		if code, _, _ := oodguardCLI(t, append([]string{"keygen"}, args...)...); code != 2 {
			t.Errorf("keygen %q: exit %d, want 2", args, code)
		}
	}
}

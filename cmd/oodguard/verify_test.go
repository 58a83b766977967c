package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyCommand(t *testing.T) {
	keys := keygen(t, "oodguard")
	b := makeBundle(t, keys, "1.2.0", "-min-daemon", "0.1.0")
	extract := filepath.Join(t.TempDir(), "slot", "next")

	// Flags before and after the bundle.
	code, out, errOut := oodguardCLI(t, "verify", "-keyring", keys, b, "-installed-version", "1.1.0", "-device-class", "test-board", "-extract", extract)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{b + ": OK", "signature", "ed25519 over manifest.json, key ", "files", "2, each with",
		"test-board, matches", "1.2.0, newer than installed 1.1.0", "calibration.json", "extracted into " + extract} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(extract, "model.onnx")); err != nil {
		t.Error(err)
	}
	code, out, _ = oodguardCLI(t, "verify", "-keyring", filepath.Join(keys, "oodguard.pub"), b)
	if code != 0 || !strings.Contains(out, "not checked (no -device-class)") || !strings.Contains(out, "not checked (no -installed-version)") {
		t.Errorf("verify without policy: exit %d\n%s", code, out)
	}
	code, out, _ = oodguardCLI(t, "verify", "-keyring", keys, "-installed-version", "1.2.0", "-allow-reinstall", b)
	if code != 0 || !strings.Contains(out, "same as installed") {
		t.Errorf("reinstall allowed: exit %d\n%s", code, out)
	}

	raw, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1 // inside model.onnx
	tampered := filepath.Join(t.TempDir(), "tampered.tar")
	if err := os.WriteFile(tampered, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"same version", 1, "bundle has the installed version", []string{"-keyring", keys, b, "-installed-version", "1.2.0"}},
		{"older version", 1, "older than the installed version", []string{"-keyring", keys, b, "-installed-version", "1.10.0"}},
		{"other device", 1, `bundle is for "test-board", this device is "cam-v2"`, []string{"-keyring", keys, b, "-device-class", "cam-v2"}},
		{"tampered model", 1, "model.onnx: sha256 mismatch", []string{"-keyring", keys, tampered}},
		{"other keyring", 1, "unknown signing key", []string{"-keyring", keygen(t, "other"), b}},
		{"extract dir exists", 1, "file already exists", []string{"-keyring", keys, b, "-extract", extract}},
		{"no keyring", 2, "-keyring is required", []string{b}},
		{"no bundle", 2, "one bundle file", []string{"-keyring", keys}},
		{"two bundles", 2, "one bundle file", []string{"-keyring", keys, b, b}},
		{"bad installed version", 2, "-installed-version", []string{"-keyring", keys, b, "-installed-version", "latest"}},
	} {
		code, out, errOut := oodguardCLI(t, append([]string{"verify"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q\n%s", c.name, code, errOut, c.code, c.want, out)
		}
	}
}

func TestHelpListsBundleCommands(t *testing.T) {
	_, out, _ := oodguardCLI(t, "help")
	for _, name := range []string{"bundle", "keygen", "verify"} {
		if !strings.Contains(out, "\n  "+name+" ") {
			t.Errorf("help lacks %s:\n%s", name, out)
		}
	}
}

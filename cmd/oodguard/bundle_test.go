package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture returns the path of a committed test model file.
func fixture(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// makeBundle bundles cnn28 with its committed calibration as version v and returns the
// bundle path.
func makeBundle(t *testing.T, keys, v string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cnn28.tar")
	args := append([]string{"bundle", "-model", fixture(t, "cnn28.onnx"), "-calibration", fixture(t, "cnn28.calibration.json"),
		"-key", filepath.Join(keys, "oodguard.key"), "-version", v, "-device-class", "test-board", "-out", out}, extra...)
	code, stdout, errOut := oodguardCLI(t, args...)
	if code != 0 {
		t.Fatalf("bundle: exit %d\n%s%s", code, stdout, errOut)
	}
	for _, want := range []string{"wrote " + out, "bundle 1.2.0 for device class test-board", "model.onnx", "97370 bytes",
		"sha256 b11830114e2b4542", "energy(T=1), ID when score >= 4.5944", "1x28x28 NCHW", "oodguardd >= 0.1.0", "ONNX Runtime >= 1.24.1"} {
		if v == "1.2.0" && !strings.Contains(stdout, want) {
			t.Errorf("bundle output lacks %q:\n%s", want, stdout)
		}
	}
	return out
}

func TestBundleCommand(t *testing.T) {
	keys := keygen(t, "oodguard")
	makeBundle(t, keys, "1.2.0", "-min-daemon", "0.1.0")

	// Default name, gzip.
	model, cal := fixture(t, "cnn28.onnx"), fixture(t, "cnn28.calibration.json")
	t.Chdir(t.TempDir())
	code, out, errOut := oodguardCLI(t, "bundle", "-model", model, "-calibration", cal,
		"-key", filepath.Join(keys, "oodguard.key"), "-version", "v1.3.0-rc.1", "-device-class", "test-board", "-gzip")
	if code != 0 {
		t.Fatalf("bundle -gzip: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat("cnn28-1.3.0-rc.1.tar.gz"); err != nil {
		t.Error(err)
	}
}

func TestBundleCommandRefuses(t *testing.T) {
	keys := keygen(t, "oodguard")
	key := filepath.Join(keys, "oodguard.key")
	cal := fixture(t, "cnn28.calibration.json")
	model := fixture(t, "cnn28.onnx")
	out := filepath.Join(t.TempDir(), "b.tar")
	for _, c := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"no version", 2, "-version is required", []string{"-model", model, "-calibration", cal, "-key", key, "-device-class", "b"}},
		{"bad version", 2, "three numbers", []string{"-model", model, "-calibration", cal, "-key", key, "-device-class", "b", "-version", "1.2"}},
		{"bad min daemon", 2, "-min-daemon", []string{"-model", model, "-calibration", cal, "-key", key, "-device-class", "b", "-version", "1.2.0", "-min-daemon", "x"}},
		{"calibration for another model", 1, "calibration is for another model", []string{"-model", fixture(t, "resnet32.onnx"), "-calibration", cal, "-key", key, "-device-class", "b", "-version", "1.2.0"}},
		{"public key as key", 1, "private key", []string{"-model", model, "-calibration", cal, "-key", filepath.Join(keys, "oodguard.pub"), "-device-class", "b", "-version", "1.2.0"}},
		{"bad device class", 1, "device_class", []string{"-model", model, "-calibration", cal, "-key", key, "-device-class", "a/b", "-version", "1.2.0"}},
	} {
		code, stdout, errOut := oodguardCLI(t, append([]string{"bundle", "-out", out}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q\n%s", c.name, code, errOut, c.code, c.want, stdout)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: bundle written", c.name)
		}
	}
}

// bundle does not overwrite an existing bundle unless -force.
func TestBundleRefusesToOverwrite(t *testing.T) {
	keys := keygen(t, "oodguard")
	out := filepath.Join(t.TempDir(), "cnn28.tar")
	if err := os.WriteFile(out, []byte("shipped"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"bundle", "-model", fixture(t, "cnn28.onnx"), "-calibration", fixture(t, "cnn28.calibration.json"),
		"-key", filepath.Join(keys, "oodguard.key"), "-version", "1.2.0", "-device-class", "test-board", "-out", out}
	code, _, errOut := oodguardCLI(t, args...)
	if code != 1 || !strings.Contains(errOut, out) || !strings.Contains(errOut, "-force") {
		t.Errorf("bundle over an existing file: exit %d, stderr %q; want 1 naming the file and -force", code, errOut)
	}
	if b, _ := os.ReadFile(out); string(b) != "shipped" {
		t.Fatal("bundle overwrote the existing file without -force")
	}
	if code, stdout, errOut := oodguardCLI(t, append(args, "-force")...); code != 0 || !strings.Contains(stdout, "wrote "+out) {
		t.Fatalf("bundle -force: exit %d\n%s%s", code, stdout, errOut)
	}
	if b, _ := os.ReadFile(out); string(b) == "shipped" {
		t.Error("bundle -force left the old file")
	}
}

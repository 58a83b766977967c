package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/guard/daemon"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"gopkg.in/yaml.v3"
)

// checkConfig runs oodguardd -check-config and returns its exit code and output.
func checkConfig(t *testing.T, cfg string) (int, string) {
	t.Helper()
	cmd := exec.Command(daemonBin, "-check-config", "-config", cfg)
	cmd.Env = append(os.Environ(), ort.EnvLibrary+"="+ort.LibraryPath())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// -check-config checks what a start would, not only the syntax.
func TestCheckConfig(t *testing.T) {
	runtimetest.Setup(t)
	root := runtimetest.RepoRoot(t)
	model := filepath.Join(root, "testdata/models/cnn28.onnx")
	cal := filepath.Join(root, "testdata/models/cnn28.calibration.json")
	cfg, _ := daemonConfig(t, "tcp://127.0.0.1:1883", false, "")
	if code, out := checkConfig(t, cfg); code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("good config: exit %d: %s", code, out)
	}
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"missing model", model, missing, "model.path"},
		{"missing calibration", cal, missing, "model.calibration"},
		{"calibration of another model", "cnn28.onnx", "resnet32.onnx", "another model"},
		{"corrupt model", model, filepath.Join(root, "testdata/models/cnn28.calibration.json"), "model"},
		{"port 99999", "tcp://127.0.0.1:1883", "tcp://127.0.0.1:99999", "mqtt.broker"},
		{"http port 99999", "stats_interval: 0s\n", "stats_interval: 0s\nhttp:\n  listen: 127.0.0.1:99999\n", "http.listen"},
		{"missing password file", "  retry_interval: 200ms\n", "  retry_interval: 200ms\n  username: cam\n  password_file: " + missing + "\n", "mqtt.password_file"},
		{"missing keyring", "stats_interval: 0s\n", "stats_interval: 0s\nota:\n  dir: " + t.TempDir() + "\n  keyring: " + missing + "\n  device_class: cam\n", "ota.keyring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := daemonConfig(t, "tcp://127.0.0.1:1883", false, "")
			rewriteConfig(t, c, tc.old, tc.new)
			code, out := checkConfig(t, c)
			if code != 2 || !strings.Contains(out, tc.want) || !strings.Contains(out, c) {
				t.Errorf("exit %d, want 2 naming the file and %q: %s", code, tc.want, out)
			}
		})
	}
	t.Run("missing folder is a warning", func(t *testing.T) {
		c, _ := daemonConfig(t, "tcp://127.0.0.1:1883", false, "")
		rewriteConfig(t, c, filepath.Join(root, "testdata/frames"), missing)
		code, out := checkConfig(t, c)
		if code != 0 || !strings.Contains(out, "Warning") || !strings.Contains(out, "source.path") {
			t.Errorf("exit %d, want 0 with a warning: %s", code, out)
		}
	})
}

// Relative paths in the configuration are relative to its folder, not the working directory.
func TestConfigRelativePaths(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	root := runtimetest.RepoRoot(t)
	dir := t.TempDir()
	for _, name := range []string{"cnn28.onnx", "cnn28.calibration.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), mustRead(t, filepath.Join(root, "testdata/models", name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "frames"), os.DirFS(filepath.Join(root, "testdata/frames"))); err != nil {
		t.Fatal(err)
	}
	cfg, _ := daemonConfig(t, mq.URL(), false, "")
	rewriteConfig(t, cfg,
		filepath.Join(root, "testdata/models/cnn28.onnx"), "cnn28.onnx",
		filepath.Join(root, "testdata/models/cnn28.calibration.json"), "cnn28.calibration.json",
		filepath.Join(root, "testdata/frames"), "frames")
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(filepath.Join(dir, "oodguardd.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := checkConfigIn(t, dir); code != 0 {
		t.Fatalf("-check-config from the config's folder: %d %s", code, out)
	}
	// From another working directory, the same file finds its model and frames.
	c, log := startDaemon(t, filepath.Join(dir, "oodguardd.yaml"))
	if code := waitExit(t, c, 30*time.Second); code != 0 || !strings.Contains(log.String(), "source finished") {
		t.Fatalf("exit %d:\n%s", code, log)
	}
}

func checkConfigIn(t *testing.T, dir string) (int, string) {
	t.Helper()
	cmd := exec.Command(daemonBin, "-check-config", "-config", "oodguardd.yaml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), ort.EnvLibrary+"="+ort.LibraryPath())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	return 0, string(out)
}

// The example configuration shows the defaults it claims to show for the HTTP server.
func TestExampleConfigHTTPDefault(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(runtimetest.RepoRoot(t), "firmware/systemd/oodguardd.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		HTTP struct {
			Listen string `yaml:"listen"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	if def := daemon.DefaultConfig().HTTP.Listen; ex.HTTP.Listen != def {
		t.Errorf("example http.listen %q, default %q", ex.HTTP.Listen, def)
	}
}

package crossbuild_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"gopkg.in/yaml.v3"
)

const unitName = "oodguardd.service"

func unitPath(t *testing.T) string {
	return filepath.Join(runtimetest.RepoRoot(t), "firmware", "systemd", unitName)
}

// unitSettings reads a unit file as section.Key -> values, in order.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not Key=value", path, line)
			}
			m[section+"."+k] = append(m[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUnitSettings pins what the daemon relies on: it notifies systemd and pings the watchdog
// (guard/daemon/systemd.go), keeps its outbox in /var/lib/oodguard, reads the camera, and
// exits with 2 for a bad configuration.
func TestUnitSettings(t *testing.T) {
	m := unitSettings(t, unitPath(t))
	for _, w := range []struct{ key, value string }{
		{"Unit.Wants", "network-online.target"},
		{"Unit.StartLimitIntervalSec", "0"},
		{"Service.Type", "notify"},
		{"Service.NotifyAccess", "main"},
		{"Service.WatchdogSec", "30s"},
		{"Service.Restart", "on-failure"},
		{"Service.RestartSec", "2"},
		{"Service.RestartPreventExitStatus", "2"},
		{"Service.TimeoutStopSec", "20s"},
		{"Service.EnvironmentFile", "-/etc/default/oodguardd"},
		{"Service.ExecStartPre", "/usr/bin/oodguardd -check-config -config /etc/oodguard/oodguardd.yaml"},
		{"Service.ExecStart", "/usr/bin/oodguardd -config /etc/oodguard/oodguardd.yaml"},
		{"Service.DynamicUser", "yes"},
		{"Service.SupplementaryGroups", "video"},
		{"Service.StateDirectory", "oodguard"},
		{"Service.ProtectSystem", "strict"},
		{"Service.ProtectHome", "yes"},
		{"Service.PrivateTmp", "yes"},
		{"Service.NoNewPrivileges", "yes"},
		{"Service.CapabilityBoundingSet", ""},
		{"Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"Service.DevicePolicy", "closed"},
		{"Service.DeviceAllow", "/dev/video0 rw"},
		{"Service.DeviceAllow", "char-video4linux rw"},
		{"Service.SystemCallFilter", "@system-service"},
		{"Service.MemoryMax", "1G"},
		{"Service.LimitNOFILE", "4096"},
		{"Install.WantedBy", "multi-user.target"},
	} {
		if !contains(m[w.key], w.value) {
			t.Errorf("%s: %q, want %q among its values", w.key, m[w.key], w.value)
		}
	}
	// Every value is set once, except the lists systemd appends to.
	for k, v := range m {
		if len(v) > 1 && k != "Service.DeviceAllow" && k != "Service.SystemCallFilter" {
			t.Errorf("%s set %d times: %q", k, len(v), v)
		}
	}
}

// withStubDaemon copies the unit into a folder with an executable stand-in for oodguardd, so
// that systemd-analyze, which checks that ExecStart's program exists, can read it where no
// firmware is installed. The directives are the unit's own.
func withStubDaemon(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	stub := filepath.Join(dir, "oodguardd")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unitPath(t))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, unitName)
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/bin/oodguardd", stub)), 0o644); err != nil {
		t.Fatal(err)
	}
	return unit
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian: systemd)")
	}
	return p
}

// TestUnitVerifies runs systemd-analyze verify on the unit: unknown keys, bad values and
// missing programs are errors. Any warning about the unit fails the test.
func TestUnitVerifies(t *testing.T) {
	sa := systemdAnalyze(t)
	unit := withStubDaemon(t)
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	var about []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, unitName) || strings.Contains(line, unit) {
			about = append(about, line)
		}
	}
	if err != nil || len(about) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitName, err, out)
	}
	if len(out) > 0 {
		t.Logf("systemd-analyze verify (not about this unit):\n%s", out)
	}
}

// TestUnitExposure asks systemd-analyze security (offline, systemd >= 250) for the unit's
// exposure score: it must stay at 2.5 or below ("OK"; 1.6 when written).
func TestUnitExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	unit := withStubDaemon(t)
	out, err := exec.Command(sa, "security", "--offline=true", "--threshold=25", "--no-pager", unit).CombinedOutput()
	if err != nil && (strings.Contains(string(out), "unrecognized option") || strings.Contains(string(out), "Unknown option")) {
		t.Skipf("this systemd-analyze cannot assess a unit file offline: %s", out)
	}
	level := regexp.MustCompile(`Overall exposure level for [^:]+: ([0-9.]+ \S+)`).FindSubmatch(out)
	if err != nil || level == nil {
		t.Fatalf("systemd-analyze security: %v (threshold 2.5)\n%s", err, out)
	}
	t.Logf("systemd-analyze security: exposure %s", level[1])
}

// TestExampleConfig checks the example configuration is YAML whose paths fit the unit: the
// outbox in its StateDirectory, the camera in its DeviceAllow. (TestARM64 has the daemon itself
// check it with -check-config.)
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(runtimetest.RepoRoot(t), "firmware", "systemd", "oodguardd.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		DeviceID string `yaml:"device_id"`
		Model    struct {
			Path, Calibration string
		}
		Source struct {
			Type   string
			Camera struct{ Device string }
		}
		MQTT struct {
			Broker, PasswordFile, PasswordEnv string
		}
		Outbox struct{ Dir string }
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DeviceID == "" || cfg.Model.Path == "" || cfg.Model.Calibration == "" || cfg.MQTT.Broker == "" {
		t.Errorf("example lacks a required key: %+v", cfg)
	}
	if !strings.HasPrefix(cfg.Outbox.Dir, "/var/lib/oodguard/") {
		t.Errorf("outbox.dir %s is outside the unit's StateDirectory /var/lib/oodguard", cfg.Outbox.Dir)
	}
	m := unitSettings(t, unitPath(t))
	if cfg.Source.Type == "camera" && !contains(m["Service.DeviceAllow"], cfg.Source.Camera.Device+" rw") {
		t.Errorf("source.camera.device %s is not in the unit's DeviceAllow %q", cfg.Source.Camera.Device, m["Service.DeviceAllow"])
	}
	if regexp.MustCompile(`(?m)^\s*password\s*:`).Match(b) {
		t.Error("the example configuration holds a password")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

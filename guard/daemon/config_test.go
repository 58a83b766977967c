package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validConfig = `device_id: cam1
model:
  path: m.onnx
  calibration: c.json
source:
  type: folder
  path: frames
mqtt:
  broker: tcp://127.0.0.1:1883
outbox:
  dir: /tmp/outbox
`

func load(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "oodguardd.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(p)
}

func TestConfigDefaultsAndValid(t *testing.T) {
	c, err := load(t, validConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.DeviceID != "cam1" || c.Guard.Debounce != 1 || c.MQTT.AlertQoS != 1 || c.StatsInterval == 0 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestConfigNamesTheBadField(t *testing.T) {
	for _, c := range []struct{ edit, field string }{
		{"device_id: cam1\n", "device_id"},
		{"  type: folder\n", "source.type"},
		{"  path: frames\n", "source.path"},
		{"  broker: tcp://127.0.0.1:1883\n", "mqtt.broker"},
	} {
		yaml := strings.Replace(validConfig, c.edit, "", 1)
		if c.field == "source.type" {
			yaml = strings.Replace(validConfig, "type: folder", "type: webcam", 1)
		}
		_, err := load(t, yaml)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !strings.Contains(err.Error(), c.field) {
			t.Errorf("without %q: %v, want a ConfigError for %s", strings.TrimSpace(c.edit), err, c.field)
		}
	}
	for _, c := range []struct{ extra, field string }{
		{"guard:\n  debounce: 0\n", "guard.debounce"},
		{"guard:\n  stuck_timeout: 10ms\n", "guard.stuck_timeout"},
		{"log:\n  level: loud\n", "log.level"},
		{"ota:\n  dir: /var/lib/oodguard\n", "ota.keyring"},
		{"ota:\n  dir: /var/lib/oodguard\n  keyring: /k\n", "ota.device_class"},
	} {
		_, err := load(t, validConfig+c.extra)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("with %q: %v, want a ConfigError for %s", c.extra, err, c.field)
		}
	}
	if _, err := load(t, strings.Replace(validConfig, "  path: m.onnx\n", "  path: m.onnx\n  provider:\n    name: rocm\n", 1)); err == nil || !strings.Contains(err.Error(), "model.provider") {
		t.Errorf("an unknown provider: %v", err)
	}
	if _, err := load(t, strings.Replace(validConfig, "  dir: /tmp/outbox", "  dir: \"\"", 1)); err == nil || !strings.Contains(err.Error(), "outbox.dir") {
		t.Errorf("an empty outbox dir: %v", err)
	}
	if _, err := load(t, validConfig+"colour: blue\n"); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("an unknown key: %v", err)
	}
	if _, err := load(t, validConfig+"mqtt:\n  password: hunter2\n"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a password in the file must be refused without echoing it: %v", err)
	}
}

package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig feeds arbitrary bytes to LoadConfig as the daemon's YAML file: a config that
// validates, or a *ConfigError naming the file, never a panic (the daemon exits 2 on it).
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(validConfig))
	f.Add([]byte(validConfig + "guard:\n  debounce: 0\n"))
	f.Add([]byte(validConfig + "mqtt:\n  alert_qos: 7\n"))
	f.Add([]byte("device_id: [1, 2\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "oodguardd.yaml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(p)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != p {
				t.Fatalf("error %v is not a ConfigError naming the file", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted a config that does not validate: %v", err)
		}
	})
}

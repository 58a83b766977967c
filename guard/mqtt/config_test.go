package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"

	"github.com/oodguard/oodguard/guard/outbox"
)

func validConfig() Config {
	cfg := DefaultConfig()
	cfg.Broker = "tcp://localhost:1883"
	cfg.DeviceID = "cam-1"
	return cfg
}

func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		field string
		edit  func(c *Config)
	}{
		{"broker", func(c *Config) { c.Broker = "" }},
		{"broker", func(c *Config) { c.Broker = "http://localhost:1883" }},
		{"broker", func(c *Config) { c.Broker = "localhost:1883" }},
		{"broker", func(c *Config) { c.Broker = "tcp://" }},
		{"broker", func(c *Config) { c.Broker = "tcp://user:secret@localhost:1883" }},
		{"topic_prefix", func(c *Config) { c.TopicPrefix = "" }},
		{"topic_prefix", func(c *Config) { c.TopicPrefix = "a/+/b" }},
		{"topic_prefix", func(c *Config) { c.TopicPrefix = "/oodguard" }},
		{"topic_prefix", func(c *Config) { c.TopicPrefix = "a//b" }},
		{"topic_prefix", func(c *Config) { c.TopicPrefix = "$SYS" }},
		{"device_id", func(c *Config) { c.DeviceID = "" }},
		{"device_id", func(c *Config) { c.DeviceID = "a/b" }},
		{"device_id", func(c *Config) { c.DeviceID = "cam#1" }},
		{"alert_qos", func(c *Config) { c.AlertQoS = 3 }},
		{"frame_qos", func(c *Config) { c.FrameQoS = 7 }},
		{"keepalive", func(c *Config) { c.KeepAlive = 500 * time.Millisecond }},
		{"connect_timeout", func(c *Config) { c.ConnectTimeout = 0 }},
		{"publish_timeout", func(c *Config) { c.PublishTimeout = -time.Second }},
		{"retry_interval", func(c *Config) { c.RetryInterval = 0 }},
		{"reconnect_max", func(c *Config) { c.ReconnectMax = 0 }},
		{"tls", func(c *Config) { c.TLS.CAFile = "ca.pem" }},
		{"tls.key_file", func(c *Config) { c.Broker = "ssl://h:8883"; c.TLS.CertFile = "c.pem" }},
		{"tls.cert_file", func(c *Config) { c.Broker = "ssl://h:8883"; c.TLS.KeyFile = "k.pem" }},
		{"password_env", func(c *Config) { c.Username = "u"; c.PasswordFile = "f"; c.PasswordEnv = "E" }},
		{"username", func(c *Config) { c.PasswordEnv = "E" }},
	}
	for _, tt := range tests {
		cfg := validConfig()
		tt.edit(&cfg)
		err := cfg.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want a FieldError for %s", cfg, err, tt.field)
			continue
		}
		if !strings.HasPrefix(err.Error(), "mqtt config: "+tt.field+": ") {
			t.Errorf("message %q does not lead with the field", err)
		}
	}
	for _, ok := range []string{"ssl://h:8883", "ws://h:8080/mqtt", "wss://h/mqtt"} {
		cfg := validConfig()
		cfg.Broker = ok
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	cfg := validConfig()
	cfg.TopicPrefix = "site1/oodguard"
	if err := cfg.Validate(); err != nil {
		t.Errorf("multi-level prefix: %v", err)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
broker: ssl://broker.example:8883
device_id: cam-7
alert_qos: 2
frame_qos: 0
keepalive: 45s
reconnect_max: 1m
tls:
  ca_file: /etc/oodguard/ca.pem
username: cam-7
password_file: /run/secrets/mqtt
`
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.AlertQoS != 2 || cfg.FrameQoS != 0 || cfg.KeepAlive != 45*time.Second || cfg.ReconnectMax != time.Minute ||
		cfg.TopicPrefix != "oodguard" || cfg.PublishTimeout != 10*time.Second || cfg.TLS.CAFile != "/etc/oodguard/ca.pem" {
		t.Fatalf("decoded %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.clientID(); got != "oodguard-cam-7" {
		t.Fatalf("default client id %q", got)
	}

	// A password in the file itself is not a field: strict decoding rejects it.
	dec = yaml.NewDecoder(strings.NewReader("broker: tcp://h:1883\npassword: hunter2\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("password in YAML: err = %v", err)
	}
}

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("OODGUARD_TEST_MQTT_PW", "from-env")

	cfg := validConfig()
	cfg.Username = "u"
	cfg.PasswordFile = file
	if p, err := cfg.password(); err != nil || p != "s3cret" {
		t.Fatalf("file: %q, %v", p, err)
	}
	cfg.PasswordFile, cfg.PasswordEnv = "", "OODGUARD_TEST_MQTT_PW"
	if p, err := cfg.password(); err != nil || p != "from-env" {
		t.Fatalf("env: %q, %v", p, err)
	}
	for _, c := range []struct{ field, file, env string }{
		{"password_env", "", "OODGUARD_TEST_MQTT_UNSET"},
		{"password_file", filepath.Join(dir, "missing"), ""},
		{"password_file", empty, ""},
	} {
		cfg.PasswordFile, cfg.PasswordEnv = c.file, c.env
		_, err := cfg.password()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: err = %v", c, err)
		}
	}
}

// TestCloseWithBrokerAway checks Close's bounds when the broker never answers: with an empty
// outbox it returns at once, with queued alerts at ctx's deadline, saying what is left. It also
// checks, at debug level, that no log line carries the password.
func TestCloseWithBrokerAway(t *testing.T) {
	t.Setenv("OODGUARD_TEST_MQTT_PW", "very-secret-pw")
	cfg := validConfig()
	cfg.Broker = "tcp://127.0.0.1:1" // nothing listens there
	cfg.Username = "u"
	cfg.PasswordEnv = "OODGUARD_TEST_MQTT_PW"
	cfg.RetryInterval = 10 * time.Millisecond
	core, logs := observer.New(zap.DebugLevel)
	start := func() (*Publisher, *outbox.Outbox) {
		box, err := outbox.Open(t.TempDir(), outbox.Limits{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { box.Close() })
		p, err := New(cfg, box, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return p, box
	}

	p, _ := start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close with nothing queued: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Close with nothing queued took %v", d)
	}

	p, box := start()
	if err := p.Alert(testEvent(1), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began = time.Now()
	err := p.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 messages left") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with an alert queued: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Close past its deadline took %v", d)
	}
	if box.Len() != 1 {
		t.Fatalf("outbox holds %d messages after Close, want 1", box.Len())
	}

	var buf bytes.Buffer
	for _, e := range logs.All() {
		buf.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			buf.WriteString(" " + k + "=" + fmt.Sprint(v))
		}
		buf.WriteByte('\n')
	}
	if strings.Contains(buf.String(), "very-secret-pw") {
		t.Fatalf("password logged:\n%s", buf.String())
	}
}

func TestNewLoadsTLSFiles(t *testing.T) {
	box, err := outbox.Open(t.TempDir(), outbox.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, c := range []struct {
		field string
		tls   TLSConfig
	}{
		{"tls.ca_file", TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}},
		{"tls.ca_file", TLSConfig{CAFile: notPEM}},
		{"tls.cert_file", TLSConfig{CertFile: notPEM, KeyFile: notPEM}},
	} {
		cfg := validConfig()
		cfg.Broker = "ssl://localhost:8883"
		cfg.TLS = c.tls
		_, err := New(cfg, box, nil)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: err = %v, want a FieldError for %s", c.tls, err, c.field)
		}
	}
}

func TestTopics(t *testing.T) {
	tp := NewTopics("site1/oodguard", "cam-1")
	for got, want := range map[string]string{
		tp.Available():  "site1/oodguard/cam-1/available",
		tp.Events():     "site1/oodguard/cam-1/events",
		tp.Frame("abc"): "site1/oodguard/cam-1/frames/abc",
		tp.Frames():     "site1/oodguard/cam-1/frames/+",
		tp.Stats():      "site1/oodguard/cam-1/stats",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

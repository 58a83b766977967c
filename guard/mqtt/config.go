package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures a Publisher. Start from DefaultConfig: a zero QoS in a Config means QoS 0.
//
// Durations are Go duration strings in YAML ("30s"); in JSON they are nanoseconds. The password
// is never part of the Config: it is read from PasswordFile or from the environment variable
// named by PasswordEnv, and it is never logged.
type Config struct {
	Broker         string        `json:"broker" yaml:"broker"`                   // tcp://host:1883, ssl://host:8883, ws://host/mqtt or wss://host/mqtt
	ClientID       string        `json:"client_id" yaml:"client_id"`             // default "oodguard-<device_id>"
	TopicPrefix    string        `json:"topic_prefix" yaml:"topic_prefix"`       // first topic levels; default "oodguard"
	DeviceID       string        `json:"device_id" yaml:"device_id"`             // this device's topic level; required
	AlertQoS       byte          `json:"alert_qos" yaml:"alert_qos"`             // QoS of events and availability; default 1
	FrameQoS       byte          `json:"frame_qos" yaml:"frame_qos"`             // QoS of frame JPEGs; default 1
	KeepAlive      time.Duration `json:"keepalive" yaml:"keepalive"`             // MQTT keepalive; default 30s, at least 1s
	ConnectTimeout time.Duration `json:"connect_timeout" yaml:"connect_timeout"` // one connection attempt; default 10s
	PublishTimeout time.Duration `json:"publish_timeout" yaml:"publish_timeout"` // wait for one PUBACK; default 10s
	RetryInterval  time.Duration `json:"retry_interval" yaml:"retry_interval"`   // between attempts of the first connection; default 5s
	ReconnectMax   time.Duration `json:"reconnect_max" yaml:"reconnect_max"`     // reconnect backoff ceiling (it starts at 1s or this, if less); default 30s
	TLS            TLSConfig     `json:"tls" yaml:"tls"`                         // for ssl:// and wss://
	Username       string        `json:"username" yaml:"username"`               // empty: no credentials
	PasswordFile   string        `json:"password_file" yaml:"password_file"`     // file holding the password (one trailing newline is dropped)
	PasswordEnv    string        `json:"password_env" yaml:"password_env"`       // or: name of the environment variable holding it
}

// TLSConfig configures TLS for ssl:// and wss:// brokers. With no CAFile the system roots are
// used.
type TLSConfig struct {
	CAFile             string `json:"ca_file" yaml:"ca_file"`                           // PEM roots that sign the broker's certificate
	CertFile           string `json:"cert_file" yaml:"cert_file"`                       // PEM client certificate, for mutual TLS
	KeyFile            string `json:"key_file" yaml:"key_file"`                         // PEM key of CertFile
	ServerName         string `json:"server_name" yaml:"server_name"`                   // overrides the host name checked in the certificate
	InsecureSkipVerify bool   `json:"insecure_skip_verify" yaml:"insecure_skip_verify"` // accept any certificate: testing only
}

func (t TLSConfig) isSet() bool { return t != TLSConfig{} }

// DefaultConfig returns a Config with every default set; Broker and DeviceID remain to fill.
func DefaultConfig() Config {
	return Config{
		TopicPrefix:    "oodguard",
		AlertQoS:       1,
		FrameQoS:       1,
		KeepAlive:      30 * time.Second,
		ConnectTimeout: 10 * time.Second,
		PublishTimeout: 10 * time.Second,
		RetryInterval:  5 * time.Second,
		ReconnectMax:   30 * time.Second,
	}
}

// ErrConfig is wrapped by every FieldError.
var ErrConfig = errors.New("invalid mqtt config")

// FieldError is a configuration error, named by the field's YAML key.
type FieldError struct {
	Field string // YAML key, e.g. "broker" or "tls.ca_file"
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("mqtt config: %s: %v", e.Field, e.Err) }

// Unwrap lets errors.Is find ErrConfig and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrConfig, e.Err} }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// schemes are the broker URL schemes the Publisher accepts; true for the TLS ones.
var schemes = map[string]bool{"tcp": false, "ssl": true, "ws": false, "wss": true}

// Validate reports the first invalid field as a *FieldError. It does not read files.
func (c Config) Validate() error {
	if err := c.ValidateConnection(); err != nil {
		return err
	}
	if err := checkLevels(c.TopicPrefix, true); err != nil {
		return fieldErr("topic_prefix", "%v", err)
	}
	if err := checkLevels(c.DeviceID, false); err != nil {
		return fieldErr("device_id", "%v", err)
	}
	if strings.ContainsAny(c.ClientID, "\x00") {
		return fieldErr("client_id", "contains a NUL byte")
	}
	for _, q := range []struct {
		name string
		v    byte
	}{{"alert_qos", c.AlertQoS}, {"frame_qos", c.FrameQoS}} {
		if q.v > 2 {
			return fieldErr(q.name, "%d is not 0, 1 or 2", q.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"keepalive", c.KeepAlive, time.Second},
		{"connect_timeout", c.ConnectTimeout, time.Millisecond},
		{"publish_timeout", c.PublishTimeout, time.Millisecond},
		{"retry_interval", c.RetryInterval, time.Millisecond},
		{"reconnect_max", c.ReconnectMax, time.Millisecond},
	} {
		if d.v < d.min {
			return fieldErr(d.name, "%v is less than %v", d.v, d.min)
		}
	}
	return nil
}

// ValidateConnection checks only the fields that say how to reach the broker: broker, tls,
// username and the password's source. Validate checks them too; clients other than the
// Publisher that share them (oodguard watch) check these alone. It does not read files.
func (c Config) ValidateConnection() error {
	u, err := url.Parse(c.Broker)
	switch {
	case c.Broker == "":
		return fieldErr("broker", "missing (e.g. tcp://localhost:1883)")
	case err != nil:
		return fieldErr("broker", "%v", err)
	case u.Host == "":
		return fieldErr("broker", "%q has no host (want scheme://host:port)", c.Broker)
	}
	tlsScheme, ok := schemes[u.Scheme]
	if !ok {
		return fieldErr("broker", "scheme %q is not tcp, ssl, ws or wss", u.Scheme)
	}
	if u.User != nil {
		return fieldErr("broker", "credentials in the URL are not allowed; use username and password_file or password_env")
	}
	if c.TLS.isSet() && !tlsScheme {
		return fieldErr("tls", "set, but broker %q does not use TLS (use ssl:// or wss://)", c.Broker)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			return fieldErr("tls.cert_file", "missing; key_file needs it")
		}
		return fieldErr("tls.key_file", "missing; cert_file needs it")
	}
	switch {
	case c.PasswordFile != "" && c.PasswordEnv != "":
		return fieldErr("password_env", "set together with password_file; choose one")
	case (c.PasswordFile != "" || c.PasswordEnv != "") && c.Username == "":
		return fieldErr("username", "missing; a password needs a username")
	}
	return nil
}

// checkLevels checks a topic prefix (several levels allowed) or a single topic level.
func checkLevels(s string, multi bool) error {
	switch {
	case s == "":
		return errors.New("missing")
	case strings.ContainsAny(s, "+#\x00"):
		return fmt.Errorf("%q contains a wildcard or NUL", s)
	case strings.HasPrefix(s, "$"):
		return fmt.Errorf("%q starts with '$', which is reserved for the broker", s)
	case !multi && strings.Contains(s, "/"):
		return fmt.Errorf("%q contains '/'", s)
	case multi && (strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//")):
		return fmt.Errorf("%q has an empty level", s)
	}
	return nil
}

// clientID returns the configured client id or the default one.
func (c Config) clientID() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return "oodguard-" + c.DeviceID
}

// password reads the password from its file or environment variable; "" when none is set.
func (c Config) password() (string, error) {
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", &FieldError{Field: "password_file", Err: err}
		}
		p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if p == "" {
			return "", fieldErr("password_file", "%s is empty", c.PasswordFile)
		}
		return p, nil
	case c.PasswordEnv != "":
		p, ok := os.LookupEnv(c.PasswordEnv)
		if !ok || p == "" {
			return "", fieldErr("password_env", "environment variable %s is not set or empty", c.PasswordEnv)
		}
		return p, nil
	}
	return "", nil
}

// tlsConfig loads the TLS files; nil for a broker without TLS.
func (c Config) tlsConfig() (*tls.Config, error) {
	u, _ := url.Parse(c.Broker)
	if !schemes[u.Scheme] {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLS.ServerName,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // off by default, documented as testing only
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, &FieldError{Field: "tls.ca_file", Err: err}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fieldErr("tls.ca_file", "%s holds no PEM certificate", c.TLS.CAFile)
		}
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, &FieldError{Field: "tls.cert_file", Err: err}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/oodguard/oodguard/device/source"
	"github.com/oodguard/oodguard/firmware/ota"
	"github.com/oodguard/oodguard/guard/mqtt"
	"github.com/oodguard/oodguard/guard/outbox"
	ort "github.com/oodguard/oodguard/runtime"
	"gopkg.in/yaml.v3"
)

// Config is oodguardd's YAML configuration file. Load reads it over DefaultConfig and
// validates it; unknown keys are errors. Secrets (the MQTT password) never appear in it: they
// come from a file or an environment variable named here.
type Config struct {
	DeviceID       string        `yaml:"device_id"`       // this device's id, in topics and events
	Model          ModelConfig   `yaml:"model"`           // the model and its calibration
	Source         SourceConfig  `yaml:"source"`          // where frames come from
	Guard          GuardConfig   `yaml:"guard"`           // decisions and alerts
	MQTT           mqtt.Config   `yaml:"mqtt"`            // the broker alerts go to
	EmbeddedBroker BrokerConfig  `yaml:"embedded_broker"` // run an MQTT broker inside the daemon
	Outbox         OutboxConfig  `yaml:"outbox"`          // the on-disk queue of unsent alerts
	HTTP           HTTPConfig    `yaml:"http"`            // /metrics and /healthz
	OTA            OTAConfig     `yaml:"ota"`             // model updates over MQTT; off when ota.dir is empty
	StatsInterval  time.Duration `yaml:"stats_interval"`  // how often stats go to MQTT; 0 turns them off
	Log            LogConfig     `yaml:"log"`
}

// ModelConfig names the model and how ONNX Runtime runs it.
type ModelConfig struct {
	Path           string              `yaml:"path"`             // the ONNX classifier
	Calibration    string              `yaml:"calibration"`      // its calibration.json (threshold, score, preprocessing)
	Version        string              `yaml:"version"`          // shown in events; default: sha256 prefix of the model
	ORTLib         string              `yaml:"ort_lib"`          // libonnxruntime.so; default: $ONNXRUNTIME_LIB, next to the binary, system folders
	IntraOpThreads int                 `yaml:"intra_op_threads"` // 0: ONNX Runtime decides
	Provider       ort.ProviderOptions `yaml:"provider"`         // cpu (default), cuda or tensorrt
}

// SourceConfig selects the frame source: type names it, and the section of that name
// configures it (see device/source for every option and its default).
type SourceConfig struct {
	Type      string                  `yaml:"type"`      // "folder", "camera" or "synthetic"
	Path      string                  `yaml:"path"`      // folder: a folder of JPEG/PNG frames, or one file
	Folder    source.FolderOptions    `yaml:"folder"`    // loop, fps, cache_bytes, jpeg_decoder
	Camera    source.CameraConfig     `yaml:"camera"`    // device, format, width, height, fps, reopen_*, ...
	Synthetic source.SyntheticOptions `yaml:"synthetic"` // width, height, gray, pattern, seed, frames, fps
	// A source that cannot be opened (a camera not plugged in, a missing or empty folder) or
	// that fails for good while running is reported offline and opened again after RetryMin,
	// then twice as long after each failure, up to RetryMax.
	RetryMin time.Duration `yaml:"retry_min"` // default 1s
	RetryMax time.Duration `yaml:"retry_max"` // default 30s
}

// GuardConfig tunes decisions and alerts.
type GuardConfig struct {
	Debounce     int           `yaml:"debounce"`      // decide on the median of the last N scores; 1 decides per frame
	SendFrames   bool          `yaml:"send_frames"`   // publish each flagged frame as JPEG
	JPEGQuality  int           `yaml:"jpeg_quality"`  // for frames that are not JPEG already
	StuckTimeout time.Duration `yaml:"stuck_timeout"` // no frame finished for this long: the daemon exits for a restart
}

// BrokerConfig runs an embedded MQTT broker (for a standalone device or the demo).
type BrokerConfig struct {
	Listen string `yaml:"listen"` // e.g. 127.0.0.1:1883; empty: no embedded broker
}

// OutboxConfig places and bounds the outbox.
type OutboxConfig struct {
	Dir           string `yaml:"dir"`
	outbox.Limits `yaml:",inline"`
}

// HTTPConfig serves /metrics (Prometheus) and /healthz.
type HTTPConfig struct {
	Listen string `yaml:"listen"` // e.g. 127.0.0.1:9310; empty: no HTTP server
}

// OTAConfig turns on model updates: signed bundles installed into slots under Dir (see
// firmware/ota). With OTA on, the model and calibration come from the current slot; model.path
// and model.calibration are the factory model, used while no slot is installed.
type OTAConfig struct {
	Dir         string `yaml:"dir"`          // state folder, e.g. /var/lib/oodguard
	Keyring     string `yaml:"keyring"`      // public key file, or a folder of *.pub files
	DeviceClass string `yaml:"device_class"` // bundles must be for this class
	CommitAfter int    `yaml:"commit_after"` // healthy frames before a model on trial is committed
	MaxAttempts int    `yaml:"max_attempts"` // starts on a trial model before it is rolled back; 0: 3
	// AllowDowngrade lets an update command that asks for it ("allow_downgrade": true) install
	// an older bundle. The device's policy wins: with false, no command can downgrade.
	AllowDowngrade bool `yaml:"allow_downgrade"`
	// MaxBundleBytes caps a bundle download; default 256 MiB (a few times a ResNet-50).
	MaxBundleBytes int64 `yaml:"max_bundle_bytes"`
	// DownloadTimeout bounds one update's download, however slowly the data comes; default 30m.
	DownloadTimeout time.Duration `yaml:"download_timeout"`
	// AllowLocalURLs lets update URLs and their redirects reach loopback and link-local
	// addresses (the device itself, metadata services); off by default.
	AllowLocalURLs bool `yaml:"allow_local_urls"`
	// URLPrefixes, when set, are the only URL prefixes an update command may name.
	URLPrefixes []string `yaml:"url_prefixes"`
}

// LogConfig sets the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json, console, or auto (console on a terminal, JSON otherwise)
}

// DefaultConfig returns the defaults every file is read over.
func DefaultConfig() Config {
	return Config{
		Source:        SourceConfig{Type: "camera", RetryMin: time.Second, RetryMax: 30 * time.Second},
		Guard:         GuardConfig{Debounce: 1, SendFrames: true, JPEGQuality: 85, StuckTimeout: 30 * time.Second},
		MQTT:          mqtt.DefaultConfig(),
		Outbox:        OutboxConfig{Dir: "/var/lib/oodguard/outbox"},
		OTA:           OTAConfig{CommitAfter: 100, MaxBundleBytes: 256 << 20, DownloadTimeout: 30 * time.Minute},
		StatsInterval: 30 * time.Second,
		Log:           LogConfig{Level: "info", Format: "auto"},
	}
}

// ConfigError names the field of a bad configuration.
type ConfigError struct {
	File  string
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("config %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("config %s: %s: %v", e.File, e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads path over the defaults and validates the result.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, &ConfigError{File: path, Err: err}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, &ConfigError{File: path, Err: err}
	}
	if cfg.MQTT.DeviceID == "" {
		cfg.MQTT.DeviceID = cfg.DeviceID
	}
	if abs, err := filepath.Abs(path); err == nil {
		cfg.resolvePaths(filepath.Dir(abs))
	}
	if err := cfg.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = path
		}
		return cfg, err
	}
	return cfg, nil
}

func wrapField(field string, err error) error {
	if err == nil {
		return nil
	}
	return &ConfigError{Field: field, Err: err}
}

func fieldErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Validate reports the first bad field.
func (c *Config) Validate() error {
	if c.DeviceID == "" {
		return fieldErr("device_id", "missing")
	}
	if c.Model.Path == "" && c.OTA.Dir == "" {
		return fieldErr("model.path", "missing (needed unless ota.dir is set)")
	}
	if (c.Model.Path == "") != (c.Model.Calibration == "") {
		return fieldErr("model.calibration", "model.path and model.calibration go together")
	}
	if c.OTA.Dir != "" {
		switch {
		case c.OTA.Keyring == "":
			return fieldErr("ota.keyring", "missing: updates must be verified against trusted keys")
		case c.OTA.DeviceClass == "":
			return fieldErr("ota.device_class", "missing")
		case c.OTA.CommitAfter < 1:
			return fieldErr("ota.commit_after", "%d must be at least 1", c.OTA.CommitAfter)
		case c.OTA.MaxAttempts < 0:
			return fieldErr("ota.max_attempts", "%d is negative", c.OTA.MaxAttempts)
		case c.OTA.MaxBundleBytes < 1<<10:
			return fieldErr("ota.max_bundle_bytes", "%d is less than 1 KiB", c.OTA.MaxBundleBytes)
		case c.OTA.DownloadTimeout < time.Second:
			return fieldErr("ota.download_timeout", "%v is less than 1s", c.OTA.DownloadTimeout)
		}
		for i, pre := range c.OTA.URLPrefixes {
			if err := (ota.URLPolicy{}).CheckURL(pre); err != nil {
				return fieldErr(fmt.Sprintf("ota.url_prefixes[%d]", i), "%q is not an http or https URL with a host", pre)
			}
		}
	}
	if c.Model.IntraOpThreads < 0 || c.Model.IntraOpThreads > ort.MaxThreads() {
		return fieldErr("model.intra_op_threads", "%d is not between 0 and %d (4 per core, at least 16)", c.Model.IntraOpThreads, ort.MaxThreads())
	}
	if err := c.Model.Provider.Validate(); err != nil {
		return fieldErr("model.provider", "%v", err)
	}
	var err error
	switch s := c.Source; s.Type {
	case "folder":
		if s.Path == "" {
			return fieldErr("source.path", "missing for a folder source")
		}
		err = wrapField("source.folder", s.Folder.Validate())
	case "camera":
		err = wrapField("source.camera", s.Camera.Validate())
	case "synthetic":
		err = wrapField("source.synthetic", s.Synthetic.Validate())
	default:
		return fieldErr("source.type", "%q is not folder, camera or synthetic", s.Type)
	}
	if err != nil {
		return err
	}
	if c.Source.RetryMin < 10*time.Millisecond {
		return fieldErr("source.retry_min", "%v is less than 10ms", c.Source.RetryMin)
	}
	if c.Source.RetryMax < c.Source.RetryMin {
		return fieldErr("source.retry_max", "%v is less than source.retry_min %v", c.Source.RetryMax, c.Source.RetryMin)
	}
	if c.Guard.Debounce < 1 || c.Guard.Debounce > 1000 {
		return fieldErr("guard.debounce", "%d is not between 1 and 1000", c.Guard.Debounce)
	}
	if c.Guard.JPEGQuality < 1 || c.Guard.JPEGQuality > 100 {
		return fieldErr("guard.jpeg_quality", "%d is not between 1 and 100", c.Guard.JPEGQuality)
	}
	if c.Guard.StuckTimeout < time.Second {
		return fieldErr("guard.stuck_timeout", "%v is less than 1s", c.Guard.StuckTimeout)
	}
	if err := c.MQTT.Validate(); err != nil {
		var fe *mqtt.FieldError
		if errors.As(err, &fe) {
			return fieldErr("mqtt."+fe.Field, "%v", fe.Err)
		}
		return fieldErr("mqtt", "%v", err)
	}
	if err := checkBrokerPort(c.MQTT.Broker); err != nil {
		return err
	}
	if err := checkListen("embedded_broker.listen", c.EmbeddedBroker.Listen); err != nil {
		return err
	}
	if err := checkListen("http.listen", c.HTTP.Listen); err != nil {
		return err
	}
	if c.Outbox.Dir == "" {
		return fieldErr("outbox.dir", "missing")
	}
	if c.Outbox.MaxMessages < 0 || c.Outbox.MaxBytes < 0 {
		return fieldErr("outbox", "limits must not be negative")
	}
	if c.StatsInterval < 0 {
		return fieldErr("stats_interval", "%v is negative", c.StatsInterval)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		return fieldErr("log.format", "%q is not auto, json or console", c.Log.Format)
	}
	return nil
}

package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/guard/mqtt"
	"github.com/oodguard/oodguard/guard/pipeline"
	ort "github.com/oodguard/oodguard/runtime"
	"go.uber.org/zap"
)

// Check checks what the daemon would check at start, short of opening the frame source, the
// outbox and the broker: ONNX Runtime loads, the factory model opens and its calibration
// belongs to it and fits it, the OTA keyring loads, the MQTT password and TLS files can be
// read. It returns warnings for what the daemon copes with but an operator should know (a
// folder or camera that is not there yet). oodguardd -check-config runs it.
func Check(cfg Config, log *zap.Logger) (warnings []string, err error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.MQTT.CheckFiles(); err != nil {
		return nil, wrapMQTTField(err)
	}
	if cfg.OTA.Dir != "" {
		if _, err := bundle.LoadKeyring(cfg.OTA.Keyring); err != nil {
			return nil, fieldErr("ota.keyring", "%v", err)
		}
	}
	if _, err := ort.Setup(cfg.Model.ORTLib); err != nil {
		return nil, fieldErr("model.ort_lib", "%v", err)
	}
	if cfg.Model.Path != "" {
		d := &Daemon{cfg: cfg, log: log}
		for _, f := range []struct{ field, path string }{{"model.path", cfg.Model.Path}, {"model.calibration", cfg.Model.Calibration}} {
			if _, err := os.Stat(f.path); err != nil {
				return nil, fieldErr(f.field, "%v", err)
			}
		}
		clf, cal, err := d.loadModel(cfg.Model.Path, cfg.Model.Calibration)
		if err != nil {
			return nil, fieldErr("model", "%v", err)
		}
		defer clf.Close()
		m, err := pipeline.NewModel(clf, cal.Preprocess, cal.Score, cal.Threshold, cfg.Guard.Debounce, "check")
		if err != nil {
			return nil, fieldErr("model", "%s: %v", cfg.Model.Path, err)
		}
		m.Close()
	}
	switch cfg.Source.Type {
	case "folder":
		if _, err := os.Stat(cfg.Source.Path); err != nil {
			warnings = append(warnings, fmt.Sprintf("source.path: %v: the daemon will report the source offline and retry", err))
		}
	case "camera":
		if _, err := os.Stat(cfg.Source.Camera.Device); err != nil {
			warnings = append(warnings, fmt.Sprintf("source.camera.device: %v: the daemon will report the camera offline and retry", err))
		}
	}
	return warnings, nil
}

func wrapMQTTField(err error) error {
	var fe *mqtt.FieldError
	if errors.As(err, &fe) {
		return fieldErr("mqtt."+fe.Field, "%v", fe.Err)
	}
	return fieldErr("mqtt", "%v", err)
}

// checkListen checks a host:port listen address (port 0 to 65535; an empty host listens on
// every interface).
func checkListen(field, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fieldErr(field, "%q: %v (want host:port, e.g. 127.0.0.1:9310)", addr, err)
	}
	return checkPort(field, addr, port)
}

func checkPort(field, addr, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fieldErr(field, "%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// checkBrokerPort checks the port of the broker URL, when it has one.
func checkBrokerPort(broker string) error {
	u, err := url.Parse(broker)
	if err != nil || u.Port() == "" {
		return nil // ValidateConnection reports a bad URL
	}
	if err := checkPort("mqtt.broker", broker, u.Port()); err != nil {
		return err
	}
	if u.Port() == "0" {
		return fieldErr("mqtt.broker", "%q: port 0", broker)
	}
	return nil
}

// resolvePaths makes the relative paths of the configuration relative to dir, the config
// file's folder, as systemd users expect (not to the working directory).
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{
		&c.Model.Path, &c.Model.Calibration, &c.Model.ORTLib,
		&c.Source.Path, &c.Outbox.Dir, &c.OTA.Dir, &c.OTA.Keyring,
		&c.MQTT.PasswordFile, &c.MQTT.TLS.CAFile, &c.MQTT.TLS.CertFile, &c.MQTT.TLS.KeyFile,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

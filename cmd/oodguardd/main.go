// Command oodguardd is the device daemon: it reads camera frames, runs the model with ONNX
// Runtime, scores each frame against the calibrated threshold and publishes an MQTT alert, with
// the frame, for every frame it flags as out of distribution. See guard/daemon.
//
// Exit codes: 0 after a clean stop (SIGTERM, SIGINT, or a finite source done); 1 when the
// daemon fails while running; 2 for a bad command line or configuration; 75 after installing a
// model update, so that systemd (Restart=on-failure) starts it again on the new model.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/oodguard/oodguard/firmware/ota"
	"github.com/oodguard/oodguard/guard/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// EnvConfig names the environment variable with the configuration path.
const EnvConfig = "OODGUARDD_CONFIG"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oodguardd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultConfig := "/etc/oodguard/oodguardd.yaml"
	if env := os.Getenv(EnvConfig); env != "" {
		defaultConfig = env
	}
	path := fs.String("config", defaultConfig, "configuration file (also $"+EnvConfig+")")
	check := fs.Bool("check-config", false, "check the configuration as a start would (model, calibration, keyring, password and TLS files; not the camera or the broker) and exit")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: oodguardd [flags]\n\nGuards a camera-fed classifier: alerts over MQTT for out-of-distribution frames.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "oodguardd %s\n", Version)
		return 0
	}
	cfg, err := daemon.LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	if *check {
		warnings, err := daemon.Check(cfg, nil)
		if err != nil {
			var ce *daemon.ConfigError
			if errors.As(err, &ce) {
				ce.File = *path
			}
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 2
		}
		for _, w := range warnings {
			fmt.Fprintf(stderr, "Warning: config %s: %s\n", *path, w)
		}
		fmt.Fprintf(stdout, "config %s is valid\n", *path)
		return 0
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	defer log.Sync()
	log.Info("starting", zap.String("version", Version), zap.String("config", *path), zap.String("device", cfg.DeviceID))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, log, Version); err != nil {
		if errors.Is(err, daemon.ErrRestart) {
			log.Info("stopped to restart on the updated model", zap.Int("exit_code", ota.ExitRestart))
			return ota.ExitRestart
		}
		log.Error("stopped", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// newLogger builds the zap logger: JSON for journald and files, coloured console lines on a
// terminal.
func newLogger(c daemon.LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	console := c.Format == "console"
	if c.Format == "auto" {
		f, ok := w.(*os.File)
		console = ok && term.IsTerminal(int(f.Fd()))
	}
	var enc zapcore.Encoder
	if console {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}

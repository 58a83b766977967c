package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/firmware/bundle"
	ort "github.com/oodguard/oodguard/runtime"
)

// bundleCommand packs a model and its calibration into a signed bundle.
type bundleCommand struct {
	model, calibration, key string
	version, deviceClass    string
	minDaemon, minORT       string
	out                     string
	gzip, force             bool
	canaries                string
	canaryCount             int
	ort                     ortFlags
}

func (c *bundleCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard bundle -model M.onnx -calibration C.json -key PRIV -version V -device-class CLASS [flags]

Packs the model and its calibration into a signed update bundle for oodguardd: one tar
archive holding manifest.json (version, device class, files with their sha256, preprocessing,
score and threshold, minimum daemon and ONNX Runtime versions), manifest.sig (Ed25519 over the
manifest), model.onnx and calibration.json. The score, threshold and preprocessing come from
the calibration (oodguard calibrate's calibration.json), which must name the model's sha256. Versions are MAJOR.MINOR.PATCH[-PRE].

Flags:
`)
}

func (c *bundleCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("bundle", c)
	fs.StringVar(&c.model, "model", "", "ONNX model (required)")
	fs.StringVar(&c.calibration, "calibration", "", "its calibration.json (required)")
	fs.StringVar(&c.key, "key", "", "private key file from oodguard keygen (required)")
	fs.StringVar(&c.version, "version", "", "bundle version, MAJOR.MINOR.PATCH[-PRE] (required)")
	fs.StringVar(&c.deviceClass, "device-class", "", "class of the devices that may install it (required)")
	fs.StringVar(&c.minDaemon, "min-daemon", "", "oldest oodguardd version that may run it (default: any)")
	fs.StringVar(&c.minORT, "min-onnxruntime", ort.ORTVersion, "oldest ONNX Runtime version that may run it")
	fs.StringVar(&c.out, "out", "", "bundle file to write (default MODEL-VERSION.tar, or .tar.gz with -gzip)")
	fs.BoolVar(&c.gzip, "gzip", false, "compress the bundle")
	fs.BoolVar(&c.force, "force", false, "overwrite -out if it exists")
	fs.StringVar(&c.canaries, "canaries", "", "folder of sample images: their scores become canaries the device checks before switching")
	fs.IntVar(&c.canaryCount, "canary-count", 4, "how many images of -canaries to use")
	c.ort.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, req := range []struct{ flag, val string }{
		{"model", c.model}, {"calibration", c.calibration}, {"key", c.key},
		{"version", c.version}, {"device-class", c.deviceClass},
	} {
		if req.val == "" {
			return usagef("-%s is required", req.flag)
		}
	}
	if fs.NArg() != 0 {
		return usagef("bundle takes no arguments, got %q", fs.Args())
	}
	if err := checkModelFile(c.model); err != nil {
		return err
	}
	var m bundle.Manifest
	var err error
	if m.Version, err = bundle.ParseVersion(c.version); err != nil {
		return usageError{err}
	}
	if c.minDaemon != "" {
		if m.MinDaemon, err = bundle.ParseVersion(c.minDaemon); err != nil {
			return usageError{fmt.Errorf("-min-daemon: %w", err)}
		}
	}
	if c.minORT != "" {
		if m.MinORT, err = bundle.ParseVersion(c.minORT); err != nil {
			return usageError{fmt.Errorf("-min-onnxruntime: %w", err)}
		}
	}
	m.DeviceClass = c.deviceClass
	out := c.out
	if out == "" {
		out = strings.TrimSuffix(filepath.Base(c.model), filepath.Ext(c.model)) + "-" + m.Version.String() + ".tar"
		if c.gzip {
			out += ".gz"
		}
	}
	// Checked before the work: a bundle already shipped must not be replaced by mistake.
	if _, err := os.Lstat(out); err == nil && !c.force {
		return fmt.Errorf("bundle %s exists: give -force to overwrite it, or another -out", out)
	}
	key, err := bundle.ReadPrivateKey(c.key)
	if err != nil {
		return err
	}
	cal, err := calibrate.LoadCalibration(c.calibration)
	if err != nil {
		return err
	}
	sum, err := modelSHA256(c.model)
	if err != nil {
		return err
	}
	if err := cal.CheckModel(sum); err != nil {
		return fmt.Errorf("calibration %s, model %s: %w", c.calibration, c.model, err)
	}
	m.Score, m.Threshold, m.Preprocess = cal.Score, cal.Threshold, cal.Preprocess
	if c.canaries != "" {
		if m.Canaries, err = makeCanaries(&c.ort, c.model, cal, c.canaries, c.canaryCount); err != nil {
			return err
		}
	}
	built, err := bundle.Build(out, bundle.BuildInput{
		Model: c.model, Calibration: c.calibration, Manifest: m, Key: key, Gzip: c.gzip,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: bundle %s for device class %s, signed with key %s\n",
		out, built.Version, built.DeviceClass, bundle.KeyID(key.Public().(ed25519.PublicKey)))
	tw := newTable(stdout)
	printManifest(tw, built)
	return tw.Flush()
}

// modelSHA256 returns the hex sha256 of the file at path.
func modelSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package bundle

import "fmt"

// Default caps on what Verify reads.
const (
	DefaultMaxManifest = 1 << 20 // manifest.json
	DefaultMaxFile     = 2 << 30 // one payload file
	DefaultMaxTotal    = 4 << 30 // the whole archive, uncompressed
	maxSignature       = 4 << 10 // manifest.sig
)

// Limits caps the sizes Verify accepts; a zero field takes its default.
type Limits struct {
	Manifest int64 // bytes of manifest.json; DefaultMaxManifest
	File     int64 // bytes of one payload file; DefaultMaxFile
	Total    int64 // bytes of the uncompressed archive, headers included; DefaultMaxTotal
}

func (l Limits) withDefaults() Limits {
	if l.Manifest <= 0 {
		l.Manifest = DefaultMaxManifest
	}
	if l.File <= 0 {
		l.File = DefaultMaxFile
	}
	if l.Total <= 0 {
		l.Total = DefaultMaxTotal
	}
	return l
}

// Options say which bundles Verify accepts and where it puts them. The zero Options verify
// the signature and every file, and nothing else: a device sets DeviceClass and Installed.
type Options struct {
	DeviceClass    string  // this device's class; "" skips the check
	Installed      Version // the installed bundle version; zero: none, any version is accepted
	AllowDowngrade bool    // accept a version older than Installed
	AllowReinstall bool    // accept the Installed version again
	Daemon         Version // the running oodguardd; zero skips the manifest's min_daemon check
	ORT            Version // the loaded ONNX Runtime; zero skips the min_onnxruntime check
	// StagingDir, when set, is where the verified files end up (manifest.json and
	// manifest.sig included, so the directory can be checked again later). It must not
	// exist; Verify extracts into StagingDir+".unverified", replacing what an interrupted run
	// left there, and renames that only once all checks passed. One Verify per StagingDir at
	// a time.
	StagingDir string
	Limits     Limits
}

// UnverifiedSuffix is appended to the staging directory while a bundle is being extracted.
const UnverifiedSuffix = ".unverified"

// accept applies the device and version policy to an authenticated manifest.
func (o *Options) accept(m *Manifest) error {
	if o.DeviceClass != "" && m.DeviceClass != o.DeviceClass {
		return fmt.Errorf("%s: %w: bundle is for %q, this device is %q", ManifestName, ErrWrongDevice, m.DeviceClass, o.DeviceClass)
	}
	if !o.Installed.IsZero() {
		switch c := m.Version.Compare(o.Installed); {
		case c < 0 && !o.AllowDowngrade:
			return fmt.Errorf("%s: %w: bundle %s, installed %s (allow downgrades to install it)", ManifestName, ErrDowngrade, m.Version, o.Installed)
		case c == 0 && !o.AllowReinstall:
			return fmt.Errorf("%s: %w: %s (allow reinstalls to install it again)", ManifestName, ErrReinstall, m.Version)
		}
	}
	if !o.Daemon.IsZero() && !m.MinDaemon.IsZero() && o.Daemon.Compare(m.MinDaemon) < 0 {
		return fmt.Errorf("%s: %w: needs oodguardd %s, running %s", ManifestName, ErrIncompatible, m.MinDaemon, o.Daemon)
	}
	if !o.ORT.IsZero() && !m.MinORT.IsZero() && o.ORT.Compare(m.MinORT) < 0 {
		return fmt.Errorf("%s: %w: needs ONNX Runtime %s, loaded %s", ManifestName, ErrIncompatible, m.MinORT, o.ORT)
	}
	return nil
}

// checkSizes refuses a manifest whose files exceed the limits, before any is read.
func (l Limits) checkSizes(m *Manifest) error {
	var total int64
	for name, f := range m.Files {
		if f.Size > l.File {
			return fmt.Errorf("%s: %w: %d bytes (limit %d)", name, ErrTooLarge, f.Size, l.File)
		}
		if f.Size > l.Total-total {
			return fmt.Errorf("%s: %w: files total more than %d bytes", ManifestName, ErrTooLarge, l.Total)
		}
		total += f.Size
	}
	return nil
}

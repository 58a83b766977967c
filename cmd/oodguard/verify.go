package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/oodguard/oodguard/firmware/bundle"
)

// verifyCommand checks a bundle as a device would, and optionally extracts it.
type verifyCommand struct {
	keyring, installed, deviceClass, extract string
	allowDowngrade, allowReinstall           bool
}

func (c *verifyCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard verify -keyring DIR [flags] BUNDLE

Checks BUNDLE as oodguardd will before installing it: the archive holds only the expected
regular files, manifest.sig verifies over manifest.json with a key from the keyring (a
directory of *.pub files, or one .pub file), every file matches the manifest's sha256 and size,
and, when given, the device class matches and the version is newer than the installed one.
Prints what it checked; exits 1 with the reason when a check fails. Flags may follow BUNDLE.

Flags:
`)
}

func (c *verifyCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("verify", c)
	fs.StringVar(&c.keyring, "keyring", "", "directory of trusted public keys (*.pub), or one key file (required)")
	fs.StringVar(&c.installed, "installed-version", "", "installed bundle version; refuse older or equal bundles")
	fs.StringVar(&c.deviceClass, "device-class", "", "this device's class; refuse bundles for another")
	fs.BoolVar(&c.allowDowngrade, "allow-downgrade", false, "accept a bundle older than -installed-version")
	fs.BoolVar(&c.allowReinstall, "allow-reinstall", false, "accept a bundle of the -installed-version")
	fs.StringVar(&c.extract, "extract", "", "extract the verified files into this new directory")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if c.keyring == "" {
		return usagef("-keyring is required")
	}
	if len(pos) != 1 {
		return usagef("verify takes one bundle file, got %d arguments", len(pos))
	}
	opts := bundle.Options{
		DeviceClass: c.deviceClass, AllowDowngrade: c.allowDowngrade, AllowReinstall: c.allowReinstall,
		StagingDir: c.extract,
	}
	if c.installed != "" {
		if opts.Installed, err = bundle.ParseVersion(c.installed); err != nil {
			return usageError{fmt.Errorf("-installed-version: %w", err)}
		}
	}
	kr, err := bundle.LoadKeyring(c.keyring)
	if err != nil {
		return err
	}
	path := pos[0]
	b, err := bundle.Open(path, kr, opts)
	if err != nil {
		return err
	}
	m := b.Manifest
	fmt.Fprintf(stdout, "%s: OK\n", path)
	tw := newTable(stdout)
	fmt.Fprintf(tw, "  signature\ted25519 over %s, key %s from %s\n", bundle.ManifestName, b.KeyID, c.keyring)
	fmt.Fprintf(tw, "  files\t%d, each with the manifest's size and sha256; no other entries\n", len(m.Files))
	switch {
	case c.deviceClass != "":
		fmt.Fprintf(tw, "  device class\t%s, matches\n", m.DeviceClass)
	default:
		fmt.Fprintf(tw, "  device class\t%s, not checked (no -device-class)\n", m.DeviceClass)
	}
	switch c := m.Version.Compare(opts.Installed); {
	case opts.Installed.IsZero():
		fmt.Fprintf(tw, "  version\t%s, not checked (no -installed-version)\n", m.Version)
	case c > 0:
		fmt.Fprintf(tw, "  version\t%s, newer than installed %s\n", m.Version, opts.Installed)
	case c == 0:
		fmt.Fprintf(tw, "  version\t%s, same as installed (allowed by -allow-reinstall)\n", m.Version)
	default:
		fmt.Fprintf(tw, "  version\t%s, older than installed %s (allowed by -allow-downgrade)\n", m.Version, opts.Installed)
	}
	printManifest(tw, m)
	tw.Flush()
	if b.Dir != "" {
		fmt.Fprintf(stdout, "extracted into %s\n", b.Dir)
	}
	return nil
}

// newTable returns the tabwriter that verify and bundle print their reports with.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// printManifest prints a manifest's contents to a table, one field a line.
func printManifest(tw io.Writer, m *bundle.Manifest) {
	fmt.Fprintf(tw, "  created\t%s\n", m.Created.Format("2006-01-02T15:04:05Z07:00"))
	for _, name := range slices.Sorted(maps.Keys(m.Files)) {
		f := m.Files[name]
		fmt.Fprintf(tw, "  %s\t%d bytes, sha256 %s\n", name, f.Size, f.SHA256)
	}
	p := m.Preprocess
	fmt.Fprintf(tw, "  preprocess\t%dx%dx%d %s, %s, mean %v, std %v\n", p.Channels, p.Height, p.Width, p.Layout, p.Resize, p.Mean, p.Std)
	fmt.Fprintf(tw, "  score\t%s, ID when score >= %g\n", m.Score, m.Threshold)
	fmt.Fprintf(tw, "  requires\toodguardd %s, ONNX Runtime %s\n", orAny(m.MinDaemon), orAny(m.MinORT))
	fmt.Fprintf(tw, "  canaries\t%d\n", len(m.Canaries))
}

func orAny(v bundle.Version) string {
	if v.IsZero() {
		return "any"
	}
	return ">= " + v.String()
}

// parseInterspersed parses flags that may come before, between or after the positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		if n := len(args) - fs.NArg(); n > 0 && args[n-1] == "--" {
			return append(pos, fs.Args()...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

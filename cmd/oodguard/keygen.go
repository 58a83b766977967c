package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/oodguard/oodguard/firmware/bundle"
)

// keygenCommand creates an Ed25519 key pair for signing bundles.
type keygenCommand struct {
	out, name string
}

func (c *keygenCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard keygen -out DIR [-name NAME]

Creates an Ed25519 key pair for signing bundles: DIR/NAME.key, the private key (PEM PKCS #8,
mode 0600; keep it off devices), and DIR/NAME.pub, the public key (PEM) that devices put in
their keyring directory. Prints the key id that bundles signed with it carry. Never
overwrites a key; DIR is created (mode 0700) when missing.

Flags:
`)
}

// keyNameRE keeps key names to plain file names.
var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (c *keygenCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("keygen", c)
	fs.StringVar(&c.out, "out", "", "directory for the key files (required)")
	fs.StringVar(&c.name, "name", "oodguard", "base name of the key files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.out == "" {
		return usagef("-out is required")
	}
	if fs.NArg() != 0 {
		return usagef("keygen takes no arguments, got %q", fs.Args())
	}
	if !keyNameRE.MatchString(c.name) {
		return usagef("-name %q is not a plain file name ([A-Za-z0-9._-], at most 64)", c.name)
	}
	if err := os.MkdirAll(c.out, 0o700); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privPath, pubPath, err := bundle.WriteKeyPair(c.out, c.name, priv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key id       %s\nprivate key  %s (keep it secret)\npublic key   %s (copy it into the devices' keyring)\n",
		bundle.KeyID(pub), privPath, pubPath)
	return nil
}

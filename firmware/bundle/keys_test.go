package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPath, pubPath, err := WriteKeyPair(dir, "release", priv)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]fs.FileMode{privPath: 0o600, pubPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, mode)
		}
	}
	got, err := ReadPrivateKey(privPath)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("ReadPrivateKey = %v", err)
	}
	if _, _, err := WriteKeyPair(dir, "release", priv); !errors.Is(err, fs.ErrExist) {
		t.Errorf("overwrite: %v", err)
	}
	if err := os.Chmod(privPath, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKey(privPath); err == nil {
		t.Error("group-readable private key accepted")
	}
	if _, err := ReadPublicKey(privPath); err == nil {
		t.Error("private key read as a public key")
	}

	// A second key in the directory, and a stray file that is not a key.
	if _, _, err := WriteKeyPair(dir, "old", testKey(2)); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dir, "README", []byte("keys"))
	kr, err := LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := kr.IDs()
	want := KeyID(priv.Public().(ed25519.PublicKey))
	if len(ids) != 2 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(want) {
		t.Fatalf("IDs = %v", ids)
	}
	if pub, ok := kr.Lookup(want); !ok || !pub.Equal(priv.Public()) {
		t.Errorf("Lookup(%s) = %v, %v", want, pub, ok)
	}
	// A single file works too.
	if kr, err := LoadKeyring(pubPath); err != nil || len(kr.IDs()) != 1 {
		t.Errorf("LoadKeyring(file) = %v, %v", kr, err)
	}
	if _, err := LoadKeyring(t.TempDir()); err == nil {
		t.Error("empty keyring directory accepted")
	}
	writeTestFile(t, dir, "bad.pub", []byte("not a key"))
	if _, err := LoadKeyring(dir); err == nil {
		t.Error("bad .pub file accepted")
	}
	if _, err := LoadKeyring(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing path accepted")
	}
}

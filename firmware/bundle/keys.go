package bundle

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/oodguard/oodguard/internal/atomicfile"
)

// Key files are PEM: "PRIVATE KEY" (PKCS #8) in NAME.key, mode 0600, and "PUBLIC KEY" (PKIX)
// in NAME.pub, the forms OpenSSL reads and writes for Ed25519.
const (
	PrivateKeyExt = ".key"
	PublicKeyExt  = ".pub"
)

// maxKeyFile caps what key loaders read; a PEM Ed25519 key is about 120 bytes.
const maxKeyFile = 16 << 10

// KeyID names a public key: the first 8 bytes of its sha256, in lowercase hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// WriteKeyPair writes priv to dir/name.key (mode 0600) and its public key to dir/name.pub,
// each atomically. It refuses to overwrite either file.
func WriteKeyPair(dir, name string, priv ed25519.PrivateKey) (privPath, pubPath string, err error) {
	privPath = filepath.Join(dir, name+PrivateKeyExt)
	pubPath = filepath.Join(dir, name+PublicKeyExt)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("write key: %s: %w", p, fs.ErrExist)
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

// ReadPrivateKey reads an Ed25519 private key file. Like ssh, it refuses a file that group or
// others may read.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private key %s: mode %v lets others read it (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key %s: %T is not an Ed25519 key", path, k)
	}
	return priv, nil
}

// ReadPublicKey reads an Ed25519 public key file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key %s: %T is not an Ed25519 key", path, k)
	}
	return pub, nil
}

func readPEM(path, typ string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key %s: larger than %d bytes", path, maxKeyFile)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("key %s: no PEM %q block", path, typ)
	}
	return block.Bytes, nil
}

// Keyring holds the public keys a device trusts, by key id.
type Keyring struct {
	keys map[string]ed25519.PublicKey
}

// NewKeyring returns a keyring of keys.
func NewKeyring(keys ...ed25519.PublicKey) *Keyring {
	k := &Keyring{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, pub := range keys {
		k.keys[KeyID(pub)] = slices.Clone(pub)
	}
	return k
}

// LoadKeyring loads public keys from paths: a file is read as one key, a directory gives every
// *.pub file in it (not its subdirectories). It fails when no key is found.
func LoadKeyring(paths ...string) (*Keyring, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), PublicKeyExt) {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	k := NewKeyring()
	for _, f := range files {
		pub, err := ReadPublicKey(f)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		k.keys[KeyID(pub)] = pub
	}
	if len(k.keys) == 0 {
		return nil, errors.New("keyring: no public keys (*" + PublicKeyExt + ") in " + strings.Join(paths, ", "))
	}
	return k, nil
}

// Lookup returns the key with id. A nil Keyring holds no keys.
func (k *Keyring) Lookup(id string) (ed25519.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	pub, ok := k.keys[id]
	return pub, ok
}

// IDs returns the key ids in the keyring, sorted.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

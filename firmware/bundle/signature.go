package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
)

// AlgEd25519 is the only signature algorithm bundles use.
const AlgEd25519 = "ed25519"

// Signature is the content of manifest.sig.
type Signature struct {
	KeyID string `json:"key_id"` // KeyID of the signing key
	Alg   string `json:"alg"`    // AlgEd25519
	Sig   []byte `json:"sig"`    // Ed25519 signature over the exact manifest.json bytes; base64 in JSON
}

// Sign signs the exact manifest bytes with priv.
func Sign(manifest []byte, priv ed25519.PrivateKey) Signature {
	pub := priv.Public().(ed25519.PublicKey)
	return Signature{KeyID: KeyID(pub), Alg: AlgEd25519, Sig: ed25519.Sign(priv, manifest)}
}

// Marshal encodes s as manifest.sig.
func (s Signature) Marshal() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseSignature decodes manifest.sig. Errors wrap ErrBadSignature.
func ParseSignature(b []byte) (Signature, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Signature
	if err := dec.Decode(&s); err != nil {
		return Signature{}, fmt.Errorf("%s: %w: %v", SignatureName, ErrBadSignature, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Signature{}, fmt.Errorf("%s: %w: data after the signature object", SignatureName, ErrBadSignature)
	}
	if s.Alg != AlgEd25519 {
		return Signature{}, fmt.Errorf("%s: %w: alg %q (want %q)", SignatureName, ErrBadSignature, s.Alg, AlgEd25519)
	}
	if len(s.Sig) != ed25519.SignatureSize {
		return Signature{}, fmt.Errorf("%s: %w: %d signature bytes (want %d)", SignatureName, ErrBadSignature, len(s.Sig), ed25519.SignatureSize)
	}
	return s, nil
}

// Verify checks that sig, made by a key in k, covers manifest. It returns the key id;
// errors wrap ErrUnknownKey or ErrBadSignature.
func (k *Keyring) Verify(manifest []byte, sig Signature) (string, error) {
	pub, ok := k.Lookup(sig.KeyID)
	if !ok {
		return "", fmt.Errorf("%s: %w: key id %q (keyring has %v)", SignatureName, ErrUnknownKey, sig.KeyID, k.IDs())
	}
	if sig.Alg != AlgEd25519 || !ed25519.Verify(pub, manifest, sig.Sig) {
		return "", fmt.Errorf("%s: %w: does not verify over %s with key %s", SignatureName, ErrBadSignature, ManifestName, sig.KeyID)
	}
	return sig.KeyID, nil
}

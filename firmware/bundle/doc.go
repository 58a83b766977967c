// Package bundle builds, signs and verifies oodguard update bundles: the unit in which a model
// and its calibration travel over the air to a device.
//
// # Trust model
//
// Only the manifest is signed. manifest.json names the bundle version, the device class it is
// for, the preprocessing and scoring the model needs, and the sha256 and size of every other
// file. manifest.sig holds an Ed25519 signature over the exact bytes of manifest.json and the id
// of the key that made it. A device trusts a bundle when the signature verifies with a public
// key from its [Keyring] (looked up by key id, never taken from the bundle) and every file
// matches the digest and size the manifest gives for it. Nothing else in the archive is
// trusted: tar headers (modes, owners, times, link targets) are ignored or refused, and the
// manifest is parsed only after its signature has been checked.
//
// # Layout
//
// A bundle is one tar archive (POSIX ustar), optionally gzip-compressed ([Verify] detects the
// gzip magic; [Build] writes plain tar unless asked, as model weights barely compress and a
// plain tar can be resumed and inspected with standard tools). Its entries are regular files
// at the archive root, in this order:
//
//	manifest.json     the signed manifest (see [Manifest])
//	manifest.sig      {"key_id": "...", "alg": "ed25519", "sig": "<base64>"} (see [Signature])
//	model.onnx        the ONNX image classifier
//	calibration.json  its calibration
//	canary-NAME.f32   optional canary inputs, raw little-endian float32 [C,H,W]
//
// The files after manifest.sig may come in any order, but each must be listed in the manifest
// and appear once. Putting the manifest first lets a reader check the signature, the device
// class and the version before it reads (or stores) a single byte of payload.
//
// # Verification
//
// [Verify] reads a bundle as a stream with size caps ([Limits]), refuses any entry that is not
// a regular file, whose name is absolute, holds "..", is not one of the names above, or comes
// twice, and checks the signature, the device class, the version against the installed one,
// then each file's size and sha256. It also requires the end-of-archive marker, so a
// download cut between two entries reads as truncated. Nothing is written before the
// manifest is authenticated; with a staging directory Verify then extracts into
// "<dir>.unverified" and renames that to dir only after everything checked out, so a
// directory that looks like a bundle is always a verified one. Every failure wraps one of the
// sentinel errors (ErrBadSignature, ErrHashMismatch, ...) and names the file at fault.
package bundle

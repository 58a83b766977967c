package bundle

import "errors"

// Errors returned by this package, always wrapped with the file or entry they concern; test
// them with errors.Is.
var (
	// ErrBadSignature: manifest.sig is malformed or does not verify over manifest.json.
	ErrBadSignature = errors.New("bad signature")
	// ErrUnknownKey: manifest.sig names a key id that is not in the keyring.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrHashMismatch: a file's sha256 differs from the manifest's.
	ErrHashMismatch = errors.New("sha256 mismatch")
	// ErrSizeMismatch: a file's size differs from the manifest's.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrPathEscape: an entry name is absolute or holds "..".
	ErrPathEscape = errors.New("entry path escapes the bundle")
	// ErrEntryType: an entry is not a regular file (link, directory, device, fifo, ...).
	ErrEntryType = errors.New("entry is not a regular file")
	// ErrUnexpectedEntry: an entry's name is not one a bundle may hold here (or is not listed
	// in the manifest), or the manifest and its signature do not come first.
	ErrUnexpectedEntry = errors.New("unexpected entry")
	// ErrDuplicateEntry: an entry name appears twice.
	ErrDuplicateEntry = errors.New("duplicate entry")
	// ErrMissingFile: the archive lacks a file the bundle needs or the manifest lists.
	ErrMissingFile = errors.New("missing file")
	// ErrTruncated: the archive ends in the middle of an entry.
	ErrTruncated = errors.New("truncated bundle")
	// ErrTooLarge: an entry or the whole archive exceeds the size caps.
	ErrTooLarge = errors.New("too large")
	// ErrMalformedArchive: the data is not a readable tar (or tar.gz) archive.
	ErrMalformedArchive = errors.New("malformed archive")
	// ErrMalformedManifest: manifest.json does not parse or fails validation.
	ErrMalformedManifest = errors.New("malformed manifest")
	// ErrUnsupportedFormat: the manifest's format_version is not one this package reads.
	ErrUnsupportedFormat = errors.New("unsupported bundle format")
	// ErrWrongDevice: the bundle is for another device class.
	ErrWrongDevice = errors.New("bundle is for another device class")
	// ErrDowngrade: the bundle is older than the installed version.
	ErrDowngrade = errors.New("bundle is older than the installed version")
	// ErrReinstall: the bundle has the installed version.
	ErrReinstall = errors.New("bundle has the installed version")
	// ErrIncompatible: the bundle needs a newer oodguardd or ONNX Runtime.
	ErrIncompatible = errors.New("bundle needs a newer daemon or runtime")
)

package ota

import "errors"

// Errors returned by this package, wrapped with what they concern; test them with errors.Is.
// Install and Update also return the bundle package's errors (bundle.ErrBadSignature,
// bundle.ErrHashMismatch, bundle.ErrDowngrade, ...) wrapped.
var (
	// ErrNoSlot: no slot is installed, or none is left after a rollback.
	ErrNoSlot = errors.New("no slot installed")
	// ErrSlotDamaged: an installed slot's files do not match its manifest.
	ErrSlotDamaged = errors.New("slot damaged")
	// ErrTrialPending: an update was asked for while a slot is on trial; Commit or Rollback first.
	ErrTrialPending = errors.New("a slot is on trial")
	// ErrNoTrial: Commit or Rollback was called while no slot is on trial.
	ErrNoTrial = errors.New("no slot on trial")
	// ErrTrialNotStarted: Commit was called before a daemon start (Recover) on the slot on trial.
	ErrTrialNotStarted = errors.New("slot on trial not started yet")
	// ErrBadChecksum: the sha256 given for a download is not 64 lowercase hex digits.
	ErrBadChecksum = errors.New("bad sha256")
	// ErrChecksum: a downloaded file's sha256 differs from the one given; the file is deleted.
	ErrChecksum = errors.New("downloaded file has another sha256")
	// ErrTooLarge: a download exceeds Downloader.MaxSize; the file is deleted.
	ErrTooLarge = errors.New("download too large")
	// ErrInterrupted: a transfer broke off (connection lost, stalled, cancelled); what arrived
	// is kept and the next Download of the same file resumes from it.
	ErrInterrupted = errors.New("download interrupted")
)

// StatusError is an HTTP response other than the file (or the rest of it).
type StatusError struct {
	URL    string
	Code   int    // e.g. 404
	Status string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

// Temporary reports whether retrying later may succeed (408, 429 and 5xx).
func (e *StatusError) Temporary() bool {
	return e.Code == 408 || e.Code == 429 || e.Code >= 500
}

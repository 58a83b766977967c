//go:build !unix

package outbox

import "os"

// lockDir opens path without locking it: outside unix the outbox trusts that one process uses
// a folder.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

func unlockDir(f *os.File) error { return f.Close() }

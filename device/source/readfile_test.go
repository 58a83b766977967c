package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func TestFileReader(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 20000) // 200 kB: grows the buffer twice
	dir := writeFiles(t, map[string][]byte{"big": big, "empty": nil})
	r := newFileReader([]string{filepath.Join(dir, "big"), filepath.Join(dir, "empty"), filepath.Join(dir, "gone"), dir})
	buf, err := r.read(0, nil, 1<<20)
	if err != nil || !bytes.Equal(buf, big) {
		t.Fatalf("read %d bytes, %v", len(buf), err)
	}
	if buf, err = r.read(1, buf, 1<<20); err != nil || len(buf) != 0 {
		t.Errorf("empty file: %d bytes, %v", len(buf), err)
	}
	if _, err := r.read(0, buf, 100_000); err == nil || !strings.Contains(err.Error(), "larger than 100000") {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := r.read(2, buf, 1<<20); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := r.read(3, buf, 1<<20); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("folder: %v", err)
	}
	if n := testing.AllocsPerRun(10, func() { buf, _ = r.read(0, buf, 1<<20) }); n != 0 && runtime.GOOS == "linux" {
		t.Errorf("%v allocations per read, want 0", n)
	}
}

package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/oodguard/oodguard/internal/atomicfile"
)

// failDisk makes message writes fail with ENOSPC until the returned func is called.
func failDisk(t *testing.T) (restore func()) {
	t.Helper()
	writeFile = func(string, []byte, os.FileMode) error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	restore = func() { writeFile = atomicfile.WriteFile }
	t.Cleanup(restore)
	return restore
}

// With the disk full, messages are held in memory in their place in the queue, delivered in
// order, and written to disk once it has room again; past the memory bound the oldest held
// messages are dropped and counted.
func TestDiskFullHoldsMessagesInMemory(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir, Limits{MaxMemoryBytes: 3 * 1024}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	msg := func(i int) Message {
		return Message{Topic: fmt.Sprintf("t/%d", i), Payload: make([]byte, 900), QoS: 1}
	}
	if _, err := o.Append(msg(1)); err != nil {
		t.Fatal(err)
	}
	restore := failDisk(t)
	for i := 2; i <= 5; i++ {
		if _, err := o.Append(msg(i)); !errors.Is(err, ErrInMemory) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append %d with the disk full: %v, want ErrInMemory and the cause", i, err)
		}
	}
	// 4 held (about 3.7 KB) is over the 3 KiB bound: the oldest held one (2) was dropped.
	if o.Len() != 4 || o.InMemory() != 3 || o.NotStored() != 4 || o.Dropped() != 1 {
		t.Fatalf("len %d, in memory %d, not stored %d, dropped %d", o.Len(), o.InMemory(), o.NotStored(), o.Dropped())
	}
	// In order: 1 (disk), then 3, 4, 5 (memory).
	for _, want := range []string{"t/1", "t/3"} {
		seq, m, ok, err := o.Oldest()
		if err != nil || !ok || m.Topic != want {
			t.Fatalf("oldest: %v %v %+v, want %s", ok, err, m, want)
		}
		if err := o.Remove(seq); err != nil {
			t.Fatal(err)
		}
	}
	// The disk has room again: the next Append writes the held messages first.
	restore()
	if _, err := o.Append(msg(6)); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.msg"))
	if o.InMemory() != 0 || len(files) != 3 {
		t.Fatalf("in memory %d, files %d; want 0 and 3 (4, 5, 6)", o.InMemory(), len(files))
	}
	o.Close()
	o2, err := Open(dir, Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	for _, want := range []string{"t/4", "t/5", "t/6"} {
		seq, m, ok, err := o2.Oldest()
		if err != nil || !ok || m.Topic != want {
			t.Fatalf("after reopening: %v %v %+v, want %s", ok, err, m, want)
		}
		o2.Remove(seq)
	}
}

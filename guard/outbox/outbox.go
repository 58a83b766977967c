// Package outbox is a bounded, ordered queue of MQTT messages on disk, so that alerts raised
// while the broker is away, or before a crash or restart of the daemon (SIGKILL and power loss
// included), are published afterwards, in order.
//
// Each message is one file in the outbox folder, named by a sequence number that grows with
// every Append (20 decimal digits, ".msg"), so that the name order is the queue order. A file is
// written atomically: to a temporary file in the same folder, synced, closed, renamed, and then
// the folder is synced (internal/atomicfile). A message that Append returned for is therefore on
// disk, and a crash leaves at worst a temporary file, which the next Open removes. Each file
// ends with a CRC-32C, so a truncated or damaged file is recognised at Open: it is logged,
// removed and counted as dropped, and the rest of the queue is kept.
//
// Removing a delivered message does not sync the folder: after a power loss a delivered message
// may come back and be published again. Subscribers must expect duplicates anyway (MQTT QoS 1).
//
// The queue is bounded by Limits. When an Append goes over a bound, the oldest messages are
// dropped until it fits: on a device that has lost its broker for days, recent alerts matter
// more than old ones. Dropped counts the messages dropped since Open (by the bounds, or because
// their file was unreadable); it is not persisted. Sequence numbers continue from the newest
// message on disk; after the outbox has been empty across a restart they start again at 1.
//
// # When the disk is full
//
// A message whose file cannot be written (disk full, read-only or failing storage) is not
// lost at once: Append keeps it in memory, in its place in the queue, and returns an error
// matching ErrInMemory; the message is delivered in order like the others. Every later Append
// and Oldest first tries to write the messages held in memory to disk, oldest first. Memory is
// bounded by Limits.MaxMemoryBytes: past it the oldest messages in memory are dropped (counted
// in Dropped). Messages still in memory when the process stops are lost; Close logs how many.
// NotStored counts the messages that could not be written when they were appended.
//
// One process owns an outbox folder at a time: Open takes an exclusive lock (flock on the file
// LOCK in the folder, released by the kernel when the process dies) and fails with ErrLocked
// while another Outbox holds it.
package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/oodguard/oodguard/internal/atomicfile"
)

// Default bounds, used for zero fields of Limits.
const (
	DefaultMaxMessages = 1000
	DefaultMaxBytes    = 64 << 20
)

const (
	suffix   = ".msg"
	nameLen  = 20 + len(suffix)
	lockName = "LOCK"
	tmpMark  = suffix + ".tmp-" // atomicfile names temporaries ".<name>.tmp-<random>"
)

var (
	// ErrClosed is returned by operations on a closed Outbox.
	ErrClosed = errors.New("outbox: closed")
	// ErrLocked is returned by Open when another Outbox holds the folder.
	ErrLocked = errors.New("outbox: folder is in use by another outbox")
	// ErrTooLarge is returned by Append for a message larger than Limits.MaxBytes.
	ErrTooLarge = errors.New("outbox: message is larger than the outbox")
	// ErrInMemory is matched by the error of an Append whose file could not be written: the
	// message is queued in memory only (see "When the disk is full").
	ErrInMemory = errors.New("outbox: message kept in memory only")
)

// DefaultMaxMemoryBytes bounds the messages held in memory while the disk refuses them.
const DefaultMaxMemoryBytes = 16 << 20

// writeFile writes a message file; tests replace it to make the disk fail.
var writeFile = atomicfile.WriteFile

// Limits bounds an Outbox. Zero fields take the defaults.
type Limits struct {
	MaxMessages    int   `json:"max_messages" yaml:"max_messages"`         // most messages kept
	MaxBytes       int64 `json:"max_bytes" yaml:"max_bytes"`               // most bytes kept, counted as file sizes
	MaxMemoryBytes int64 `json:"max_memory_bytes" yaml:"max_memory_bytes"` // most bytes held in memory while the disk refuses writes
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultMaxMessages
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	return l
}

// Outbox is an on-disk message queue. It is safe for concurrent use; Notify is meant for one
// consumer.
type Outbox struct {
	dir    string
	lim    Limits
	log    *zap.Logger
	notify chan struct{}

	mu        sync.Mutex
	lock      *os.File // nil once closed
	queue     []entry  // ascending seq; queue[0] is the oldest
	bytes     int64
	memBytes  int64 // bytes of the entries held in memory
	next      uint64
	dropped   uint64
	notStored uint64
}

type entry struct {
	seq  uint64
	size int64
	mem  []byte // the encoded message while its file could not be written; nil once on disk
}

// Open opens the outbox in dir, creating the folder if needed, and loads the messages a
// previous run left there. Leftover temporary files and damaged messages are logged and
// removed. log is used as given (callers name it, e.g. log.Named("outbox")); nil logs
// nothing.
func Open(dir string, lim Limits, log *zap.Logger) (*Outbox, error) {
	if log == nil {
		log = zap.NewNop()
	}
	o := &Outbox{
		dir:    dir,
		lim:    lim.withDefaults(),
		log:    log.With(zap.String("dir", dir)),
		notify: make(chan struct{}, 1),
		next:   1,
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	o.lock = lock
	if err := o.load(); err != nil {
		unlockDir(lock)
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	o.trim()
	if len(o.queue) > 0 {
		o.log.Info("outbox loaded", zap.Int("messages", len(o.queue)), zap.Int64("bytes", o.bytes),
			zap.Uint64("oldest_seq", o.queue[0].seq))
		o.wake()
	}
	return o, nil
}

// load scans the folder and builds the queue.
func (o *Outbox) load() error {
	des, err := os.ReadDir(o.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(o.dir, name)
		switch {
		case name == lockName:
		case strings.HasPrefix(name, ".") && strings.Contains(name, tmpMark):
			o.log.Warn("removing leftover temporary file", zap.String("file", name))
			o.removeFile(path)
		case strings.HasSuffix(name, suffix):
			seq, ok := parseName(name)
			if !ok || !de.Type().IsRegular() {
				o.log.Warn("ignoring unexpected file", zap.String("file", name))
				continue
			}
			size, err := o.check(path)
			if err != nil {
				if !errors.Is(err, errCorrupt) {
					return err
				}
				o.log.Warn("removing damaged message", zap.String("file", name), zap.Error(err))
				o.removeFile(path)
				o.dropped++
				continue
			}
			o.queue = append(o.queue, entry{seq: seq, size: size})
			o.bytes += size
		default:
			o.log.Warn("ignoring unexpected file", zap.String("file", name))
		}
	}
	slices.SortFunc(o.queue, func(a, b entry) int {
		if a.seq < b.seq {
			return -1
		}
		if a.seq > b.seq {
			return 1
		}
		return 0
	})
	if n := len(o.queue); n > 0 {
		o.next = o.queue[n-1].seq + 1
	}
	return nil
}

// check reads and decodes a message file and returns its size.
func (o *Outbox) check(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if _, err := decode(b); err != nil {
		return 0, err
	}
	return int64(len(b)), nil
}

// Append adds m at the end of the queue and returns its sequence number once its file is on
// disk. If the queue then exceeds its limits, the oldest messages are dropped. When the file
// cannot be written, the message is kept in memory and the error matches ErrInMemory (the
// message is queued all the same; see "When the disk is full").
func (o *Outbox) Append(m Message) (uint64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	b := encode(m)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lock == nil {
		return 0, ErrClosed
	}
	if int64(len(b)) > o.lim.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), o.lim.MaxBytes)
	}
	o.persist()
	seq := o.next
	o.next++
	e := entry{seq: seq, size: int64(len(b))}
	var werr error
	if werr = writeFile(o.path(seq), b, 0o600); werr != nil {
		e.mem = b
		o.memBytes += e.size
		o.notStored++
	}
	o.queue = append(o.queue, e)
	o.bytes += e.size
	o.trim()
	o.wake()
	if werr != nil {
		return seq, fmt.Errorf("%w (%d in memory, %d bytes): %w", ErrInMemory, o.inMemory(), o.memBytes, werr)
	}
	return seq, nil
}

// persist writes the messages held in memory to disk, oldest first, until one fails. o.mu is
// held.
func (o *Outbox) persist() {
	if o.memBytes == 0 {
		return
	}
	for i := range o.queue {
		e := &o.queue[i]
		if e.mem == nil {
			continue
		}
		if err := writeFile(o.path(e.seq), e.mem, 0o600); err != nil {
			return
		}
		o.memBytes -= e.size
		e.mem = nil
		o.log.Info("message held in memory written to disk", zap.Uint64("seq", e.seq))
	}
}

// inMemory counts the messages held in memory. o.mu is held.
func (o *Outbox) inMemory() int {
	n := 0
	for _, e := range o.queue {
		if e.mem != nil {
			n++
		}
	}
	return n
}

// NotStored returns the number of messages whose file could not be written when they were
// appended (kept in memory instead) since Open.
func (o *Outbox) NotStored() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notStored
}

// InMemory returns the number of messages held in memory, waiting for room on disk.
func (o *Outbox) InMemory() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inMemory()
}

// trim drops the oldest messages until the queue is within its limits. o.mu is held.
func (o *Outbox) trim() {
	for len(o.queue) > o.lim.MaxMessages || o.bytes > o.lim.MaxBytes {
		e := o.queue[0]
		o.drop(0)
		o.log.Warn("outbox full, dropped the oldest message", zap.Uint64("seq", e.seq),
			zap.Int("max_messages", o.lim.MaxMessages), zap.Int64("max_bytes", o.lim.MaxBytes),
			zap.Uint64("dropped", o.dropped))
	}
	for o.memBytes > o.lim.MaxMemoryBytes {
		i := slices.IndexFunc(o.queue, func(e entry) bool { return e.mem != nil })
		seq := o.queue[i].seq
		o.drop(i)
		o.log.Error("outbox memory full while the disk refuses writes; dropped the oldest message held in memory",
			zap.Uint64("seq", seq), zap.Int64("max_memory_bytes", o.lim.MaxMemoryBytes), zap.Uint64("dropped", o.dropped))
	}
}

// drop removes queue[i] (its file or its memory) and counts it as dropped. o.mu is held.
func (o *Outbox) drop(i int) {
	e := o.queue[i]
	if e.mem != nil {
		o.memBytes -= e.size
	} else {
		o.removeFile(o.path(e.seq))
	}
	o.queue = slices.Delete(o.queue, i, i+1)
	o.bytes -= e.size
	o.dropped++
}

// Oldest returns the oldest message. ok is false when the queue is empty. A message whose file
// has become unreadable is logged, removed, counted as dropped and skipped.
func (o *Outbox) Oldest() (seq uint64, m Message, ok bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lock == nil {
		return 0, Message{}, false, ErrClosed
	}
	o.persist()
	for len(o.queue) > 0 {
		e := o.queue[0]
		if e.mem != nil {
			m, err := decode(e.mem)
			if err != nil { // not reached: encode made it
				return 0, Message{}, false, fmt.Errorf("outbox: message %d in memory: %w", e.seq, err)
			}
			return e.seq, m, true, nil
		}
		b, err := os.ReadFile(o.path(e.seq))
		if err == nil {
			m, err = decode(b)
		}
		if err == nil {
			return e.seq, m, true, nil
		}
		if !errors.Is(err, errCorrupt) && !errors.Is(err, fs.ErrNotExist) {
			return 0, Message{}, false, fmt.Errorf("outbox: read message %d: %w", e.seq, err)
		}
		o.log.Warn("dropping unreadable message", zap.Uint64("seq", e.seq), zap.Error(err))
		o.drop(0)
	}
	return 0, Message{}, false, nil
}

// Remove deletes the message seq, once it has been delivered. Removing a message that is not
// in the queue (already removed, or dropped by the limits meanwhile) is not an error. If its
// file cannot be deleted, the message still leaves the queue and Remove returns the error; the
// message may then be published again after the next Open.
func (o *Outbox) Remove(seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lock == nil {
		return ErrClosed
	}
	i, found := slices.BinarySearchFunc(o.queue, seq, func(e entry, s uint64) int {
		if e.seq < s {
			return -1
		}
		if e.seq > s {
			return 1
		}
		return 0
	})
	if !found {
		return nil
	}
	e := o.queue[i]
	o.bytes -= e.size
	o.queue = slices.Delete(o.queue, i, i+1)
	if e.mem != nil {
		o.memBytes -= e.size
		return nil
	}
	if err := os.Remove(o.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("outbox: remove message %d: %w", seq, err)
	}
	return nil
}

// Len returns the number of messages in the queue.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

// Bytes returns the size of the queued messages' files.
func (o *Outbox) Bytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}

// Dropped returns the number of messages dropped since Open, by the limits or because their
// file was unreadable.
func (o *Outbox) Dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// Notify returns a channel that receives a value after Append, and at Open when the queue is
// not empty. It holds at most one pending value, so a consumer that is woken must drain the
// queue before it waits again.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// Close releases the folder. The messages stay on disk for the next Open.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lock == nil {
		return nil
	}
	if n := o.inMemory(); n > 0 {
		o.log.Error("closing with messages that never reached the disk: they are lost", zap.Int("messages", n), zap.Int64("bytes", o.memBytes))
	}
	err := unlockDir(o.lock)
	o.lock = nil
	return err
}

func (o *Outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *Outbox) path(seq uint64) string {
	return filepath.Join(o.dir, fmt.Sprintf("%020d%s", seq, suffix))
}

func (o *Outbox) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Error("cannot remove file", zap.String("file", filepath.Base(path)), zap.Error(err))
	}
}

// parseName returns the sequence number of a message file name.
func parseName(name string) (uint64, bool) {
	if len(name) != nameLen || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[:20], 10, 64)
	return seq, err == nil && seq > 0
}

package outbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func msg(i int) Message {
	return Message{Topic: "oodguard/cam/events", Payload: []byte(fmt.Sprintf("alert-%04d", i)), QoS: 1, Retained: i%2 == 0}
}

func open(t *testing.T, dir string, lim Limits) *Outbox {
	t.Helper()
	o, err := Open(dir, lim, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// drain pops every message in order and returns their payloads.
func drain(t *testing.T, o *Outbox) []string {
	t.Helper()
	var got []string
	for {
		seq, m, ok, err := o.Oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		got = append(got, string(m.Payload))
		if err := o.Remove(seq); err != nil {
			t.Fatal(err)
		}
	}
}

func payloads(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, string(msg(i).Payload))
	}
	return s
}

func TestOrderAndReopen(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	var last uint64
	for i := range 5 {
		seq, err := o.Append(msg(i))
		if err != nil {
			t.Fatal(err)
		}
		if seq <= last {
			t.Fatalf("seq %d after %d", seq, last)
		}
		last = seq
	}
	seq, m, ok, err := o.Oldest()
	if err != nil || !ok {
		t.Fatalf("Oldest: ok=%v err=%v", ok, err)
	}
	if want := msg(0); m.Topic != want.Topic || !bytes.Equal(m.Payload, want.Payload) || m.QoS != 1 || !m.Retained {
		t.Fatalf("Oldest = %+v, want %+v", m, want)
	}
	if err := o.Remove(seq); err != nil {
		t.Fatal(err)
	}
	if err := o.Remove(seq); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append(msg(9)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	o = open(t, dir, Limits{})
	if o.Len() != 4 || o.Bytes() != 4*encodedSize(msg(0)) {
		t.Fatalf("reopened: Len %d Bytes %d", o.Len(), o.Bytes())
	}
	next, err := o.Append(msg(5))
	if err != nil {
		t.Fatal(err)
	}
	if next != last+1 {
		t.Fatalf("seq after reopen = %d, want %d", next, last+1)
	}
	if got, want := drain(t, o), payloads(1, 6); !slices.Equal(got, want) {
		t.Fatalf("order: got %v, want %v", got, want)
	}
	if o.Len() != 0 || o.Bytes() != 0 {
		t.Fatalf("after drain: Len %d Bytes %d", o.Len(), o.Bytes())
	}
}

func TestLimitsDropOldest(t *testing.T) {
	size := encodedSize(msg(0))
	tests := []struct {
		name string
		lim  Limits
	}{
		{"count", Limits{MaxMessages: 3}},
		{"bytes", Limits{MaxBytes: 3*size + size/2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := open(t, dir, tt.lim)
			for i := range 5 {
				if _, err := o.Append(msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			if o.Len() != 3 || o.Dropped() != 2 || o.Bytes() != 3*size {
				t.Fatalf("Len %d Dropped %d Bytes %d, want 3, 2, %d", o.Len(), o.Dropped(), o.Bytes(), 3*size)
			}
			if n := countFiles(t, dir, suffix); n != 3 {
				t.Fatalf("%d message files on disk, want 3", n)
			}
			if got, want := drain(t, o), payloads(2, 5); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestLimitsAppliedAtOpen(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	for i := range 5 {
		if _, err := o.Append(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()
	o = open(t, dir, Limits{MaxMessages: 2})
	if o.Len() != 2 || o.Dropped() != 3 {
		t.Fatalf("Len %d Dropped %d", o.Len(), o.Dropped())
	}
	if got, want := drain(t, o), payloads(3, 5); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestTooLarge(t *testing.T) {
	o := open(t, t.TempDir(), Limits{MaxBytes: 100})
	big := Message{Topic: "t", Payload: make([]byte, 100)}
	if _, err := o.Append(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if o.Len() != 0 || o.Dropped() != 0 {
		t.Fatalf("Len %d Dropped %d", o.Len(), o.Dropped())
	}
}

func TestInvalidMessage(t *testing.T) {
	o := open(t, t.TempDir(), Limits{})
	for _, m := range []Message{{Payload: []byte("x")}, {Topic: "t", QoS: 3}} {
		if _, err := o.Append(m); err == nil {
			t.Errorf("Append(%+v) succeeded", m)
		}
	}
}

// TestOpenAfterCrash lays out what a crash can leave behind and checks that Open keeps the
// good messages in order and removes the rest with a warning.
func TestOpenAfterCrash(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	for i := range 4 {
		if _, err := o.Append(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := encode(msg(7))
	write(".00000000000000000005.msg.tmp-123456", good[:10])               // crash before rename
	write(".00000000000000000006.msg.tmp-999", good)                       // crash after write, before rename
	write("00000000000000000002.msg", good[:len(good)-3])                  // truncated (replaces #2)
	write("00000000000000000009.msg", append([]byte("XXXX"), good[4:]...)) // bad magic
	write("00000000000000000010.msg", nil)                                 // empty
	flipped := bytes.Clone(good)
	flipped[len(flipped)-6] ^= 0x40
	write("00000000000000000011.msg", flipped) // bit flip in the payload
	write("notes.txt", []byte("not ours"))     // left alone
	write("12.msg", good)                      // not a sequence name: left alone

	core, logs := observer.New(zap.WarnLevel)
	o, err := Open(dir, Limits{}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got, want := drain(t, o), []string{"alert-0000", "alert-0002", "alert-0003"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if o.Dropped() != 4 {
		t.Fatalf("Dropped = %d, want 4", o.Dropped())
	}
	if n := logs.FilterMessage("removing leftover temporary file").Len(); n != 2 {
		t.Errorf("%d temporary-file warnings, want 2", n)
	}
	if n := logs.FilterMessage("removing damaged message").Len(); n != 4 {
		t.Errorf("%d damaged-message warnings, want 4", n)
	}
	if n := countFiles(t, dir, ".tmp-"); n != 0 {
		t.Errorf("%d temporary files left", n)
	}
	for _, name := range []string{"notes.txt", "12.msg"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	seq, err := o.Append(msg(20))
	if err != nil {
		t.Fatal(err)
	}
	if seq != 5 {
		t.Fatalf("next seq = %d, want 5 (after the newest good message, 4)", seq)
	}
}

func TestOldestSkipsFileDamagedAfterOpen(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	for i := range 3 {
		if _, err := o.Append(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(o.path(1), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(o.path(2)); err != nil {
		t.Fatal(err)
	}
	if got, want := drain(t, o), []string{"alert-0002"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if o.Dropped() != 2 || o.Bytes() != 0 {
		t.Fatalf("Dropped %d Bytes %d", o.Dropped(), o.Bytes())
	}
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	b := encode(msg(1))
	for n := range len(b) {
		if _, err := decode(b[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("decode of %d/%d bytes: err = %v", n, len(b), err)
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := decode(c); !errors.Is(err, errCorrupt) {
			t.Fatalf("decode with byte %d flipped: err = %v", i, err)
		}
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	if _, err := Open(dir, Limits{}, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	o.Close()
	o2, err := Open(dir, Limits{}, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	o2.Close()
}

func TestNotify(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	select {
	case <-o.Notify():
		t.Fatal("notified on an empty outbox")
	default:
	}
	o.Append(msg(0))
	o.Append(msg(1))
	select {
	case <-o.Notify():
	default:
		t.Fatal("no notification after Append")
	}
	o.Close()
	o = open(t, dir, Limits{})
	select {
	case <-o.Notify():
	default:
		t.Fatal("no notification at Open of a non-empty outbox")
	}
}

func TestConcurrentAppendAndDrain(t *testing.T) {
	o := open(t, t.TempDir(), Limits{})
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if _, err := o.Append(msg(i)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var got []string
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		seq, m, ok, err := o.Oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			select {
			case <-o.Notify():
			case <-deadline:
				t.Fatalf("only %d of %d messages", len(got), n)
			}
			continue
		}
		got = append(got, string(m.Payload))
		o.Remove(seq)
	}
	wg.Wait()
	if want := payloads(0, n); !slices.Equal(got, want) {
		t.Fatalf("order broken: %v", got)
	}
}

const helperEnv = "OODGUARD_OUTBOX_HELPER"

// TestCrashDuringAppend runs a child process that appends as fast as it can and kills it with
// SIGKILL mid-stream. Every Append the child reported must survive, in order, and nothing
// half-written may be left.
func TestCrashDuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe() // the child exits when this closes
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	reported := -1
	for lines.Scan() {
		if i, err := strconv.Atoi(strings.TrimPrefix(lines.Text(), "appended ")); err == nil {
			reported = i
		}
		if reported >= 50 {
			break
		}
	}
	if reported < 50 {
		t.Fatalf("child reported only %d appends (%v)", reported, lines.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	o := open(t, dir, Limits{})
	got := drain(t, o)
	if len(got) < reported+1 {
		t.Fatalf("%d messages survived, the child reported %d appends", len(got), reported+1)
	}
	if want := payloads(0, len(got)); !slices.Equal(got, want) {
		t.Fatalf("messages out of order or damaged after SIGKILL")
	}
	t.Logf("child killed after reporting %d appends; %d messages on disk, %d dropped as damaged", reported+1, len(got), o.Dropped())
}

// TestHelperAppender is the child of TestCrashDuringAppend; it does nothing in a normal run.
func TestHelperAppender(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashDuringAppend")
	}
	go func() { // exit when the parent goes away
		var b [1]byte
		os.Stdin.Read(b[:])
		os.Exit(3)
	}()
	o, err := Open(dir, Limits{MaxMessages: 1 << 20, MaxBytes: 1 << 30}, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		if _, err := o.Append(msg(i)); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("appended %d\n", i)
	}
}

func countFiles(t *testing.T, dir, part string) int {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		if strings.Contains(de.Name(), part) {
			n++
		}
	}
	return n
}

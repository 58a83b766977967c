package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/firmware/ota"
	"github.com/oodguard/oodguard/internal/atomicfile"
	"go.uber.org/zap"
)

// What became of an update command, in CommandResult.Status.
const (
	CommandQueued     = "queued"     // waiting for the update worker
	CommandRunning    = "running"    // being downloaded and installed
	CommandInstalled  = "installed"  // installed; the daemon restarts to run it on trial
	CommandFailed     = "failed"     // the download or the bundle failed; Reason says why
	CommandRefused    = "refused"    // malformed, or against the device's policy; nothing was fetched
	CommandSuperseded = "superseded" // a newer command replaced it before it finished
	CommandIgnored    = "ignored"    // the same bundle is being installed already, or was handled before
)

// CommandResult tells what the device did with the last update command. The daemon publishes
// it with the update state, retained, on <prefix>/<device>/ota/state, as the "command" field.
type CommandResult struct {
	SHA256 string    `json:"sha256,omitempty"`
	URL    string    `json:"url,omitempty"` // credentials redacted
	Status string    `json:"status"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// stateMessage is what <prefix>/<device>/ota/state carries: the store's state and the last
// command's result.
type stateMessage struct {
	ota.State
	Command *CommandResult `json:"command,omitempty"`
}

// handledName is the file, in ota.dir, of the commands the device has finished with for good
// (installed, or failed in a way that trying again cannot mend). A retained command is
// delivered again at every start: one whose bundle is listed there is ignored.
const handledName = "handled-commands.json"

// handledKeep bounds the list.
const handledKeep = 32

var errSuperseded = errors.New("superseded by a newer update command")

// commands queues update commands for one worker: the newest command wins, a command that
// waits is superseded by a newer one, and a running download is cancelled by a command for
// another bundle.
type commands struct {
	dir string // ota.dir
	log *zap.Logger

	mu      sync.Mutex
	queued  *UpdateCommand
	running string // sha256 of the command being handled
	cancel  context.CancelCauseFunc
	last    *CommandResult
	wake    chan struct{}
	publish func() // publishes the state with the last result
}

func newCommands(dir string, log *zap.Logger, publish func()) *commands {
	return &commands{dir: dir, log: log, wake: make(chan struct{}, 1), publish: publish}
}

// result records and publishes what became of a command.
func (c *commands) result(cmd UpdateCommand, status, reason string) {
	r := &CommandResult{SHA256: cmd.SHA256, URL: ota.RedactURL(cmd.URL), Status: status, Reason: reason, Time: time.Now().UTC()}
	c.mu.Lock()
	c.last = r
	c.mu.Unlock()
	lvl := c.log.Info
	if status == CommandRefused || status == CommandFailed {
		lvl = c.log.Warn
	}
	lvl("update command "+status, zap.String("sha256", cmd.SHA256), zap.String("url", r.URL), zap.String("reason", reason))
	c.publish()
}

// Last returns the last command's result, or nil.
func (c *commands) Last() *CommandResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// offer takes a command from the network. It never blocks for long: it runs on the MQTT
// client's goroutine.
func (c *commands) offer(payload []byte) {
	cmd, err := ParseUpdateCommand(payload)
	if err != nil {
		bad := UpdateCommand{}
		if sha256Hex.MatchString(cmd.SHA256) {
			bad.SHA256 = cmd.SHA256
		}
		c.result(bad, CommandRefused, err.Error())
		return
	}
	c.mu.Lock()
	if c.running == cmd.SHA256 {
		c.mu.Unlock()
		c.result(cmd, CommandIgnored, "this bundle is being installed already")
		return
	}
	old := c.queued
	c.queued = &cmd
	if c.cancel != nil {
		c.cancel(errSuperseded)
	}
	c.mu.Unlock()
	if old != nil && old.SHA256 != cmd.SHA256 {
		c.result(*old, CommandSuperseded, "a newer update command arrived before it started")
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// next waits for a queued command, marks it running and returns it with its context.
func (c *commands) next(ctx context.Context) (UpdateCommand, context.Context, bool) {
	for {
		c.mu.Lock()
		if q := c.queued; q != nil {
			c.queued = nil
			cctx, cancel := context.WithCancelCause(ctx)
			c.running, c.cancel = q.SHA256, cancel
			c.mu.Unlock()
			return *q, cctx, true
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return UpdateCommand{}, nil, false
		case <-c.wake:
		}
	}
}

// done ends the running command.
func (c *commands) done() {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel(nil)
	}
	c.running, c.cancel = "", nil
	c.mu.Unlock()
}

// handledEntry is one line of the handled list.
type handledEntry struct {
	SHA256 string    `json:"sha256"`
	Status string    `json:"status"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// handled returns the entry of a bundle the device has finished with, if any. A list that
// cannot be read counts as empty (the command is then tried again, which is safe: the store
// refuses a re-install of the running version).
func (c *commands) handled(sha string) (handledEntry, bool) {
	for _, e := range c.readHandled() {
		if e.SHA256 == sha {
			return e, true
		}
	}
	return handledEntry{}, false
}

func (c *commands) readHandled() []handledEntry {
	b, err := os.ReadFile(filepath.Join(c.dir, handledName))
	if err != nil {
		return nil
	}
	var list []handledEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		c.log.Warn("ignoring an unreadable list of handled update commands", zap.String("file", handledName), zap.Error(err))
		return nil
	}
	return list
}

// markHandled adds a bundle to the handled list (atomically; the oldest entries go first).
func (c *commands) markHandled(sha, status, reason string) {
	list := append(c.readHandled(), handledEntry{SHA256: sha, Status: status, Reason: reason, Time: time.Now().UTC()})
	if len(list) > handledKeep {
		list = list[len(list)-handledKeep:]
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(c.dir, handledName), append(b, '\n'), 0o644)
	}
	if err != nil {
		c.log.Warn("could not record a handled update command", zap.Error(err))
	}
}

// permanent reports whether an update error will not go away by trying the same command again:
// the bundle is bad, not for this device, refused by policy, or the file at the URL is
// another one. Interruptions, timeouts and HTTP 408/429/5xx are worth another try.
func permanent(err error) bool {
	var se *ota.StatusError
	if errors.As(err, &se) {
		return !se.Temporary()
	}
	for _, target := range []error{
		ota.ErrChecksum, ota.ErrTooLarge, ota.ErrRefused,
		bundle.ErrBadSignature, bundle.ErrUnknownKey, bundle.ErrHashMismatch, bundle.ErrSizeMismatch,
		bundle.ErrPathEscape, bundle.ErrEntryType, bundle.ErrUnexpectedEntry, bundle.ErrDuplicateEntry,
		bundle.ErrMissingFile, bundle.ErrTruncated, bundle.ErrTooLarge, bundle.ErrMalformedArchive,
		bundle.ErrMalformedManifest, bundle.ErrUnsupportedFormat, bundle.ErrWrongDevice,
		bundle.ErrDowngrade, bundle.ErrReinstall, bundle.ErrIncompatible,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/oodguard/oodguard/internal/atomicfile"
)

// PartSuffix is appended to a download's destination while it is incomplete.
const PartSuffix = ".part"

// Download defaults.
const (
	DefaultMaxDownload = 4 << 30     // bytes; bundle.DefaultMaxTotal
	DefaultIdleTimeout = time.Minute // an attempt that receives nothing for this long is abandoned
)

// Downloader fetches bundles over HTTP(S) into a file, resuming where an earlier attempt
// stopped. The zero Downloader uses http.DefaultClient and the defaults above.
type Downloader struct {
	Client      *http.Client  // nil: http.DefaultClient
	MaxSize     int64         // largest file accepted; DefaultMaxDownload when zero
	IdleTimeout time.Duration // abandon an attempt that receives nothing for this long; DefaultIdleTimeout when zero
	// Timeout bounds a whole Download, however slowly the data trickles in; none when zero.
	// A download cut by it wraps ErrInterrupted and ErrTimeout, and resumes at the next call.
	Timeout time.Duration
}

// ErrTimeout: a download ran past Downloader.Timeout.
var ErrTimeout = errors.New("download took longer than its deadline")

// Download fetches url into dst with the zero Downloader; see Downloader.Download.
func Download(ctx context.Context, url, sha256, dst string) error {
	var d Downloader
	return d.Download(ctx, url, sha256, dst)
}

// Download fetches url into dst and checks that the whole file has the sha256 given
// (lowercase hex). The data goes to dst+".part" first; when that file exists, Download asks
// only for the rest with an HTTP Range request, and starts again from zero when the server
// answers with the whole file. Once the file is whole and its sha256 matches, it is synced and
// renamed to dst. A dst that already has the sha256 is kept as it is.
//
// Errors: an interrupted transfer wraps ErrInterrupted and keeps the partial file, so that the
// next call resumes; an HTTP error status is a *StatusError (the partial file is kept); a file
// with another sha256 wraps ErrChecksum and one larger than MaxSize wraps ErrTooLarge, and both
// delete the partial file.
func (d *Downloader) Download(ctx context.Context, rawURL, sum, dst string) error {
	url := RedactURL(rawURL) // for errors: they are logged and published
	if !validSHA256(sum) {
		return fmt.Errorf("download %s: %w: %q", url, ErrBadChecksum, sum)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d.Timeout, fmt.Errorf("%w (%v)", ErrTimeout, d.Timeout))
		defer cancel()
	}
	if ok, _ := fileHasSHA256(dst, sum); ok {
		return nil
	}
	part := dst + PartSuffix
	restarted := false
	for {
		err := d.attempt(ctx, rawURL, sum, part)
		if errors.Is(err, errRestart) && !restarted {
			restarted = true
			continue
		}
		if err != nil {
			return fmt.Errorf("download %s: %w", url, err)
		}
		break
	}
	crash("download-complete")
	if err := os.Rename(part, dst); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	crash("download-renamed")
	return nil
}

// errRestart asks Download to start again from an empty partial file.
var errRestart = errors.New("partial file does not fit; starting again")

// errStalled is the cause of a request cancelled by the idle timer.
var errStalled = errors.New("no data received")

// attempt makes one request and leaves part complete and checked, or returns an error.
func (d *Downloader) attempt(ctx context.Context, url, sum, part string) (err error) {
	maxSize := d.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxDownload
	}
	idle := d.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}

	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	discard := false // remove the partial file on return
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if discard {
			os.Remove(part)
		}
	}()
	have, h, err := hashPrefix(f, maxSize)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(idle, func() { cancel(errStalled) })
	defer timer.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return redactErr(err)
		}
		return interrupted(ctx, have, redactErr(err))
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != have {
			discard = true
			return fmt.Errorf("%w (Content-Range %q, have %d bytes)", errRestart, resp.Header.Get("Content-Range"), have)
		}
		if total > maxSize {
			discard = true
			return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, total, maxSize)
		}
	case resp.StatusCode == http.StatusOK:
		// The whole file: the server ignored the Range header, or none was sent.
		if have > 0 {
			if err := f.Truncate(0); err != nil {
				return err
			}
			have, h = 0, sha256.New()
		}
		if resp.ContentLength > maxSize {
			discard = true
			return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, resp.ContentLength, maxSize)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The partial file is as long as the whole one, or longer: check it as it is.
		if hex.EncodeToString(h.Sum(nil)) == sum {
			return f.Sync()
		}
		discard = true
		return fmt.Errorf("%w (HTTP %s with %d bytes)", errRestart, resp.Status, have)
	default:
		return &StatusError{URL: RedactURL(url), Code: resp.StatusCode, Status: resp.Status}
	}

	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	body := &idleReader{r: resp.Body, timer: timer, idle: idle}
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, maxSize-have+1))
	have += n
	if have > maxSize {
		discard = true
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	if err != nil {
		f.Sync() // keep what arrived for the next attempt
		crash("download-interrupted")
		return interrupted(ctx, have, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		// The sha256 got is not told: it would publish the hash of whatever the URL served
		// (a page of the device itself, say) on the retained state topic.
		discard = true
		return fmt.Errorf("%w: want %s", ErrChecksum, sum)
	}
	return f.Sync()
}

// interrupted wraps a transfer error with ErrInterrupted, naming a stall as such.
func interrupted(ctx context.Context, have int64, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) || errors.Is(cause, ErrTimeout) {
		err = cause
	}
	return fmt.Errorf("%w after %d bytes: %w", ErrInterrupted, have, err)
}

// hashPrefix hashes what the partial file f already holds; a file over the limit is emptied.
func hashPrefix(f *os.File, maxSize int64) (int64, hash.Hash, error) {
	h := sha256.New()
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	if fi.Size() > maxSize {
		return 0, h, f.Truncate(0)
	}
	n, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return 0, nil, err
	}
	return n, h, nil
}

// idleReader pushes the idle deadline back whenever data arrives.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", returned as -1).
func parseContentRange(s string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	span, size, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	first, last, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	end, err := strconv.ParseInt(last, 10, 64)
	if err != nil || end < start {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	total = -1
	if size != "*" {
		if total, err = strconv.ParseInt(size, 10, 64); err != nil || total <= end {
			return 0, 0, fmt.Errorf("bad Content-Range %q", s)
		}
	}
	return start, total, nil
}

// fileHasSHA256 reports whether the file at path exists and has the sha256 sum.
func fileHasSHA256(path, sum string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// validSHA256 reports whether s is a sha256 in lowercase hex.
func validSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

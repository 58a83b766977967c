package ota

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fileServer serves data at /f. With ranges it honours Range requests (http.ServeContent);
// without, it always sends the whole file. The first dropFirst responses break off after
// dropAfter bytes of body.
type fileServer struct {
	*httptest.Server
	data      []byte
	ranges    bool
	dropAfter int
	dropFirst int

	mu       sync.Mutex
	requests []string // the Range header of each request ("" for none)
}

func newFileServer(t *testing.T, data []byte, ranges bool, dropAfter, dropFirst int) *fileServer {
	fs := &fileServer{data: data, ranges: ranges, dropAfter: dropAfter, dropFirst: dropFirst}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (s *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Header.Get("Range"))
	n := len(s.requests)
	s.mu.Unlock()
	if n <= s.dropFirst {
		// Announce the whole (rest of the) file, send part of it, and drop the connection.
		body := s.data
		if s.ranges && r.Header.Get("Range") != "" {
			if start, err := rangeStart(r.Header.Get("Range")); err == nil {
				body = s.data[start:]
				w.Header().Set("Content-Range", "bytes "+strconv.Itoa(start)+"-"+strconv.Itoa(len(s.data)-1)+"/"+strconv.Itoa(len(s.data)))
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.WriteHeader(http.StatusPartialContent)
			}
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Write(body[:s.dropAfter])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	if !s.ranges {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
		w.Write(s.data)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.data))
}

// rangeStart parses the "bytes=START-" Range header that Download sends.
func rangeStart(h string) (int, error) {
	v, ok := strings.CutPrefix(h, "bytes=")
	v, ok2 := strings.CutSuffix(v, "-")
	if !ok || !ok2 {
		return 0, errors.New("bad range")
	}
	return strconv.Atoi(v)
}

func (s *fileServer) rangeHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func randomData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDownloadResumes(t *testing.T) {
	data := randomData(300_000)
	srv := newFileServer(t, data, true, 100_000, 1)
	dst := filepath.Join(t.TempDir(), "b.bundle")
	ctx := context.Background()

	err := Download(ctx, srv.URL+"/f", sumHex(data), dst)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first download: %v, want ErrInterrupted", err)
	}
	if fi, err := os.Stat(dst + PartSuffix); err != nil || fi.Size() != 100_000 {
		t.Fatalf("partial file after the drop: %v, %v", fi, err)
	}
	if err := Download(ctx, srv.URL+"/f", sumHex(data), dst); err != nil {
		t.Fatalf("resumed download: %v", err)
	}
	if got := srv.rangeHeaders(); len(got) != 2 || got[0] != "" || got[1] != "bytes=100000-" {
		t.Errorf("Range headers %q, want none then bytes=100000-", got)
	}
	if !bytes.Equal(mustRead(t, dst), data) {
		t.Error("downloaded file differs")
	}
	if _, err := os.Stat(dst + PartSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial file left: %v", err)
	}
	// A finished download is not fetched again.
	if err := Download(ctx, srv.URL+"/f", sumHex(data), dst); err != nil || len(srv.rangeHeaders()) != 2 {
		t.Errorf("download of a finished file: %v, %d requests", err, len(srv.rangeHeaders()))
	}
}

func TestDownloadResumeDroppedTwice(t *testing.T) {
	data := randomData(200_000)
	srv := newFileServer(t, data, true, 50_000, 2)
	dst := filepath.Join(t.TempDir(), "b.bundle")
	for i := range 2 {
		if err := Download(context.Background(), srv.URL+"/f", sumHex(data), dst); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("download %d: %v, want ErrInterrupted", i, err)
		}
	}
	if err := Download(context.Background(), srv.URL+"/f", sumHex(data), dst); err != nil {
		t.Fatal(err)
	}
	if got := srv.rangeHeaders(); got[1] != "bytes=50000-" || got[2] != "bytes=100000-" {
		t.Errorf("Range headers %q", got)
	}
	if !bytes.Equal(mustRead(t, dst), data) {
		t.Error("downloaded file differs")
	}
}

func TestDownloadServerWithoutRange(t *testing.T) {
	data := randomData(300_000)
	srv := newFileServer(t, data, false, 100_000, 1)
	dst := filepath.Join(t.TempDir(), "b.bundle")
	if err := Download(context.Background(), srv.URL+"/f", sumHex(data), dst); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first download: %v", err)
	}
	if err := Download(context.Background(), srv.URL+"/f", sumHex(data), dst); err != nil {
		t.Fatalf("second download: %v", err)
	}
	if got := srv.rangeHeaders(); len(got) != 2 || got[1] != "bytes=100000-" {
		t.Errorf("Range headers %q", got)
	}
	if !bytes.Equal(mustRead(t, dst), data) {
		t.Error("downloaded file differs: the server's whole file must replace the partial one")
	}
}

func TestDownloadPartAlreadyWhole(t *testing.T) {
	data := randomData(10_000)
	srv := newFileServer(t, data, true, 0, 0)
	dst := filepath.Join(t.TempDir(), "b.bundle")
	if err := os.WriteFile(dst+PartSuffix, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Download(context.Background(), srv.URL+"/f", sumHex(data), dst); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, dst), data) {
		t.Error("downloaded file differs")
	}
	// A partial file that is longer than the file and wrong starts over.
	os.Remove(dst)
	if err := os.WriteFile(dst+PartSuffix, append(randomData(20_000), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Download(context.Background(), srv.URL+"/f", sumHex(data), dst); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, dst), data) {
		t.Error("downloaded file differs")
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	data := randomData(50_000)
	srv := newFileServer(t, data, true, 20_000, 1)
	dst := filepath.Join(t.TempDir(), "b.bundle")
	wrong := sumHex([]byte("something else"))
	if err := Download(context.Background(), srv.URL+"/f", wrong, dst); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first download: %v", err)
	}
	err := Download(context.Background(), srv.URL+"/f", wrong, dst)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("download: %v, want ErrChecksum", err)
	}
	for _, p := range []string{dst, dst + PartSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left after a mismatch: %v", p, err)
		}
	}
	if err := Download(context.Background(), srv.URL+"/f", "ABC", dst); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("download with a bad sha256: %v", err)
	}
}

func TestDownloadHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Path[1:])
		http.Error(w, "nope", code)
	}))
	defer srv.Close()
	dst := filepath.Join(t.TempDir(), "b.bundle")
	for code, temporary := range map[int]bool{404: false, 403: false, 503: true, 429: true} {
		err := Download(context.Background(), srv.URL+"/"+strconv.Itoa(code), sumHex(nil), dst)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != code || se.Temporary() != temporary {
			t.Errorf("HTTP %d: %v", code, err)
		}
	}
	if err := Download(context.Background(), "http://127.0.0.1:1/f", sumHex(nil), dst); !errors.Is(err, ErrInterrupted) {
		t.Errorf("refused connection: %v, want ErrInterrupted", err)
	}
}

func TestDownloadTooLarge(t *testing.T) {
	data := randomData(10_000)
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(data); i += 1000 { // no Content-Length
			w.Write(data[i : i+1000])
			w.(http.Flusher).Flush()
		}
	}))
	defer chunked.Close()
	withLength := newFileServer(t, data, true, 0, 0)
	for name, url := range map[string]string{"chunked": chunked.URL, "content-length": withLength.URL + "/f"} {
		dst := filepath.Join(t.TempDir(), "b.bundle")
		d := Downloader{MaxSize: 5000}
		if err := d.Download(context.Background(), url, sumHex(data), dst); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", name, err)
		}
		if _, err := os.Stat(dst + PartSuffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: partial file left: %v", name, err)
		}
	}
	// A resumed download whose Content-Range announces too much.
	dst := filepath.Join(t.TempDir(), "b.bundle")
	os.WriteFile(dst+PartSuffix, data[:1000], 0o644)
	d := Downloader{MaxSize: 5000}
	if err := d.Download(context.Background(), withLength.URL+"/f", sumHex(data), dst); !errors.Is(err, ErrTooLarge) {
		t.Errorf("resumed: %v, want ErrTooLarge", err)
	}
}

func TestDownloadStalled(t *testing.T) {
	data := randomData(10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:3000])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	dst := filepath.Join(t.TempDir(), "b.bundle")
	d := Downloader{IdleTimeout: 100 * time.Millisecond}
	err := d.Download(context.Background(), srv.URL, sumHex(data), dst)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, errStalled) {
		t.Fatalf("download: %v, want a stall", err)
	}
	if fi, err := os.Stat(dst + PartSuffix); err != nil || fi.Size() != 3000 {
		t.Errorf("partial file: %v, %v", fi, err)
	}
}

func TestDownloadCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := Download(ctx, srv.URL, sumHex(nil), filepath.Join(t.TempDir(), "b"))
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("download: %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for in, want := range map[string][2]int64{
		"bytes 0-9/10": {0, 10}, "bytes 100-199/*": {100, -1}, "bytes 5-5/6": {5, 6},
	} {
		start, total, err := parseContentRange(in)
		if err != nil || start != want[0] || total != want[1] {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", in, start, total, err)
		}
	}
	for _, in := range []string{"", "bytes */10", "bytes 9-0/10", "bytes 0-9/9", "items 0-9/10", "bytes 0-9"} {
		if _, _, err := parseContentRange(in); err == nil {
			t.Errorf("parseContentRange(%q) accepted", in)
		}
	}
}

func TestUpdate(t *testing.T) {
	data, err := os.ReadFile(bundlePath("1.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := newFileServer(t, data, true, len(data)/3, 1)
	dir := t.TempDir()
	var rec recorder
	s := openStore(t, dir, func(c *Config) { c.OnState = rec.record })
	installCommitted(t, s, "1.0.0")
	rec.reset()
	ctx := context.Background()
	if _, err := s.Update(ctx, srv.URL+"/f", sumHex(data), InstallOptions{}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first update: %v, want ErrInterrupted", err)
	}
	if st := s.State(); st.Phase != PhaseIdle || st.Current != "1.0.0-1" || st.Reason == "" {
		t.Errorf("after an interrupted update: %+v", st)
	}
	slot, err := s.Update(ctx, srv.URL+"/f", sumHex(data), InstallOptions{})
	if err != nil || slot.Name != "1.1.0-1" {
		t.Fatalf("second update: %s, %v", slot.Name, err)
	}
	want := []Phase{PhaseDownloading, PhaseIdle, PhaseDownloading, PhaseVerifying, PhaseInstalled, PhaseTrial}
	if got := rec.phases(); !slices.Equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
	if got := srv.rangeHeaders(); len(got) != 2 || got[1] != "bytes="+strconv.Itoa(len(data)/3)+"-" {
		t.Errorf("Range headers %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, DownloadsDir)); len(entries) != 0 {
		t.Errorf("downloads left: %v", entries)
	}
	mustRecover(t, s)
	checkDisk(t, dir, "1.1.0")

	// A bundle that downloads fine but fails verification is removed too.
	mustCommit(t, s)
	bad := bytes.Clone(data) // 1.1.0 again: a reinstall, refused
	srv2 := newFileServer(t, bad, true, 0, 0)
	if _, err := s.Update(ctx, srv2.URL+"/f", sumHex(bad), InstallOptions{}); err == nil {
		t.Fatal("reinstall accepted")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, DownloadsDir)); len(entries) != 0 {
		t.Errorf("downloads left: %v", entries)
	}
	checkDisk(t, dir, "1.1.0")
}

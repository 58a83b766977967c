package ota

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const someSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// The device's own endpoints and its link-local neighbours are out of reach of an update URL
// unless allowed, whether named directly or reached by a redirect.
func TestURLPolicyRefusesLocalTargets(t *testing.T) {
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("oodguard_frames_total 42\n"))
	}))
	defer secret.Close()
	redirect := httptest.NewServer(http.RedirectHandler(secret.URL+"/metrics", http.StatusFound))
	defer redirect.Close()

	for _, tc := range []struct {
		name, url string
	}{
		{"direct", secret.URL + "/metrics"},
		{"localhost name", strings.Replace(secret.URL, "127.0.0.1", "localhost", 1) + "/metrics"},
		{"redirect", redirect.URL + "/b.tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Downloader{Client: URLPolicy{}.Client()}
			err := d.Download(context.Background(), tc.url, someSHA, filepath.Join(t.TempDir(), "b"))
			if !errors.Is(err, ErrRefused) || errors.Is(err, ErrInterrupted) {
				t.Fatalf("download: %v, want ErrRefused (not a retryable interruption)", err)
			}
		})
	}
	// Allowed, the same redirect is followed (and the file is then the wrong one).
	d := Downloader{Client: URLPolicy{AllowLocal: true}.Client()}
	err := d.Download(context.Background(), redirect.URL+"/b.tar", someSHA, filepath.Join(t.TempDir(), "b"))
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("with AllowLocal: %v, want ErrChecksum", err)
	}
	if strings.Contains(err.Error(), "got") {
		t.Errorf("the error tells the sha256 of what was served: %v", err)
	}
}

func TestURLPolicyRedirectKeepsScheme(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/b.tar", http.StatusFound))
	defer tlsSrv.Close()
	c := URLPolicy{AllowLocal: true}.Client()
	c.Transport.(*http.Transport).TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	d := Downloader{Client: c}
	err := d.Download(context.Background(), tlsSrv.URL+"/b.tar", someSHA, filepath.Join(t.TempDir(), "b"))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "scheme") {
		t.Fatalf("https -> http redirect: %v, want ErrRefused for the scheme", err)
	}
}

func TestURLPolicyCheckURL(t *testing.T) {
	p := URLPolicy{Prefixes: []string{"https://updates.example.com/bundles/"}}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://updates.example.com/bundles/cam-1.2.0.tar", true},
		{"https://updates.example.com/other/cam.tar", false},
		{"https://updates.example.com.evil.net/bundles/x", false},
		{"http://updates.example.com/bundles/cam.tar", false},
		{"file:///etc/passwd", false},
		{"ftp://updates.example.com/bundles/x", false},
		{"https:///bundles/x", false},
	} {
		err := p.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
	if err := (URLPolicy{}).CheckURL("file:///etc/passwd"); !errors.Is(err, ErrRefused) {
		t.Errorf("no prefixes, file URL: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pass@host/b.tar":                   "https://user:REDACTED@host/b.tar",
		"https://token@host/b.tar":                       "https://REDACTED@host/b.tar",
		"https://host/b.tar?X-Amz-Signature=abc&v=1":     "https://host/b.tar?X-Amz-Signature=REDACTED&v=REDACTED",
		"https://host/b.tar":                             "https://host/b.tar",
		"https://host/b.tar#frag":                        "https://host/b.tar",
		"http://u:p@127.0.0.1:8080/x?sig=s3cr3t#section": "http://u:REDACTED@127.0.0.1:8080/x?sig=REDACTED",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Credentials in a URL never appear in a download's error, whatever fails.
func TestDownloadErrorsHideCredentials(t *testing.T) {
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, base := range []string{notFound.URL, closedURL} {
		u := strings.Replace(base, "http://", "http://alice:hunter2@", 1) + "/b.tar?token=s3cr3t"
		d := Downloader{Client: URLPolicy{AllowLocal: true}.Client()}
		err := d.Download(context.Background(), u, someSHA, filepath.Join(t.TempDir(), "b"))
		if err == nil {
			t.Fatal("download succeeded")
		}
		if s := err.Error(); strings.Contains(s, "hunter2") || strings.Contains(s, "s3cr3t") {
			t.Errorf("error shows a credential: %s", s)
		}
	}
}

// A server that trickles a byte at a time, never idle for long, is cut off by the overall
// deadline; what arrived is kept to resume from.
func TestDownloadDeadline(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		for range 1000 {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	defer close(stop)
	d := Downloader{Client: URLPolicy{AllowLocal: true}.Client(), IdleTimeout: 200 * time.Millisecond, Timeout: 300 * time.Millisecond}
	start := time.Now()
	err := d.Download(context.Background(), srv.URL+"/b.tar", someSHA, filepath.Join(t.TempDir(), "b"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("download: %v, want ErrTimeout and ErrInterrupted", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v with a 300ms deadline", took)
	}
}

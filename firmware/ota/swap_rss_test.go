package ota_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"testing"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// BenchmarkModelSwapRSS measures what an in-process model swap costs in resident memory: each
// iteration opens a new session of testdata/models/resnet32.onnx the way the daemon serves a
// model (a Runner for one frame, one run), then closes the previous session, so that two
// sessions overlap as they would during a swap under a lock. It reports VmRSS with one session
// open after the first session (rss-1-session-KiB) and after 5 warm-up swaps (rss-warm-KiB),
// and its growth over the b.N swaps that follow (rss-growth-KiB, KiB/swap), always with one
// session open and Go's free heap returned to the OS before each reading, so that what grows
// is ONNX Runtime's (and its allocator's). Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench ModelSwapRSS -benchtime 200x ./firmware/ota
//
// $OODGUARD_SWAP_MODEL names another model to measure (a device's real one). The numbers and
// the decision they led to are in doc.go.
func BenchmarkModelSwapRSS(b *testing.B) {
	runtimetest.Setup(b)
	path := runtimetest.Model(b, "resnet32.onnx")
	if p := os.Getenv("OODGUARD_SWAP_MODEL"); p != "" {
		path = p
	}
	opts := ort.Options{IntraOpThreads: 2, InterOpThreads: 1}
	open := func() *ort.Classifier {
		c, err := ort.Open(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		r, err := c.NewRunner(1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Run(); err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		return c
	}
	cur := open()
	one := rssKiB(b)
	for range 5 { // warm-up: allocator arenas, thread pools, first-use caches
		next := open()
		cur.Close()
		cur = next
	}
	start := rssKiB(b)
	b.ResetTimer()
	for b.Loop() {
		next := open()
		cur.Close()
		cur = next
	}
	b.StopTimer()
	end := rssKiB(b) // with one session open, as at start
	cur.Close()
	growth := float64(end - start)
	b.ReportMetric(float64(one), "rss-1-session-KiB")
	b.ReportMetric(float64(start), "rss-warm-KiB")
	b.ReportMetric(growth, "rss-growth-KiB")
	b.ReportMetric(growth/float64(b.N), "KiB/swap")
}

// rssKiB returns this process's resident set size in KiB from /proc/self/status, after
// returning the Go heap's free memory to the OS.
func rssKiB(tb testing.TB) int64 {
	tb.Helper()
	goruntime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	kib, err := parseVmRSS(data)
	if err != nil {
		tb.Fatal(err)
	}
	return kib
}

// parseVmRSS reads the VmRSS line ("VmRSS:	  123456 kB") of /proc/PID/status.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmRSS:" && string(f[2]) == "kB" {
			return strconv.ParseInt(string(f[1]), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/self/status")
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tota.test\nVmPeak:\t  999 kB\nVmRSS:\t   41648 kB\nRssAnon:\t 1 kB\n"
	if got, err := parseVmRSS([]byte(status)); err != nil || got != 41648 {
		t.Errorf("parseVmRSS = %d, %v; want 41648", got, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseVmRSS without VmRSS accepted")
	}
}

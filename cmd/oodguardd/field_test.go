package main

// Tests of the daemon in the field's bad conditions: a camera or folder missing at start, a
// broker that is unreachable. Each runs the real binary against a real mosquitto.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/guard/daemon"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// rewriteConfig replaces old with new in the config file at path (each must be there once).
func rewriteConfig(t *testing.T, path string, pairs ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("config has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// getHealth reads /healthz.
func getHealth(t *testing.T, addr string) (int, daemon.Health) {
	t.Helper()
	var h daemon.Health
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	return resp.StatusCode, h
}

// metric returns the value of one oodguard metric from /metrics, or "" when absent.
func metric(t *testing.T, addr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitUntil polls cond every 50 ms until it holds or within passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sourceStatus(t *testing.T, m mqtttest.Message) daemon.SourceStatus {
	t.Helper()
	var s daemon.SourceStatus
	if err := json.Unmarshal(m.Payload, &s); err != nil {
		t.Fatalf("source status %q: %v", m.Payload, err)
	}
	return s
}

// A folder source that does not exist at start: the daemon keeps running, reports the source
// offline (MQTT, /healthz, metrics), and scores the frames once the folder appears, within
// one backoff period.
func TestSourceMissingAtStart(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/source", "oodguard/cam1/events")
	root := runtimetest.RepoRoot(t)
	frames := filepath.Join(t.TempDir(), "frames") // not there yet
	httpAddr := freeAddr(t)
	const retryMax = 500 * time.Millisecond
	cfg, _ := daemonConfig(t, mq.URL(), false, fmt.Sprintf("http:\n  listen: %s\n", httpAddr))
	rewriteConfig(t, cfg, filepath.Join(root, "testdata/frames"), frames,
		"source:\n", fmt.Sprintf("source:\n  retry_min: 100ms\n  retry_max: %v\n", retryMax))
	cmd, log := startDaemon(t, cfg)

	m := sub.Next(30 * time.Second)
	if m.Topic != "oodguard/cam1/source" {
		t.Fatalf("first message on %s: %q", m.Topic, m.Payload)
	}
	if s := sourceStatus(t, m); s.State != daemon.SourceOffline || s.Source != frames || !strings.Contains(s.Error, "no such file") {
		t.Fatalf("source status %+v, want offline for %s with the cause", s, frames)
	}
	code, h := getHealth(t, httpAddr)
	if code != http.StatusServiceUnavailable || h.OK || h.Source.State != daemon.SourceOffline || !h.InferenceOK {
		t.Errorf("healthz %d %+v, want 503 with the source offline", code, h)
	}
	if v := metric(t, httpAddr, "oodguard_source_online"); v != "0" {
		t.Errorf("oodguard_source_online %q, want 0", v)
	}
	waitUntil(t, 5*time.Second, "two failed opens", func() bool {
		v := metric(t, httpAddr, "oodguard_source_open_failures_total")
		return v != "" && v != "0" && v != "1"
	})
	if cmd.ProcessState != nil {
		t.Fatalf("daemon exited: %s", log)
	}

	// The folder appears whole (renamed into place): scoring starts within one backoff period.
	staging := frames + ".tmp"
	if err := os.CopyFS(staging, os.DirFS(filepath.Join(root, "testdata/frames"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staging, frames); err != nil {
		t.Fatal(err)
	}
	appeared := time.Now()
	var online time.Duration
	for online == 0 {
		m := sub.Next(30 * time.Second)
		if m.Topic == "oodguard/cam1/source" {
			s := sourceStatus(t, m)
			if s.State == daemon.SourceOnline {
				online = time.Since(appeared)
			}
		}
	}
	t.Logf("source online %v after the folder appeared (retry_max %v)", online, retryMax)
	// One backoff period (retry_max) plus slack for a busy 2-core machine and the broker hop.
	if online > retryMax+time.Second {
		t.Errorf("source online %v after the folder appeared, want within %v (+1s slack)", online, retryMax)
	}
	if evs := events(t, sub, 1, 30*time.Second); len(evs) != 1 {
		t.Fatalf("no alert after the folder appeared")
	}
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, log)
	}
}

// A camera device that is not there: the daemon keeps running and says which device is
// missing, instead of crashing.
func TestCameraMissingAtStart(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/source")
	root := runtimetest.RepoRoot(t)
	cfg, _ := daemonConfig(t, mq.URL(), false, "")
	dev := filepath.Join(t.TempDir(), "video9")
	rewriteConfig(t, cfg, "  type: folder\n  path: "+filepath.Join(root, "testdata/frames")+"\n",
		"  type: camera\n  retry_min: 100ms\n  retry_max: 200ms\n  camera:\n    device: "+dev+"\n")
	cmd, log := startDaemon(t, cfg)
	s := sourceStatus(t, sub.Next(30*time.Second))
	if s.State != daemon.SourceOffline || s.Source != dev || !strings.Contains(s.Error, dev) {
		t.Fatalf("source status %+v, want offline naming %s", s, dev)
	}
	// Retained: a subscriber that comes later is told at once.
	late := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{ClientID: "late-subscriber"}, "oodguard/cam1/source")
	if m := late.Next(10 * time.Second); !m.Retained || sourceStatus(t, m).State != daemon.SourceOffline {
		t.Errorf("late subscriber got %q (retained %v), want the retained offline state", m.Payload, m.Retained)
	}
	time.Sleep(time.Second) // several retries
	if cmd.ProcessState != nil || strings.Contains(log.String(), "panic") {
		t.Fatalf("daemon exited or panicked:\n%s", log)
	}
	cmd.Process.Signal(os.Interrupt)
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT; log:\n%s", code, log)
	}
}

// A broker that cannot be reached is visible: a WARN in the log, /healthz 503 with mqtt
// "disconnected", and oodguard_mqtt_connected 0.
func TestBrokerUnreachableIsVisible(t *testing.T) {
	httpAddr := freeAddr(t)
	cfg, _ := daemonConfig(t, "tcp://"+freeAddr(t), true, fmt.Sprintf("http:\n  listen: %s\n", httpAddr))
	cmd, log := startDaemon(t, cfg)
	waitUntil(t, 20*time.Second, "a WARN about the unreachable broker", func() bool {
		return strings.Contains(log.String(), `"level":"warn"`) && strings.Contains(log.String(), "broker unreachable")
	})
	code, h := getHealth(t, httpAddr)
	if code != http.StatusServiceUnavailable || h.OK || h.MQTT != "disconnected" {
		t.Errorf("healthz %d %+v, want 503 with mqtt disconnected", code, h)
	}
	if v := metric(t, httpAddr, "oodguard_mqtt_connected"); v != "0" {
		t.Errorf("oodguard_mqtt_connected %q, want 0", v)
	}
	cmd.Process.Signal(os.Interrupt)
	waitExit(t, cmd, 30*time.Second)
}

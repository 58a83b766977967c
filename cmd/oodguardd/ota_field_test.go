package main

// The update channel under abuse: anyone with publish rights on ota/update can send commands,
// so the device's policy must win and nothing secret may leak onto the retained state topic.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/firmware/ota"
	"github.com/oodguard/oodguard/guard/daemon"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// otaMessage is what ota/state carries.
type otaMessage struct {
	ota.State
	Command *daemon.CommandResult `json:"command"`
}

// waitCommand reads ota/state until the command for sha has the status; it returns that
// message's raw payload too.
func waitCommand(t *testing.T, sub *mqtttest.Subscriber, sha, status string) (otaMessage, string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := sub.Next(time.Until(deadline))
		var s otaMessage
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatalf("state %q: %v", m.Payload, err)
		}
		if s.Command != nil && s.Command.SHA256 == sha && s.Command.Status == status {
			return s, string(m.Payload)
		}
	}
}

// operator publishes update commands.
type operator struct {
	t *testing.T
	c paho.Client
}

func newOperator(t *testing.T, broker string) *operator {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("operator-" + t.Name()))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("operator connect: %v", tok.Error())
	}
	t.Cleanup(func() {
		// Clear a retained command so that it does not outlive the test.
		c.Publish("oodguard/cam1/ota/update", 1, true, []byte{}).WaitTimeout(5 * time.Second)
		c.Disconnect(100)
	})
	return &operator{t, c}
}

func (o *operator) send(cmd map[string]any, retained bool) {
	o.t.Helper()
	b, _ := json.Marshal(cmd)
	if tok := o.c.Publish("oodguard/cam1/ota/update", 1, retained, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		o.t.Fatalf("publish command: %v", tok.Error())
	}
}

// waitSubscribed waits until the daemon has subscribed to its update topic: it publishes
// "online" only after subscribing (guard/mqtt onConnect), so a command sent earlier could be lost.
func waitSubscribed(t *testing.T, broker string) {
	t.Helper()
	// Its own client id: a second client with the test's default id would push the first off.
	sub := mqtttest.Subscribe(t, broker, mqtttest.SubscribeOptions{ClientID: fmt.Sprintf("avail-%d", time.Now().UnixNano())}, "oodguard/cam1/available")
	defer sub.Close()
	deadline := time.Now().Add(30 * time.Second)
	for string(sub.Next(time.Until(deadline)).Payload) != "online" {
	}
}

// otaKeys makes a folder with a signing key pair (release.pub is the keyring) and returns the
// key and the energy cnn28 gives the first reference input, which a passing canary expects.
func otaKeys(t *testing.T) (dir string, key ed25519.PrivateKey, energy float64) {
	t.Helper()
	runtimetest.Setup(t)
	dir = t.TempDir()
	_, key, _ = ed25519.GenerateKey(rand.Reader)
	if _, _, err := bundle.WriteKeyPair(dir, "release", key); err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Energy []float64 `json:"energy_t1"`
	}
	b, _ := os.ReadFile(filepath.Join(runtimetest.RepoRoot(t), "testdata/models/cnn28.ref.json"))
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return dir, key, ref.Energy[0]
}

// otaSetup makes a key, a keyring and bundles of the given versions, and serves them.
func otaSetup(t *testing.T, versions ...string) (dir string, bundles map[string]string, srv *httptest.Server) {
	t.Helper()
	dir, key, energy := otaKeys(t)
	bundles = map[string]string{}
	for _, v := range versions {
		bundles[v] = buildBundle(t, dir, key, v, energy)
	}
	srv = httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return dir, bundles, srv
}

func otaConfig(dir, extra string) string {
	return fmt.Sprintf("ota:\n  dir: %s\n  keyring: %s\n  device_class: test-cam\n  commit_after: 5\n%s",
		filepath.Join(dir, "state"), filepath.Join(dir, "release.pub"), extra)
}

// A retained command is handled once, not at every start; and a command's allow_downgrade
// cannot override the device's ota.allow_downgrade: false.
func TestOTARetainedCommandAndDowngradePolicy(t *testing.T) {
	dir, bundles, srv := otaSetup(t, "1.1.0", "1.0.0")
	mq := mqtttest.StartMosquitto(t)
	states := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/ota/state")
	cfg, _ := daemonConfig(t, mq.URL(), true, otaConfig(dir, "  allow_local_urls: true\n  allow_downgrade: false\n"))
	op := newOperator(t, mq.URL())

	d, log := startDaemon(t, cfg)
	waitFor(t, log, "model loaded")
	waitSubscribed(t, mq.URL())
	newer := sha256File(t, bundles["1.1.0"])
	op.send(map[string]any{"url": srv.URL + "/" + filepath.Base(bundles["1.1.0"]), "sha256": newer}, true)
	if code := waitExit(t, d, 60*time.Second); code != ota.ExitRestart {
		t.Fatalf("exit %d after the update, want %d", code, ota.ExitRestart)
	}
	waitCommand(t, states, newer, daemon.CommandInstalled)

	// Restarted on 1.1.0, the daemon receives the retained command again and ignores it.
	d, log = startDaemon(t, cfg)
	waitCommand(t, states, newer, daemon.CommandIgnored)
	waitPhase(t, states, ota.PhaseCommitted)

	// A command for the older bundle that asks for a downgrade is refused by the device's policy.
	older := sha256File(t, bundles["1.0.0"])
	op.send(map[string]any{"url": srv.URL + "/" + filepath.Base(bundles["1.0.0"]), "sha256": older, "allow_downgrade": true}, false)
	s, _ := waitCommand(t, states, older, daemon.CommandRefused)
	if !strings.Contains(s.Command.Reason, "allow_downgrade: false") || s.Version.String() != "1.1.0" {
		t.Errorf("refused downgrade: %+v, command %+v", s.State, s.Command)
	}
	time.Sleep(500 * time.Millisecond)
	if d.ProcessState != nil {
		t.Fatalf("daemon exited after a refused downgrade:\n%s", log)
	}
	d.Process.Signal(os.Interrupt)
	if code := waitExit(t, d, 30*time.Second); code != 0 {
		t.Fatalf("exit %d on SIGINT", code)
	}
}

// Downloads are bounded in size and time, a newer command supersedes a running download,
// and credentials in a URL appear nowhere.
func TestOTADownloadAbuse(t *testing.T) {
	dir, bundles, srv := otaSetup(t, "1.1.0")
	stop := make(chan struct{})
	defer close(stop)
	var fileSize int
	if fi, err := os.Stat(bundles["1.1.0"]); err == nil {
		fileSize = int(fi.Size())
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3000")
		for range 3000 { // one byte every 50 ms: never idle, never done
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer slow.Close()

	mq := mqtttest.StartMosquitto(t)
	states := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/ota/state")
	cfg, _ := daemonConfig(t, mq.URL(), true, otaConfig(dir, fmt.Sprintf("  allow_local_urls: true\n  download_timeout: 2s\n  max_bundle_bytes: %d\n", fileSize/2)))
	op := newOperator(t, mq.URL())
	d, log := startDaemon(t, cfg)
	waitFor(t, log, "model loaded")
	waitSubscribed(t, mq.URL())

	// A stalled download is superseded by a newer command, which fails on the size cap.
	stalled := strings.Repeat("a", 64)
	op.send(map[string]any{"url": slow.URL + "/b.tar", "sha256": stalled}, false)
	waitCommand(t, states, stalled, daemon.CommandRunning)
	real := sha256File(t, bundles["1.1.0"])
	op.send(map[string]any{"url": srv.URL + "/" + filepath.Base(bundles["1.1.0"]), "sha256": real}, false)
	waitCommand(t, states, stalled, daemon.CommandSuperseded)
	if s, _ := waitCommand(t, states, real, daemon.CommandFailed); !strings.Contains(s.Command.Reason, "too large") {
		t.Errorf("oversized bundle: %+v", s.Command)
	}

	// Alone, the stalled download ends at the deadline; the worker is free again after it.
	start := time.Now()
	op.send(map[string]any{"url": slow.URL + "/b.tar", "sha256": stalled}, false)
	if s, _ := waitCommand(t, states, stalled, daemon.CommandFailed); !strings.Contains(s.Command.Reason, "deadline") {
		t.Errorf("stalled download: %+v", s.Command)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the 2s deadline took %v", took)
	}

	// Credentials in the URL: nowhere in what is published or logged.
	secretURL := strings.Replace(srv.URL, "http://", "http://alice:hunter2@", 1) + "/missing.tar?X-Amz-Signature=s3cr3t"
	other := strings.Repeat("b", 64)
	op.send(map[string]any{"url": secretURL, "sha256": other}, false)
	_, raw := waitCommand(t, states, other, daemon.CommandFailed)
	for _, secret := range []string{"hunter2", "s3cr3t"} {
		if strings.Contains(raw, secret) || strings.Contains(log.String(), secret) {
			t.Errorf("%q published or logged:\n%s", secret, raw)
		}
	}
	if d.ProcessState != nil {
		t.Fatalf("daemon exited:\n%s", log)
	}
	d.Process.Signal(os.Interrupt)
	waitExit(t, d, 30*time.Second)
}

// Without allow_local_urls, a command cannot make the device fetch from itself, and what
// it refused is said on ota/state without any hash of the page.
func TestOTARefusesLocalURL(t *testing.T) {
	dir, _, _ := otaSetup(t)
	mq := mqtttest.StartMosquitto(t)
	states := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/ota/state")
	httpAddr := freeAddr(t)
	cfg, _ := daemonConfig(t, mq.URL(), true, otaConfig(dir, "")+fmt.Sprintf("http:\n  listen: %s\n", httpAddr))
	op := newOperator(t, mq.URL())
	d, log := startDaemon(t, cfg)
	waitFor(t, log, "model loaded")
	waitSubscribed(t, mq.URL())
	sha := strings.Repeat("c", 64)
	op.send(map[string]any{"url": "http://" + httpAddr + "/metrics", "sha256": sha}, false)
	s, raw := waitCommand(t, states, sha, daemon.CommandRefused)
	if !strings.Contains(s.Command.Reason, "refused") || strings.Contains(raw, "got ") {
		t.Errorf("local URL: %s", raw)
	}
	// A malformed command is refused, and said so.
	if tok := op.c.Publish("oodguard/cam1/ota/update", 1, false, []byte(`{"url": 5}`)); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("publish")
	}
	waitCommand(t, states, "", daemon.CommandRefused)
	d.Process.Signal(os.Interrupt)
	waitExit(t, d, 30*time.Second)
}

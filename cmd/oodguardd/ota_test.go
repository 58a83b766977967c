package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/firmware/ota"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// buildBundle signs a bundle of cnn28 with one canary (the first reference input) whose
// expected score is want.
func buildBundle(t *testing.T, dir string, key ed25519.PrivateKey, version string, want float64) string {
	t.Helper()
	root := runtimetest.RepoRoot(t)
	calPath := filepath.Join(root, "testdata/models/cnn28.calibration.json")
	cal, err := calibrate.LoadCalibration(calPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "testdata/models/cnn28.input.f32"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cnn28-"+version+".tar")
	_, err = bundle.Build(out, bundle.BuildInput{
		Model: filepath.Join(root, "testdata/models/cnn28.onnx"), Calibration: calPath,
		Manifest: bundle.Manifest{
			Version: bundle.MustParseVersion(version), DeviceClass: "test-cam",
			Preprocess: cal.Preprocess, Score: cal.Score, Threshold: cal.Threshold,
			Canaries: []bundle.Canary{{Name: "first", Input: raw[:28*28*4], Expected: want, Tolerance: 1e-3}},
		},
		Key: key,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sha256File(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// phases reads OTA states from the subscriber until one has the wanted phase.
func waitPhase(t *testing.T, sub *mqtttest.Subscriber, want ota.Phase) ota.State {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := sub.Next(time.Until(deadline))
		var s ota.State
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatalf("state %q: %v", m.Payload, err)
		}
		if s.Phase == want {
			return s
		}
	}
}

func TestOTAUpdateTrialCommitAndRollback(t *testing.T) {
	dir, key, energy := otaKeys(t)
	good := buildBundle(t, dir, key, "1.1.0", energy)
	bad := buildBundle(t, dir, key, "1.2.0", energy+1) // its canary cannot pass
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()

	mq := mqtttest.StartMosquitto(t)
	states := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/ota/state")
	cfg, _ := daemonConfig(t, mq.URL(), true, fmt.Sprintf("ota:\n  dir: %s\n  keyring: %s\n  device_class: test-cam\n  commit_after: 5\n  allow_local_urls: true\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "release.pub")))
	command := func(bundlePath string) {
		t.Helper()
		c := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("operator"))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("operator connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		cmd, _ := json.Marshal(map[string]string{"url": srv.URL + "/" + filepath.Base(bundlePath), "sha256": sha256File(t, bundlePath)})
		c.Publish("oodguard/cam1/ota/update", 1, false, cmd).WaitTimeout(5 * time.Second)
	}

	// The factory model runs; an update arrives; the daemon installs it and exits for a restart.
	d, log := startDaemon(t, cfg)
	waitFor(t, log, "model loaded")
	waitSubscribed(t, mq.URL())
	command(good)
	if code := waitExit(t, d, 60*time.Second); code != ota.ExitRestart {
		t.Fatalf("exit %d after the update, want %d", code, ota.ExitRestart)
	}
	if s := waitPhase(t, states, ota.PhaseInstalled); !strings.HasPrefix(s.Pending, "1.1.0-") {
		t.Fatalf("installed %+v", s)
	}

	// Restarted, it runs 1.1.0 on trial and commits it after 5 healthy frames.
	d, log = startDaemon(t, cfg)
	waitPhase(t, states, ota.PhaseTrial)
	if s := waitPhase(t, states, ota.PhaseCommitted); s.Version.String() != "1.1.0" {
		t.Fatalf("committed %+v", s)
	}
	if !strings.Contains(log.String(), "1.1.0-") {
		t.Errorf("daemon does not run slot 1.1.0:\n%s", log)
	}

	// A bundle whose canary fails is installed, tried at the next start, and rolled back; the
	// daemon goes on with 1.1.0.
	waitSubscribed(t, mq.URL())
	command(bad)
	if code := waitExit(t, d, 60*time.Second); code != ota.ExitRestart {
		t.Fatalf("exit %d after the second update", code)
	}
	d, log = startDaemon(t, cfg)
	s := waitPhase(t, states, ota.PhaseRolledBack)
	if !strings.Contains(s.Reason, "canary") || s.Version.String() != "1.1.0" {
		t.Fatalf("rolled back %+v", s)
	}
	waitFor(t, log, "running the model of slot")
	d.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, d, 30*time.Second); code != 0 {
		t.Fatalf("exit %d on SIGTERM", code)
	}
}

func waitFor(t *testing.T, log *strings.Builder, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", text, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

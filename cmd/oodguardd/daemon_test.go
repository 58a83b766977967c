package main

// Integration tests of the oodguardd binary against a real mosquitto (Debian's package, started
// by the test on a free loopback port) and the real ONNX Runtime, on the sample frames in
// testdata/frames with the committed cnn28 model and calibration.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/guard/outbox"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

var daemonBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oodguardd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBin = filepath.Join(dir, "oodguardd")
	out, err := exec.Command("go", "build", "-o", daemonBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building oodguardd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemonConfig writes a config for the sample frames and returns its path and outbox folder.
func daemonConfig(t *testing.T, broker string, loop bool, extra string) (string, string) {
	t.Helper()
	root := runtimetest.RepoRoot(t)
	dir := t.TempDir()
	box := filepath.Join(dir, "outbox")
	cfg := fmt.Sprintf(`device_id: cam1
model:
  path: %s
  calibration: %s
  intra_op_threads: 1
source:
  type: folder
  path: %s
  folder:
    loop: %v
    fps: 40
mqtt:
  broker: %s
  keepalive: 2s
  reconnect_max: 500ms
  retry_interval: 200ms
outbox:
  dir: %s
stats_interval: 0s
log:
  level: debug
  format: json
%s`, filepath.Join(root, "testdata/models/cnn28.onnx"), filepath.Join(root, "testdata/models/cnn28.calibration.json"),
		filepath.Join(root, "testdata/frames"), loop, broker, box, extra)
	path := filepath.Join(dir, "oodguardd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, box
}

// startDaemon starts the binary; its log goes to the test log when the test fails.
func startDaemon(t *testing.T, config string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	runtimetest.Setup(t)
	cmd := exec.Command(daemonBin, "-config", config)
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), ort.EnvLibrary+"="+ort.LibraryPath())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("oodguardd log:\n%s", log)
		}
	})
	return cmd, log
}

func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("oodguardd still running after %v", within)
		return -1
	}
}

// offlineFlags scores the sample frames one by one as `oodguard score -calibration` does and
// returns the names of the frames below the threshold, in order.
func offlineFlags(t *testing.T) []string {
	t.Helper()
	root := runtimetest.RepoRoot(t)
	runtimetest.Setup(t)
	cal, err := calibrate.LoadCalibration(filepath.Join(root, "testdata/models/cnn28.calibration.json"))
	if err != nil {
		t.Fatal(err)
	}
	clf, err := ort.Open(filepath.Join(root, "testdata/models/cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	r, _ := clf.NewRunner(1)
	defer r.Close()
	pre, _ := preprocess.New(cal.Preprocess)
	f, _ := cal.Score.Func()
	frames, err := dataset.OpenFolder(filepath.Join(root, "testdata/frames"), dataset.Options{Layout: dataset.LayoutFlat})
	if err != nil {
		t.Fatal(err)
	}
	defer frames.Close()
	var flagged []string
	for {
		s, err := frames.Next()
		if errors.Is(err, io.EOF) {
			return flagged
		}
		if err != nil {
			t.Fatal(err)
		}
		pre.Process(r.Input(), s.Image)
		z, err := r.Run()
		if err != nil {
			t.Fatal(err)
		}
		if sc, _ := f(z); sc < cal.Threshold {
			flagged = append(flagged, filepath.Base(s.Name()))
		}
	}
}

// events collects distinct events (by id) from a subscriber until n arrived.
func events(t *testing.T, sub *mqtttest.Subscriber, n int, within time.Duration) []event.Event {
	t.Helper()
	seen := map[string]bool{}
	var out []event.Event
	deadline := time.Now().Add(within)
	for len(out) < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("got %d of %d events within %v", len(out), n, within)
		}
		m := sub.Next(left)
		if !strings.HasSuffix(m.Topic, "/events") {
			continue
		}
		ev, err := event.Decode(m.Payload)
		if err != nil {
			t.Fatalf("event on %s: %v", m.Topic, err)
		}
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

func TestAlertsEqualOfflineScorer(t *testing.T) {
	want := offlineFlags(t)
	if len(want) == 0 {
		t.Fatal("the offline scorer flags no sample frame; the test would prove nothing")
	}
	mq := mqtttest.StartMosquitto(t)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/#")
	cfg, _ := daemonConfig(t, mq.URL(), false, "")
	cmd, _ := startDaemon(t, cfg)
	evs := events(t, sub, len(want), 30*time.Second)
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, filepath.Base(ev.Source))
		if ev.Decision != event.DecisionOOD || ev.Score >= ev.Threshold || ev.Device != "cam1" || ev.Frame == "" {
			t.Errorf("event %+v", ev)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts for %v, the offline scorer flags %v", got, want)
	}
	// No more events after the ones the scorer flags.
	for {
		select {
		case m := <-sub.C():
			if strings.HasSuffix(m.Topic, "/events") {
				ev, _ := event.Decode(m.Payload)
				if !slices.ContainsFunc(evs, func(e event.Event) bool { return e.ID == ev.ID }) {
					t.Errorf("extra alert for %s", ev.Source)
				}
			}
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
}

// queuedEvents reads the event ids queued in a copy of an outbox folder, in order.
func queuedEvents(t *testing.T, dir string) []string {
	t.Helper()
	cp := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".msg") {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(cp, e.Name()), b, 0o644)
		}
	}
	box, err := outbox.Open(cp, outbox.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	var ids []string
	for {
		seq, m, ok, err := box.Oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		if strings.HasSuffix(m.Topic, "/events") {
			ev, err := event.Decode(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.ID)
		}
		box.Remove(seq)
	}
}

func TestQueuedAlertsSurviveSIGKILL(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	// A persistent subscriber, so the broker keeps its subscription while it is down.
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{Persistent: true}, "oodguard/cam1/events")
	mq.Stop()

	cfg, box := daemonConfig(t, mq.URL(), true, "")
	cmd, _ := startDaemon(t, cfg)
	// Wait until at least four alerts (a frame and an event each, after the source's state)
	// are queued, then kill.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, _ := filepath.Glob(filepath.Join(box, "*.msg"))
		if len(ents) >= 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages queued", len(ents))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	waitExit(t, cmd, 10*time.Second)
	queued := queuedEvents(t, box)
	if len(queued) < 4 {
		t.Fatalf("%d events queued", len(queued))
	}

	// The broker comes back and the daemon is started again (not looping now): the queued
	// alerts arrive first, in order, each once, then the new run's.
	mq.Start()
	cmd2, _ := startDaemon(t, singlePass(t, cfg))
	evs := events(t, sub, len(queued)+1, 30*time.Second)
	for i, id := range queued {
		if evs[i].ID != id {
			t.Fatalf("event %d is %s (%s), want queued %s", i, evs[i].ID, evs[i].Source, id)
		}
	}
	if code := waitExit(t, cmd2, 30*time.Second); code != 0 {
		t.Fatalf("second run exit code %d", code)
	}
	if left, _ := filepath.Glob(filepath.Join(box, "*.msg")); len(left) != 0 {
		t.Errorf("%d messages left in the outbox", len(left))
	}
}

// singlePass turns a looping config into a single pass over the frames, same outbox.
func singlePass(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "loop: true", "loop: false", 1)
	p := filepath.Join(t.TempDir(), "oodguardd.yaml")
	os.WriteFile(p, []byte(s), 0o644)
	return p
}

func TestOfflineByLastWillOnSIGKILL(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/available")
	cfg, _ := daemonConfig(t, mq.URL(), true, "")
	cmd, _ := startDaemon(t, cfg)
	if m := sub.Next(30 * time.Second); string(m.Payload) != "online" {
		t.Fatalf("first availability %q", m.Payload)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	waitExit(t, cmd, 10*time.Second)
	if m := sub.Next(10 * time.Second); string(m.Payload) != "offline" || !m.Retained && m.Topic != "oodguard/cam1/available" {
		t.Fatalf("after SIGKILL: %q on %s", m.Payload, m.Topic)
	}
}

func TestBadInput(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	root := runtimetest.RepoRoot(t)
	t.Run("config names the field", func(t *testing.T) {
		cfg, _ := daemonConfig(t, mq.URL(), false, "guard:\n  debounce: 0\n")
		out, err := exec.Command(daemonBin, "-config", cfg, "-check-config").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "guard.debounce") {
			t.Fatalf("exit %v: %s", err, out)
		}
	})
	t.Run("calibration for another model", func(t *testing.T) {
		cfg, _ := daemonConfig(t, mq.URL(), false, "")
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, []byte(strings.Replace(string(b), "cnn28.onnx", "resnet32.onnx", 1)), 0o644)
		cmd, log := startDaemon(t, cfg)
		if code := waitExit(t, cmd, 30*time.Second); code != 1 || !strings.Contains(log.String(), "another model") {
			t.Fatalf("exit %d: %s", code, log)
		}
	})
	t.Run("corrupt and truncated frames are skipped", func(t *testing.T) {
		frames := t.TempDir()
		good, _ := os.ReadFile(filepath.Join(root, "testdata/frames/ood-tinyimagenet-000.jpg"))
		os.WriteFile(filepath.Join(frames, "a-good.jpg"), good, 0o644)
		os.WriteFile(filepath.Join(frames, "b-truncated.jpg"), good[:len(good)/2], 0o644)
		os.WriteFile(filepath.Join(frames, "c-garbage.jpg"), []byte("\xff\xd8\xff not a jpeg at all"), 0o644)
		os.WriteFile(filepath.Join(frames, "d-good.png"), mustRead(t, filepath.Join(root, "testdata/frames/id-fashion-000.png")), 0o644)
		cfg, _ := daemonConfig(t, mq.URL(), false, "")
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, []byte(strings.Replace(string(b), filepath.Join(root, "testdata/frames"), frames, 1)), 0o644)
		cmd, log := startDaemon(t, cfg)
		if code := waitExit(t, cmd, 30*time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var loop struct {
			Frames    int `json:"frames"`
			BadFrames int `json:"bad_frames"`
		}
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, "frame loop ended") {
				json.Unmarshal([]byte(line), &loop)
			}
		}
		// Go's decoder may accept a truncated baseline JPEG (grey bottom half); the garbage file is
		// always bad. Every file is accounted for, and the daemon went on to the last one.
		if loop.Frames+loop.BadFrames != 4 || loop.BadFrames < 1 || loop.Frames < 2 {
			t.Fatalf("frames %d, bad %d; log:\n%s", loop.Frames, loop.BadFrames, log)
		}
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBrokerOutage(t *testing.T) {
	want := offlineFlags(t)
	mq := mqtttest.StartMosquitto(t)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{Persistent: true}, "oodguard/cam1/events")
	cfg, _ := daemonConfig(t, mq.URL(), false, "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "fps: 40", "fps: 8", 1)), 0o644) // 20 frames in 2.5 s
	cmd, _ := startDaemon(t, cfg)
	time.Sleep(300 * time.Millisecond)
	mq.Stop() // the broker is away while most frames are scored
	time.Sleep(1500 * time.Millisecond)
	mq.Start()
	evs := events(t, sub, len(want), 30*time.Second)
	var got []string
	for i, ev := range evs {
		got = append(got, filepath.Base(ev.Source))
		if i > 0 && ev.FrameID <= evs[i-1].FrameID {
			t.Errorf("event %d (frame %d) after frame %d: out of order", i, ev.FrameID, evs[i-1].FrameID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts for %v, want %v", got, want)
	}
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

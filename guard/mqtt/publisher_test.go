package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/guard/outbox"
)

const (
	device  = "cam-1"
	run     = "0011223344556677"
	timeout = 15 * time.Second // for any one expected message; normally milliseconds
)

// testConfig is a Config for a local broker with fast reconnects.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.Broker = url
	cfg.DeviceID = device
	cfg.KeepAlive = 5 * time.Second
	cfg.ConnectTimeout = 2 * time.Second
	cfg.PublishTimeout = 2 * time.Second
	cfg.RetryInterval = 50 * time.Millisecond
	cfg.ReconnectMax = 100 * time.Millisecond
	return cfg
}

// startPublisher opens the outbox in dir and starts a Publisher; both are closed when the test
// ends (Close of an already closed Publisher does nothing).
func startPublisher(tb testing.TB, cfg Config, dir string, log *zap.Logger) (*Publisher, *outbox.Outbox) {
	tb.Helper()
	box, err := outbox.Open(dir, outbox.Limits{}, log)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := New(cfg, box, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Close(ctx)
		box.Close()
	})
	return p, box
}

func testEvent(frame uint64) event.Event {
	return event.Event{
		ID:        event.NewID(device, run, frame),
		Time:      time.Unix(1800000000, int64(frame)).UTC(),
		Device:    device,
		Model:     "sha256:feedbeef",
		FrameID:   frame,
		Source:    "/dev/video0",
		ScoreKind: "energy",
		Score:     -1 - float64(frame),
		Threshold: 2.5,
		Decision:  event.DecisionOOD,
	}
}

// testJPEG returns a small JPEG whose colour encodes n.
func testJPEG(tb testing.TB, n uint64) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = byte(n * 37)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// received is what a de-duplicating subscriber made of the messages it got so far.
type received struct {
	ids        []string // event ids in order of first arrival
	events     map[string]event.Event
	raw        int // event messages, duplicates included
	frames     map[string][]byte
	rawFrames  int
	dupFlag    int // messages the broker flagged DUP: its own redeliveries to the subscriber
	available  []mqtttest.Message
	frameFirst bool // every event's frame arrived before the event's first copy
}

func newReceived() *received {
	return &received{events: map[string]event.Event{}, frames: map[string][]byte{}, frameFirst: true}
}

func (r *received) duplicates() int { return r.raw - len(r.ids) + r.rawFrames - len(r.frames) }

// collect reads sub until n distinct events in all, and the frames they name, have arrived.
func (r *received) collect(tb testing.TB, sub *mqtttest.Subscriber, topics Topics, n int) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	complete := func() bool {
		if len(r.ids) < n {
			return false
		}
		for _, ev := range r.events {
			if _, ok := r.frames[ev.Frame]; ev.Frame != "" && !ok {
				return false
			}
		}
		return true
	}
	for !complete() {
		var m mqtttest.Message
		select {
		case m = <-sub.C():
		case <-deadline.C:
			tb.Fatalf("after %v: %d of %d events, %d frames", timeout, len(r.ids), n, len(r.frames))
		}
		if m.Duplicate {
			r.dupFlag++
		}
		switch {
		case m.Topic == topics.Events():
			ev, err := event.Decode(m.Payload)
			if err != nil {
				tb.Fatalf("event does not decode: %v: %s", err, m.Payload)
			}
			r.raw++
			if _, seen := r.events[ev.ID]; !seen {
				r.ids = append(r.ids, ev.ID)
				r.events[ev.ID] = ev
				if _, ok := r.frames[ev.Frame]; ev.Frame != "" && !ok {
					r.frameFirst = false
				}
			}
		case strings.HasPrefix(m.Topic, strings.TrimSuffix(topics.Frames(), "+")):
			r.rawFrames++
			r.frames[m.Topic] = m.Payload
		case m.Topic == topics.Available():
			r.available = append(r.available, m)
		default:
			tb.Fatalf("unexpected topic %s", m.Topic)
		}
	}
}

// checkAlerts checks that r's first events are those of frames 0..n-1, in order of first
// arrival, each with its JPEG.
func checkAlerts(tb testing.TB, r *received, topics Topics, n uint64) {
	tb.Helper()
	var want []string
	for f := range n {
		want = append(want, event.NewID(device, run, f))
	}
	if len(r.ids) < len(want) || !slices.Equal(r.ids[:len(want)], want) {
		tb.Fatalf("events out of order or missing:\n got %v\nwant %v", r.ids, want)
	}
	for f := range n {
		ev := r.events[event.NewID(device, run, f)]
		if ev.FrameID != f || ev.Decision != event.DecisionOOD || ev.Frame != topics.Frame(ev.ID) {
			tb.Fatalf("event %d: %+v", f, ev)
		}
		img, err := jpeg.Decode(bytes.NewReader(r.frames[ev.Frame]))
		if err != nil {
			tb.Fatalf("frame of event %d: %v", f, err)
		}
		if c := color.GrayModel.Convert(img.At(8, 8)).(color.Gray).Y; absDiff(c, byte(f*37)) > 8 {
			tb.Fatalf("frame of event %d has grey %d, want about %d", f, c, byte(f*37))
		}
	}
	if !r.frameFirst {
		tb.Errorf("an event arrived before its frame")
	}
}

func absDiff(a, b byte) byte {
	if a > b {
		return a - b
	}
	return b - a
}

func alert(tb testing.TB, p *Publisher, frame uint64) {
	tb.Helper()
	if err := p.Alert(testEvent(frame), testJPEG(tb, frame)); err != nil {
		tb.Fatal(err)
	}
}

// (a) Alerts arrive: the event decodes and its JPEG is on its frame topic.
func TestAlertsArrive(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	topics := NewTopics("oodguard", device)
	sub := mqtttest.Subscribe(t, m.URL(), mqtttest.SubscribeOptions{}, "oodguard/"+device+"/#")
	p, box := startPublisher(t, testConfig(m.URL()), t.TempDir(), zaptest.NewLogger(t))
	for f := range uint64(5) {
		alert(t, p, f)
	}
	if err := p.Alert(testEvent(5), nil); err != nil { // no frame
		t.Fatal(err)
	}
	r := newReceived()
	r.collect(t, sub, topics, 6)
	checkAlerts(t, r, topics, 5)
	if ev := r.events[event.NewID(device, run, 5)]; ev.Frame != "" {
		t.Errorf("event without JPEG names frame %q", ev.Frame)
	}
	if r.duplicates() != 0 {
		t.Errorf("%d duplicates on a healthy connection", r.duplicates())
	}
	waitFor(t, "outbox drained", func() bool { return box.Len() == 0 })

	// Stats: QoS 0, straight through.
	if err := p.Stats(event.Stats{Frames: 10, Flagged: 6, FPS: 30}); err != nil {
		t.Fatal(err)
	}
	for {
		msg := sub.Next(timeout)
		if msg.Topic != topics.Stats() {
			continue
		}
		s, err := event.DecodeStats(msg.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if s.Device != device || s.Frames != 10 || s.FPS != 30 || s.Time.IsZero() {
			t.Fatalf("stats: %+v", s)
		}
		break
	}
}

// Alerts over TLS with a client certificate (mutual TLS), checked against the test CA.
func TestAlertsOverTLS(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	topics := NewTopics("oodguard", device)
	sub := mqtttest.Subscribe(t, m.URL(), mqtttest.SubscribeOptions{}, topics.Events(), topics.Frames())
	cfg := testConfig(m.TLSURL())
	files := m.TLSFiles()
	cfg.TLS = TLSConfig{CAFile: files.CAFile, CertFile: files.CertFile, KeyFile: files.KeyFile}
	p, _ := startPublisher(t, cfg, t.TempDir(), zaptest.NewLogger(t))
	for f := range uint64(3) {
		alert(t, p, f)
	}
	r := newReceived()
	r.collect(t, sub, topics, 3)
	checkAlerts(t, r, topics, 3)
}

// (b) The broker goes away for a while; alerts raised meanwhile arrive after it is back, in
// order, each once at a de-duplicating subscriber.
func TestBrokerOutage(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	topics := NewTopics("oodguard", device)
	sub := mqtttest.Subscribe(t, m.URL(), mqtttest.SubscribeOptions{Persistent: true},
		topics.Events(), topics.Frames())
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	p, box := startPublisher(t, testConfig(m.URL()), t.TempDir(), log)

	for f := range uint64(5) {
		alert(t, p, f)
	}
	r := newReceived()
	r.collect(t, sub, topics, 5)
	checkAlerts(t, r, topics, 5)
	dupsBefore := r.duplicates()

	for f := uint64(5); f < 10; f++ { // the broker stops while these are being published
		alert(t, p, f)
	}
	m.Stop()
	waitFor(t, "publisher sees the broker gone", func() bool { return !p.client.IsConnectionOpen() })
	for f := uint64(10); f < 20; f++ {
		alert(t, p, f)
	}
	if n := box.Len(); n < 20 {
		t.Fatalf("outbox holds %d messages during the outage, want at least 20", n)
	}
	m.Start()
	for f := uint64(20); f < 25; f++ { // and some while it reconnects
		alert(t, p, f)
	}
	r.collect(t, sub, topics, 25)
	checkAlerts(t, r, topics, 25)
	waitFor(t, "outbox drained", func() bool { return box.Len() == 0 })
	// The sender waits for the connection instead of retrying in a loop: at most one failed
	// publish for the connection it lost.
	if n := logs.FilterMessage("publish failed; will retry").Len(); n > 2 {
		t.Errorf("%d failed publishes during one outage: the sender is polling", n)
	}
	t.Logf("outage: 25 alerts (20 around the outage), each once after de-duplication; "+
		"raw duplicates: %d before the outage, %d in all (events %d, frames %d; %d flagged DUP by the broker)",
		dupsBefore, r.duplicates(), r.raw-len(r.ids), r.rawFrames-len(r.frames), r.dupFlag)
}

// (c) A daemon killed with SIGKILL while its alerts were queued: the next Publisher on the same
// outbox folder delivers them.
func TestDeliveryAfterKill(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	m.Stop() // the broker is away while the first daemon runs
	dir := t.TempDir()
	const n = 10
	child := startHelper(t, "queue", m.URL(), dir, n)
	child.expect(t, fmt.Sprintf("queued %d", n))
	child.kill(t)

	box, err := outbox.Open(dir, outbox.Limits{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if box.Len() != 2*n {
		t.Fatalf("outbox after SIGKILL holds %d messages, want %d", box.Len(), 2*n)
	}
	box.Close()

	m.Start()
	topics := NewTopics("oodguard", device)
	sub := mqtttest.Subscribe(t, m.URL(), mqtttest.SubscribeOptions{}, topics.Events(), topics.Frames())
	_, box = startPublisher(t, testConfig(m.URL()), dir, zaptest.NewLogger(t))
	r := newReceived()
	r.collect(t, sub, topics, n)
	checkAlerts(t, r, topics, n)
	waitFor(t, "outbox drained", func() bool { return box.Len() == 0 })
}

// (d) Availability: retained "online" after connecting and after every reconnect, "offline"
// from Close.
func TestAvailability(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	topics := NewTopics("oodguard", device)
	p, _ := startPublisher(t, testConfig(m.URL()), t.TempDir(), zaptest.NewLogger(t))

	waitAvailable(t, m.URL(), topics, Online, "sub-1")

	// Restart the broker without its saved state: a retained "online" after that can only come
	// from the publisher publishing it again on reconnect.
	m.Stop()
	m.ForgetState()
	m.Start()
	sub := waitAvailable(t, m.URL(), topics, Online, "sub-2")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		msg := sub.Next(timeout)
		if msg.Topic == topics.Available() && string(msg.Payload) == Offline {
			break
		}
	}
	waitAvailable(t, m.URL(), topics, Offline, "sub-3") // and it is retained
}

// (d) The last will: a daemon killed with SIGKILL leaves "offline" behind.
func TestLastWillOnKill(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	topics := NewTopics("oodguard", device)
	child := startHelper(t, "online", m.URL(), t.TempDir(), 0)
	sub := waitAvailable(t, m.URL(), topics, Online, "sub-1")
	child.kill(t)
	for {
		msg := sub.Next(timeout)
		if msg.Topic == topics.Available() && string(msg.Payload) == Offline {
			break
		}
	}
	waitAvailable(t, m.URL(), topics, Offline, "sub-2")
}

// waitAvailable subscribes to the availability topic until it carries want.
func waitAvailable(tb testing.TB, url string, topics Topics, want, clientID string) *mqtttest.Subscriber {
	tb.Helper()
	sub := mqtttest.Subscribe(tb, url, mqtttest.SubscribeOptions{ClientID: clientID}, topics.Available())
	for {
		msg := sub.Next(timeout)
		if string(msg.Payload) == want {
			return sub
		}
	}
}

// waitFor checks cond every few milliseconds until it holds, failing the test after a
// deadline. It is for state without an event to wait on (the outbox length, paho's status).
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			tb.Fatalf("timed out waiting for: %s", what)
		case <-tick.C:
		}
	}
}

// A helper child process: the test binary run again as a daemon that the test can kill.

const helperEnv = "OODGUARD_MQTT_HELPER"

type helper struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func startHelper(tb testing.TB, mode, url, dir string, n int) *helper {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%s,%d", helperEnv, mode, url, dir, n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the child exits when this closes
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &helper{cmd: cmd, lines: bufio.NewScanner(out)}
}

func (h *helper) expect(tb testing.TB, line string) {
	tb.Helper()
	for h.lines.Scan() {
		if h.lines.Text() == line {
			return
		}
	}
	tb.Fatalf("child ended without saying %q (%v)", line, h.lines.Err())
}

func (h *helper) kill(tb testing.TB) {
	tb.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	h.cmd.Wait()
}

// TestHelperProcess is the child of the tests above; it does nothing in a normal run. Modes:
// "queue" raises n alerts (the broker is down) and says so; "online" just runs.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for the kill tests")
	}
	go func() { // exit when the parent goes away
		var b [1]byte
		os.Stdin.Read(b[:])
		os.Exit(3)
	}()
	parts := strings.Split(spec, ",")
	mode, url, dir := parts[0], parts[1], parts[2]
	n, _ := strconv.Atoi(parts[3])
	log := zap.NewNop()
	box, err := outbox.Open(dir, outbox.Limits{}, log)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	p, err := New(testConfig(url), box, log)
	if err == nil {
		err = p.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	if mode == "queue" {
		for f := range uint64(n) {
			if err := p.Alert(testEvent(f), testJPEG(t, f)); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
		fmt.Printf("queued %d\n", n)
	}
	select {} // until killed
}

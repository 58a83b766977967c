package broker

import (
	"context"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap/zaptest"

	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/guard/outbox"
)

// TestPublisherThroughEmbeddedBroker sends an alert with its frame through the embedded
// broker and checks availability on connect and after Close.
func TestPublisherThroughEmbeddedBroker(t *testing.T) {
	log := zaptest.NewLogger(t)
	b, err := Start("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	cfg := mqtt.DefaultConfig()
	cfg.Broker = b.URL()
	cfg.DeviceID = "demo"
	cfg.RetryInterval = 50 * time.Millisecond
	box, err := outbox.Open(t.TempDir(), outbox.Limits{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	topics := mqtt.NewTopics(cfg.TopicPrefix, cfg.DeviceID)
	sub := mqtttest.Subscribe(t, b.URL(), mqtttest.SubscribeOptions{}, "oodguard/demo/#")

	p, err := mqtt.New(cfg, box, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev := event.Event{ID: event.NewID("demo", "run", 1), Time: time.Now().UTC(), Device: "demo", FrameID: 1,
		ScoreKind: "energy", Score: -2, Threshold: 1, Decision: event.DecisionOOD}
	jpeg := []byte{0xff, 0xd8, 0xff, 0xd9}
	if err := p.Alert(ev, jpeg); err != nil {
		t.Fatal(err)
	}
	var gotOnline, gotFrame bool
	for {
		m := sub.Next(10 * time.Second)
		switch m.Topic {
		case topics.Available():
			gotOnline = gotOnline || string(m.Payload) == mqtt.Online
		case topics.Frame(ev.ID):
			gotFrame = string(m.Payload) == string(jpeg)
		case topics.Events():
			got, err := event.Decode(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != ev.ID || got.Frame != topics.Frame(ev.ID) {
				t.Fatalf("event %+v", got)
			}
			if !gotFrame {
				t.Fatal("event before its frame")
			}
		}
		if gotOnline && gotFrame {
			break
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		m := sub.Next(10 * time.Second)
		if m.Topic == topics.Available() && string(m.Payload) == mqtt.Offline {
			break
		}
	}
}

func TestOnlyLoopbackClients(t *testing.T) {
	h := &loopbackOnly{log: zaptest.NewLogger(t)}
	for remote, want := range map[string]bool{
		"127.0.0.1:5000":        true,
		"127.8.9.10:5000":       true,
		"[::1]:5000":            true,
		"[::ffff:127.0.0.1]:50": true,
		"192.0.2.7:5000":        false,
		"[2001:db8::1]:5000":    false,
		"10.0.0.1:1883":         false,
		"":                      false,
		"pipe":                  false,
	} {
		cl := &mochi.Client{ID: "c", Net: mochi.ClientConnection{Remote: remote}}
		if got := h.OnConnectAuthenticate(cl, packets.Packet{}); got != want {
			t.Errorf("connect from %q: %v, want %v", remote, got, want)
		}
		if got := h.OnACLCheck(cl, "oodguard/x/events", true); got != want {
			t.Errorf("publish from %q: %v, want %v", remote, got, want)
		}
	}
	inline := &mochi.Client{Net: mochi.ClientConnection{Inline: true}}
	if !h.OnConnectAuthenticate(inline, packets.Packet{}) || !h.OnACLCheck(inline, "t", true) {
		t.Error("the inline client is refused")
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start("no-port", nil); err == nil {
		t.Error("Start without a port succeeded")
	}
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := Start(b.Addr(), nil); err == nil {
		t.Error("second Start on the same port succeeded")
	}
}

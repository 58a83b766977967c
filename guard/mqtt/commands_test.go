package mqtt

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/guard/outbox"
)

// TestHandleAndQueue: a handler receives commands after every connection (a broker restart
// included), and a queued retained message reaches a subscriber that comes later.
func TestHandleAndQueue(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	cfg := testConfig(mq.URL())
	got := make(chan string, 4)
	topics := NewTopics(cfg.TopicPrefix, cfg.DeviceID)
	p, _ := newHandled(t, cfg, func(p *Publisher) {
		p.Handle(topics.OTAUpdate(), func(topic string, payload []byte) { got <- topic + " " + string(payload) })
	})
	send := func(msg string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("commander"))
			if tok := c.Connect(); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
				c.Publish(topics.OTAUpdate(), 1, false, msg).WaitTimeout(2 * time.Second)
				c.Disconnect(100)
			}
			select {
			case g := <-got:
				if g != topics.OTAUpdate()+" "+msg {
					t.Fatalf("handler got %q", g)
				}
				return
			case <-time.After(300 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("handler never got %q", msg)
			}
		}
	}
	send("one")
	mq.Restart()
	send("two") // subscribed again after the reconnect

	if err := p.Queue(topics.OTAState(), []byte(`{"phase":"idle"}`), true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queued state to be sent", func() bool { return p.box.Len() == 0 })
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, topics.OTAState())
	m := sub.Next(10 * time.Second)
	if string(m.Payload) != `{"phase":"idle"}` || !m.Retained {
		t.Fatalf("state %q retained %v", m.Payload, m.Retained)
	}
}

// newHandled is startPublisher with a chance to register handlers before Start.
func newHandled(tb testing.TB, cfg Config, setup func(*Publisher)) (*Publisher, *outbox.Outbox) {
	tb.Helper()
	box, err := outbox.Open(tb.TempDir(), outbox.Limits{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := New(cfg, box, nil)
	if err != nil {
		tb.Fatal(err)
	}
	setup(p)
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

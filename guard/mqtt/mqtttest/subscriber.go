package mqtttest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Message is a message a Subscriber received.
type Message struct {
	Topic     string
	Payload   []byte
	QoS       byte
	Retained  bool // sent because of a retained message at subscription time
	Duplicate bool // the broker's DUP flag: a redelivery attempt
	At        time.Time
}

// SubscribeOptions configures a Subscriber.
type SubscribeOptions struct {
	ClientID string // default: a name made from the test's name
	// Persistent asks for a persistent session (CleanSession false): the broker keeps the
	// subscription, and queues QoS 1 messages while the subscriber is disconnected, across a
	// broker restart too.
	Persistent bool
}

// Subscriber is a paho client that subscribes to filters at QoS 1, after every connection,
// and collects what it receives. It reconnects by itself.
type Subscriber struct {
	tb       testing.TB
	client   paho.Client
	msgs     chan Message
	overflow atomic.Int64
	close    sync.Once
}

// Subscribe connects to url, subscribes to filters and returns once the broker has confirmed
// the subscription. It disconnects when the test ends.
func Subscribe(tb testing.TB, url string, opt SubscribeOptions, filters ...string) *Subscriber {
	tb.Helper()
	if opt.ClientID == "" {
		opt.ClientID = "sub-" + tb.Name()
		if len(opt.ClientID) > 64 {
			opt.ClientID = opt.ClientID[:64]
		}
	}
	s := &Subscriber{tb: tb, msgs: make(chan Message, 100000)}
	subs := make(map[string]byte, len(filters))
	for _, f := range filters {
		subs[f] = 1
	}
	ready := make(chan error, 1)
	var once sync.Once
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(opt.ClientID).
		SetCleanSession(!opt.Persistent).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(100 * time.Millisecond).
		SetKeepAlive(5 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(s.handle). // before Connect: a persistent session delivers at once
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.SubscribeMultiple(subs, nil)
			ok := tok.WaitTimeout(5 * time.Second)
			err := tok.Error()
			if !ok && err == nil {
				err = errors.New("no SUBACK within 5s")
			}
			once.Do(func() { ready <- err })
		})
	s.client = paho.NewClient(o)
	s.client.Connect()
	tb.Cleanup(s.Close)
	select {
	case err := <-ready:
		if err != nil {
			tb.Fatalf("subscribe %v: %v", filters, err)
		}
	case <-time.After(10 * time.Second):
		tb.Fatalf("subscriber could not connect to %s", url)
	}
	return s
}

// handle runs on paho's router: it must not block.
func (s *Subscriber) handle(_ paho.Client, m paho.Message) {
	msg := Message{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retained: m.Retained(), Duplicate: m.Duplicate(), At: time.Now()}
	select {
	case s.msgs <- msg:
	default:
		s.overflow.Add(1)
	}
}

// C returns the channel of received messages.
func (s *Subscriber) C() <-chan Message { return s.msgs }

// Next returns the next message, failing the test if none comes within timeout.
func (s *Subscriber) Next(timeout time.Duration) Message {
	s.tb.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(timeout):
		s.tb.Fatalf("no message within %v", timeout)
		return Message{}
	}
}

// Close disconnects; the test calls it when it ends.
func (s *Subscriber) Close() {
	s.close.Do(func() {
		s.client.Disconnect(250)
		if n := s.overflow.Load(); n > 0 {
			s.tb.Errorf("subscriber dropped %d messages: its buffer was full", n)
		}
	})
}

package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/outbox"
)

// Log field keys.
const (
	logBroker   = "broker"
	logClientID = "client_id"
	logTopic    = "topic"
	logSeq      = "seq"
	logEventID  = "event_id"
	logLeft     = "left"
)

// Bounds of Close's last steps, after the flush.
const (
	offlineWait       = time.Second            // wait for the PUBACK of "offline"
	disconnectQuiesce = 500 * time.Millisecond // paho's Disconnect quiesce
)

var (
	// ErrNotConnected is returned by Stats while the broker is unreachable; stats are not queued.
	ErrNotConnected = errors.New("mqtt: not connected")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("mqtt: publisher closed")
	// errUnconfirmed marks a publish whose connection was lost before it was acknowledged.
	errUnconfirmed = errors.New("connection lost before the broker acknowledged the message")
)

// Publisher publishes alerts from an outbox over MQTT. See the package documentation.
type Publisher struct {
	cfg    Config
	topics Topics
	box    *outbox.Outbox
	log    *zap.Logger
	client paho.Client

	// epoch grows at every connection loss and reconnect attempt, so that a publish waiting
	// for its acknowledgement notices that its connection is gone.
	epoch atomic.Uint64

	conn connState // the connection as the events saw it; guarded by mu

	mu       sync.Mutex
	handlers []handler     // subscriptions made after every connection
	changed  chan struct{} // closed and replaced whenever the connection state changes
	started  bool
	closed   bool
	stop     context.CancelFunc // stops the sender at once
	flush    chan struct{}      // closed by Close: the sender exits once the outbox is empty
	done     chan struct{}      // closed when the sender has exited
}

// New returns a Publisher for cfg that sends what is queued in box. It does not connect; call
// Start. The Publisher does not own box: close it after the Publisher. log is used as given
// (callers name it, e.g. log.Named("mqtt")); nil logs nothing.
func New(cfg Config, box *outbox.Outbox, log *zap.Logger) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if box == nil {
		return nil, errors.New("mqtt: no outbox")
	}
	if log == nil {
		log = zap.NewNop()
	}
	o, err := cfg.ClientOptions() // broker, credentials and TLS, as every client of ours
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:     cfg,
		topics:  NewTopics(cfg.TopicPrefix, cfg.DeviceID),
		box:     box,
		log:     log.With(zap.String(logBroker, cfg.Broker), zap.String(logClientID, cfg.clientID())),
		changed: make(chan struct{}),
		flush:   make(chan struct{}),
		done:    make(chan struct{}),
	}

	o.SetClientID(cfg.clientID()).
		// The outbox is the durable store: the broker keeps no session for us, and paho keeps
		// no copies (noStore explains why).
		SetCleanSession(true).
		SetStore(noStore{}).
		// Handlers (Handle) must not block paho's router; keep its default ordering.
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true). // keep trying when the broker is down at start
		SetConnectRetryInterval(cfg.RetryInterval).
		SetMaxReconnectInterval(cfg.ReconnectMax).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(cfg.ConnectTimeout).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(cfg.PublishTimeout). // bounds a Publish that cannot hand its packet over
		SetWill(p.topics.Available(), Offline, cfg.AlertQoS, true).
		SetOnConnectHandler(p.onConnect).
		SetConnectionAttemptHandler(p.onAttempt).
		SetConnectionLostHandler(p.onConnectionLost).
		SetReconnectingHandler(p.onReconnecting)
	p.client = paho.NewClient(o)
	return p, nil
}

// Topics returns the topics this Publisher publishes on.
func (p *Publisher) Topics() Topics { return p.topics }

// Start starts connecting, in the background, and starts the sender. It does not wait for the
// broker: alerts queue in the outbox until it is reachable. ctx bounds Start only; the sender
// runs until Close, so that Close can flush the outbox.
func (p *Publisher) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrClosed
	case p.started:
		return errors.New("mqtt: publisher already started")
	}
	p.started = true
	p.conn = connState{downSince: time.Now()}
	sctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	p.log.Info("connecting", zap.String("available", p.topics.Available()), zap.Int("queued", p.box.Len()))
	p.client.Connect() // with ConnectRetry its token completes only once connected; events tell us
	go p.send(sctx)
	return nil
}

// Alert queues ev, and jpeg as its frame if not empty, for publication. The frame goes first,
// on Topics.Frame(ev.ID), and ev.Frame names it. Alert returns once both are on disk; it never
// publishes directly. An empty ev.Device is set to the configured device id.
func (p *Publisher) Alert(ev event.Event, jpeg []byte) error {
	if ev.Device == "" {
		ev.Device = p.cfg.DeviceID
	}
	if ev.Device != p.cfg.DeviceID {
		return fmt.Errorf("mqtt: alert: event device %q is not this publisher's device %q", ev.Device, p.cfg.DeviceID)
	}
	ev.Frame = ""
	if len(jpeg) > 0 {
		ev.Frame = p.topics.Frame(ev.ID)
	}
	payload, err := ev.Encode()
	if err != nil {
		return fmt.Errorf("mqtt: alert: %w", err)
	}
	// A message the outbox could only keep in memory (outbox.ErrInMemory) is queued all the
	// same: go on, and report it.
	var inMemory error
	if len(jpeg) > 0 {
		if _, err := p.box.Append(outbox.Message{Topic: ev.Frame, Payload: jpeg, QoS: p.cfg.FrameQoS}); err != nil {
			if !errors.Is(err, outbox.ErrInMemory) {
				return fmt.Errorf("mqtt: alert %s: frame: %w", ev.ID, err)
			}
			inMemory = err
		}
	}
	if _, err := p.box.Append(outbox.Message{Topic: p.topics.Events(), Payload: payload, QoS: p.cfg.AlertQoS}); err != nil {
		if !errors.Is(err, outbox.ErrInMemory) {
			return fmt.Errorf("mqtt: alert %s: %w", ev.ID, err)
		}
		inMemory = err
	}
	if inMemory != nil {
		return fmt.Errorf("mqtt: alert %s: %w", ev.ID, inMemory)
	}
	p.log.Debug("alert queued", zap.String(logEventID, ev.ID), zap.Bool("frame", len(jpeg) > 0))
	return nil
}

// Stats publishes s on the stats topic at QoS 0, not retained and not queued: while the broker
// is unreachable it returns ErrNotConnected. It fills in the device id, the time if zero, and
// the outbox fields from the Publisher's outbox.
func (p *Publisher) Stats(s event.Stats) error {
	s.Device = p.cfg.DeviceID
	if s.Time.IsZero() {
		s.Time = time.Now().UTC()
	}
	s.OutboxLen, s.OutboxBytes, s.OutboxDropped = p.box.Len(), p.box.Bytes(), p.box.Dropped()
	payload, err := s.Encode()
	if err != nil {
		return fmt.Errorf("mqtt: stats: %w", err)
	}
	if !p.client.IsConnectionOpen() {
		return ErrNotConnected
	}
	// QoS 0 while reconnecting would be stored by paho and sent late, or dropped (#630); the
	// check above keeps stats fresh or absent.
	tok := p.client.Publish(p.topics.Stats(), 0, false, payload)
	if !tok.WaitTimeout(p.cfg.PublishTimeout) {
		return errors.New("mqtt: stats: publish timed out")
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: stats: %w", err)
	}
	return nil
}

// Close flushes the outbox while ctx allows, publishes "offline" (retained) and disconnects.
// The "offline" publish and the disconnect are bounded (about 1.5 s together), so Close returns
// soon after ctx's deadline even when the broker is gone. What was not flushed stays in the
// outbox for the next start, and Close then returns an error saying how much. Close does not
// close the outbox.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	started := p.started
	p.mu.Unlock()
	if !started {
		return nil
	}

	close(p.flush)
	select {
	case <-p.done:
	case <-ctx.Done():
	}
	p.stop()
	<-p.done

	if p.client.IsConnectionOpen() {
		tok := p.client.Publish(p.topics.Available(), p.cfg.AlertQoS, true, Offline)
		if !tok.WaitTimeout(offlineWait) || tok.Error() != nil {
			p.log.Warn("could not publish offline", zap.Error(tok.Error()))
		}
	}
	p.client.Disconnect(uint(disconnectQuiesce / time.Millisecond))
	if n := p.box.Len(); n > 0 {
		p.log.Warn("closed with messages left in the outbox", zap.Int(logLeft, n))
		return fmt.Errorf("mqtt: close: %d messages left in the outbox for the next start: %w", n, context.Cause(ctx))
	}
	p.log.Info("closed")
	return nil
}

// handler is one subscription of Handle.
type handler struct {
	filter string
	f      func(topic string, payload []byte)
}

// Handle subscribes to filter (QoS 1) after every connection and calls f for each message. f
// runs on paho's router goroutine and must not block: hand the work to a goroutine or channel.
// Call Handle before Start.
func (p *Publisher) Handle(filter string, f func(topic string, payload []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handlers = append(p.handlers, handler{filter, f})
}

// Queue puts a message for topic in the outbox, at the alert QoS, so that it is delivered in
// order with the alerts, after a broker outage or a restart too.
func (p *Publisher) Queue(topic string, payload []byte, retained bool) error {
	if _, err := p.box.Append(outbox.Message{Topic: topic, Payload: payload, QoS: p.cfg.AlertQoS, Retained: retained}); err != nil {
		return fmt.Errorf("mqtt: queue %s: %w", topic, err)
	}
	return nil
}

// onConnect runs in its own goroutine after every (re)connection: it re-publishes "online",
// since a broker restart or the last will may have replaced it, subscribes the handlers, then
// wakes the sender.
func (p *Publisher) onConnect(c paho.Client) {
	p.mu.Lock()
	down := time.Since(p.conn.downSince)
	p.conn = connState{connected: true, since: time.Now()}
	p.mu.Unlock()
	p.log.Info("connected", zap.Duration("was_down", down.Round(time.Millisecond)))
	p.mu.Lock()
	hs := append([]handler(nil), p.handlers...)
	p.mu.Unlock()
	for _, h := range hs {
		f := h.f
		tok := c.Subscribe(h.filter, 1, func(_ paho.Client, m paho.Message) { f(m.Topic(), m.Payload()) })
		if !tok.WaitTimeout(p.cfg.PublishTimeout) || tok.Error() != nil {
			p.log.Warn("subscribe failed", zap.String("filter", h.filter), zap.Error(tok.Error()))
		}
	}
	tok := c.Publish(p.topics.Available(), p.cfg.AlertQoS, true, Online)
	if !tok.WaitTimeout(p.cfg.PublishTimeout) {
		p.log.Warn("publish online: timed out")
	} else if err := tok.Error(); err != nil {
		p.log.Warn("publish online", zap.Error(err))
	}
	p.notifyChange()
}

func (p *Publisher) onConnectionLost(_ paho.Client, err error) {
	p.epoch.Add(1)
	p.mu.Lock()
	p.conn = connState{downSince: time.Now()}
	p.mu.Unlock()
	p.log.Warn("connection lost", zap.Error(err))
	p.notifyChange()
}

// onReconnecting is called synchronously by paho before each reconnect attempt, so before any
// message is resent on the new connection.
func (p *Publisher) onReconnecting(paho.Client, *paho.ClientOptions) {
	p.epoch.Add(1)
	p.log.Debug("reconnecting")
}

// connState is what the Publisher knows of its connection.
type connState struct {
	connected bool
	since     time.Time // connected: since when
	downSince time.Time // not connected: since when
	attempts  int       // connection attempts since the connection went down
	warned    time.Time // last "unreachable" warning
}

// unreachableWarnEvery bounds how often a broker that stays unreachable is logged at WARN.
const unreachableWarnEvery = 30 * time.Second

// onAttempt is called by paho before every connection attempt, at start and on reconnects. A
// second attempt while still down means the first failed: the broker is unreachable, which is
// logged at WARN (then again at most every unreachableWarnEvery).
func (p *Publisher) onAttempt(broker *url.URL, tlsCfg *tls.Config) *tls.Config {
	p.mu.Lock()
	p.conn.attempts++
	c := p.conn
	warn := !c.connected && c.attempts >= 2 && time.Since(c.warned) >= unreachableWarnEvery
	if warn {
		p.conn.warned = time.Now()
	}
	p.mu.Unlock()
	if warn {
		p.log.Warn("broker unreachable; still trying, alerts wait in the outbox",
			zap.Int("attempts", c.attempts), zap.Duration("down_for", time.Since(c.downSince).Round(time.Millisecond)),
			zap.Int("queued", p.box.Len()))
	}
	return tlsCfg
}

// ConnStatus is the Publisher's connection as of its last event.
type ConnStatus struct {
	Connected bool
	Since     time.Time // when the connection came up, or went down (or the Publisher started)
	Attempts  int       // connection attempts since it went down
}

// Status returns the connection's state.
func (p *Publisher) Status() ConnStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn.connected {
		return ConnStatus{Connected: true, Since: p.conn.since}
	}
	return ConnStatus{Since: p.conn.downSince, Attempts: p.conn.attempts}
}

// notifyChange wakes everyone waiting on the connection state.
func (p *Publisher) notifyChange() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *Publisher) changes() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

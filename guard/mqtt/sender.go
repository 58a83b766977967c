package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/oodguard/oodguard/guard/outbox"
)

const (
	// Backoff between attempts when a publish fails on a connection that stays up.
	retryMin = 500 * time.Millisecond
	retryMax = 30 * time.Second
	// connectedPoll is a safety net: how often waitConnected looks at paho's status in case a
	// connection event was missed. Connection events normally wake it at once.
	connectedPoll = 5 * time.Second
)

// send is the one goroutine that drains the outbox: oldest message first, the next one only
// after the broker acknowledged it, and Remove only then. It exits when ctx ends, or once the
// outbox is empty after Close asked for a flush.
func (p *Publisher) send(ctx context.Context) {
	defer close(p.done)
	retry := retryMin
	for {
		if !p.waitConnected(ctx) {
			return
		}
		seq, m, ok, err := p.box.Oldest()
		if errors.Is(err, outbox.ErrClosed) {
			p.log.Error("outbox closed under the publisher; sender stops")
			return
		}
		if err != nil {
			p.log.Error("read outbox", zap.Error(err))
			if !sleep(ctx, retryMax) {
				return
			}
			continue
		}
		if !ok {
			select {
			case <-p.flush:
				return
			default:
			}
			select {
			case <-ctx.Done():
				return
			case <-p.box.Notify():
			case <-p.flush:
			}
			continue
		}
		changed := p.changes()
		if err := p.publish(ctx, m, changed); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("publish failed; will retry", zap.Uint64(logSeq, seq), zap.String(logTopic, m.Topic), zap.Error(err))
			// Wait for the connection state to change (the usual case: it was lost and paho
			// is reconnecting) or, if it stays up, for a growing backoff.
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-time.After(retry):
				retry = min(2*retry, retryMax)
			}
			continue
		}
		retry = retryMin
		p.log.Debug("delivered", zap.Uint64(logSeq, seq), zap.String(logTopic, m.Topic))
		if err := p.box.Remove(seq); err != nil {
			p.log.Error("remove delivered message", zap.Uint64(logSeq, seq), zap.Error(err))
		}
	}
}

// publish sends m and waits for the broker's acknowledgement (QoS 1 and 2) or for paho to hand
// the packet to the network (QoS 0).
func (p *Publisher) publish(ctx context.Context, m outbox.Message, changed <-chan struct{}) error {
	epoch := p.epoch.Load()
	tok := p.client.Publish(m.Topic, m.QoS, m.Retained, m.Payload)
	timer := time.NewTimer(p.cfg.PublishTimeout)
	defer timer.Stop()
	for {
		select {
		case <-tok.Done():
			return tok.Error()
		case <-changed:
			if p.epoch.Load() != epoch {
				// The connection was lost mid-publish. paho keeps no copy (noStore) and the
				// token stays pending: the sender publishes the message again after the
				// reconnect. If the broker had received it, that is a duplicate.
				return errUnconfirmed
			}
			changed = p.changes() // a connect event, not a loss: keep waiting
		case <-timer.C:
			return fmt.Errorf("no acknowledgement within %v", p.cfg.PublishTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitConnected blocks until the client has an open connection. It returns false when ctx
// ends first, or when Close asked for a flush and there is nothing left to send.
func (p *Publisher) waitConnected(ctx context.Context) bool {
	flush := p.flush
	for {
		changed := p.changes()
		if p.client.IsConnectionOpen() {
			return true
		}
		if flush == nil && p.box.Len() == 0 {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		case <-flush:
			flush = nil // closed: look at it once, not in a loop
		case <-time.After(connectedPoll):
		}
	}
}

// sleep waits for d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

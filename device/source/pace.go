package source

import (
	"context"
	"time"
)

// pacer holds a source to a frame rate. It keeps one timer for its whole life, so that waiting
// makes no allocation.
type pacer struct {
	interval time.Duration // 0: no limit
	next     time.Time     // when the next frame is due
	timer    *time.Timer
}

// newPacer returns a pacer for fps frames per second; fps <= 0 means no limit.
func newPacer(fps float64) *pacer {
	p := &pacer{}
	if fps > 0 {
		p.interval = time.Duration(float64(time.Second) / fps)
		p.timer = time.NewTimer(time.Hour)
		p.timer.Stop()
	}
	return p
}

// wait blocks until the next frame is due or ctx ends. A consumer slower than the rate gets
// its frames at once, without a burst to catch up afterwards.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	now := time.Now()
	if d := p.next.Sub(now); d > 0 {
		p.timer.Reset(d)
		select {
		case <-ctx.Done():
			p.timer.Stop()
			return ctx.Err()
		case <-p.timer.C:
		}
		now = p.next
	}
	p.next = now.Add(p.interval)
	return ctx.Err()
}

// stop releases the timer.
func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

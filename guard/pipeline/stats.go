package pipeline

import (
	"slices"
	"time"
)

// latency keeps the last 1024 inference times for percentiles, without allocating per frame.
type latency struct {
	ring    [1024]time.Duration
	n, next int
	scratch []time.Duration
}

func (l *latency) add(d time.Duration) {
	l.ring[l.next] = d
	l.next = (l.next + 1) % len(l.ring)
	l.n = min(l.n+1, len(l.ring))
}

// percentiles returns the 50th and 99th percentiles (nearest rank) of the kept times.
func (l *latency) percentiles() (p50, p99 time.Duration) {
	if l.n == 0 {
		return 0, 0
	}
	l.scratch = append(l.scratch[:0], l.ring[:l.n]...)
	slices.Sort(l.scratch)
	rank := func(p float64) time.Duration {
		i := int(p*float64(l.n)+0.999999) - 1
		return l.scratch[max(0, min(i, l.n-1))]
	}
	return rank(0.50), rank(0.99)
}

// rate estimates frames per second over the last ten seconds, in one-second buckets.
type rate struct {
	buckets [10]uint64
	sec     [10]int64
}

func (r *rate) tick(t time.Time) {
	s := t.Unix()
	i := s % int64(len(r.buckets))
	if r.sec[i] != s {
		r.sec[i], r.buckets[i] = s, 0
	}
	r.buckets[i]++
}

// perSecond averages over the full seconds of the window before now.
func (r *rate) perSecond(now time.Time) float64 {
	s := now.Unix()
	var n uint64
	for i := range r.buckets {
		if age := s - r.sec[i]; age >= 1 && age <= int64(len(r.buckets)) {
			n += r.buckets[i]
		}
	}
	return float64(n) / float64(len(r.buckets))
}

// rateLimit lets one event through per interval (for logs of repeated per-frame errors).
type rateLimit struct {
	every time.Duration
	last  time.Time
}

func newRateLimit(every time.Duration) *rateLimit { return &rateLimit{every: every} }

func (r *rateLimit) allow() bool {
	now := time.Now()
	if now.Sub(r.last) < r.every {
		return false
	}
	r.last = now
	return true
}

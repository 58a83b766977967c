package detect

import (
	"math"
	"math/rand/v2"
)

// sampler chooses a uniform random subset of fixed size from a stream of unknown length
// (reservoir sampling, Li's Algorithm L: it draws random numbers only for the items it keeps, so
// skipping costs nothing per item). Seeded: the same stream and seed keep the same items.
type sampler struct {
	size int
	seen int64 // items offered so far
	next int64 // index of the next item to keep once the reservoir is full
	w    float64
	rng  *rand.Rand
}

func newSampler(size int, seed uint64) *sampler {
	s := &sampler{size: size, rng: rand.New(rand.NewPCG(seed, 0x6f6f64677561726))}
	s.w = math.Exp(math.Log(s.uniform()) / float64(size))
	s.next = int64(size) - 1 + s.skip() // 0-based: the first candidate can be item size
	return s
}

// uniform returns a number in (0, 1).
func (s *sampler) uniform() float64 {
	for {
		if u := s.rng.Float64(); u > 0 {
			return u
		}
	}
}

func (s *sampler) skip() int64 {
	return int64(math.Floor(math.Log(s.uniform())/math.Log1p(-s.w))) + 1
}

// offer takes the next item of the stream and returns the reservoir slot to store it in, or -1
// to drop it.
func (s *sampler) offer() int {
	i := s.seen
	s.seen++
	if i < int64(s.size) {
		return int(i)
	}
	if i < s.next {
		return -1
	}
	slot := s.rng.IntN(s.size)
	s.w *= math.Exp(math.Log(s.uniform()) / float64(s.size))
	s.next += s.skip()
	return slot
}

// dropsAhead reports how many of the next n items offer would drop in a row, so that a caller can
// jump over them (calling drop) instead of offering them one by one.
func (s *sampler) dropsAhead(n int) int {
	if s.seen < int64(s.size) {
		return 0
	}
	d := s.next - s.seen
	if d > int64(n) {
		return n
	}
	return int(d)
}

// drop passes over n items that dropsAhead said would be dropped.
func (s *sampler) drop(n int) { s.seen += int64(n) }

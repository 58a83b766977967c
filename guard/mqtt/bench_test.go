package mqtt

import (
	"slices"
	"testing"
	"time"

	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
)

// BenchmarkAlertLatency measures the time from Alert to the event's arrival at a subscriber,
// through a local mosquitto: the outbox's fsynced writes, the sender, the broker and back.
// One alert is in flight at a time. It reports the median and 99th percentile in milliseconds.
func BenchmarkAlertLatency(b *testing.B) {
	for _, bc := range []struct {
		name string
		jpeg int // frame size in bytes; 0: no frame
	}{
		{"event", 0},
		{"event+frame32k", 32 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := mqtttest.StartMosquitto(b)
			topics := NewTopics("oodguard", device)
			sub := mqtttest.Subscribe(b, m.URL(), mqtttest.SubscribeOptions{}, topics.Events())
			p, _ := startPublisher(b, testConfig(m.URL()), b.TempDir(), nil)
			var jpeg []byte
			if bc.jpeg > 0 {
				jpeg = make([]byte, bc.jpeg)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				ev := testEvent(uint64(i))
				start := time.Now()
				if err := p.Alert(ev, jpeg); err != nil {
					b.Fatal(err)
				}
				for {
					msg := sub.Next(timeout)
					got, err := event.Decode(msg.Payload)
					if err != nil {
						b.Fatal(err)
					}
					if got.ID == ev.ID {
						break
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			ms := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}

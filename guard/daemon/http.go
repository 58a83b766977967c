package daemon

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handler serves /metrics for Prometheus and /healthz (200 while inference is healthy, 503 when
// one inference has run longer than guard.stuck_timeout).
func (d *Daemon) handler() http.Handler {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "oodguard", Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "oodguard", Name: name, Help: help}, f))
	}
	counter("frames_total", "Frames scored.", func() float64 { return float64(d.pipe.Snapshot().Frames) })
	counter("frames_flagged_total", "Frames flagged as out of distribution.", func() float64 { return float64(d.pipe.Snapshot().Flagged) })
	counter("frames_bad_total", "Frames skipped because they could not be read, decoded or scored.", func() float64 { return float64(d.pipe.Snapshot().BadFrames) })
	counter("alert_errors_total", "Alerts that could not be queued.", func() float64 { return float64(d.pipe.Snapshot().AlertErrors) })
	gauge("frames_per_second", "Frames scored per second, over the last ten seconds.", func() float64 { return d.pipe.Snapshot().FPS })
	gauge("inference_p50_seconds", "Median inference time over the last 1024 frames.", func() float64 { return d.pipe.Snapshot().InferenceP50Ms / 1000 })
	gauge("inference_p99_seconds", "99th percentile inference time over the last 1024 frames.", func() float64 { return d.pipe.Snapshot().InferenceP99Ms / 1000 })
	gauge("outbox_messages", "Messages waiting in the outbox.", func() float64 { return float64(d.box.Len()) })
	gauge("outbox_bytes", "Bytes waiting in the outbox.", func() float64 { return float64(d.box.Bytes()) })
	counter("outbox_dropped_total", "Messages the outbox dropped to stay within its limits.", func() float64 { return float64(d.box.Dropped()) })
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		busy := d.pipe.InferenceRunning()
		ok := busy <= d.cfg.Guard.StuckTimeout
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		s := d.pipe.Snapshot()
		json.NewEncoder(w).Encode(map[string]any{
			"ok": ok, "model": s.Model, "frames": s.Frames, "inference_running_ms": busy.Milliseconds(), "outbox": d.box.Len(),
		})
	})
	return mux
}

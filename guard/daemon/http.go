package daemon

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is the body of /healthz. OK is true when inference is healthy (no inference has run
// longer than guard.stuck_timeout), the frame source is online and the MQTT broker connected;
// /healthz answers 200 then and 503 otherwise, and the fields say which part is down.
type Health struct {
	OK                 bool         `json:"ok"`
	Model              string       `json:"model"`
	Frames             uint64       `json:"frames"`
	InferenceRunningMs int64        `json:"inference_running_ms"`
	InferenceOK        bool         `json:"inference_ok"`
	Source             SourceStatus `json:"source"`
	MQTT               string       `json:"mqtt"` // "connected" or "disconnected"
	MQTTSince          time.Time    `json:"mqtt_since"`
	Outbox             int          `json:"outbox"`
}

func (d *Daemon) health() Health {
	busy := d.pipe.InferenceRunning()
	s := d.pipe.Snapshot()
	conn := d.pub.Status()
	h := Health{
		Model: s.Model, Frames: s.Frames, InferenceRunningMs: busy.Milliseconds(), InferenceOK: busy <= d.cfg.Guard.StuckTimeout,
		Source: d.src.Status(), MQTT: "disconnected", MQTTSince: conn.Since.UTC(), Outbox: d.box.Len(),
	}
	if conn.Connected {
		h.MQTT = "connected"
	}
	h.OK = h.InferenceOK && h.Source.State == SourceOnline && conn.Connected
	return h
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// handler serves /metrics for Prometheus and /healthz (see Health).
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
	gauge("source_online", "1 while the frame source is open, 0 while it is offline (being retried).", func() float64 {
		return boolFloat(d.src.Status().State == SourceOnline)
	})
	counter("source_open_failures_total", "Failed attempts to open the frame source.", func() float64 { return float64(d.src.Reopens()) })
	gauge("mqtt_connected", "1 while connected to the MQTT broker, 0 otherwise.", func() float64 { return boolFloat(d.pub.Status().Connected) })
	counter("alerts_not_stored_total", "Alert messages that could not be written to the outbox's disk (held in memory instead; lost if the daemon stops before the disk has room).",
		func() float64 { return float64(d.box.NotStored()) })
	gauge("outbox_memory_messages", "Messages held in memory because the disk refused them.", func() float64 { return float64(d.box.InMemory()) })
	counter("outbox_dropped_total", "Messages the outbox dropped to stay within its limits.", func() float64 { return float64(d.box.Dropped()) })
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		h := d.health()
		w.Header().Set("Content-Type", "application/json")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	return mux
}

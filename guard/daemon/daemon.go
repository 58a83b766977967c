// Package daemon wires oodguardd together: it loads ONNX Runtime, the model and its
// calibration, opens the frame source, the outbox and the MQTT publisher (and, when asked, an
// embedded broker), runs the frame pipeline, serves /metrics and /healthz, and talks to systemd
// (readiness and watchdog). Run returns when the context ends or a finite source is done, after
// flushing the outbox.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/firmware/ota"
	"github.com/oodguard/oodguard/guard/broker"
	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt"
	"github.com/oodguard/oodguard/guard/outbox"
	"github.com/oodguard/oodguard/guard/pipeline"
	ort "github.com/oodguard/oodguard/runtime"
	"go.uber.org/zap"
)

// ErrStuck is returned when an inference ran longer than guard.stuck_timeout.
var ErrStuck = errors.New("inference stuck")

// FlushTimeout bounds how long shutdown waits for the outbox to drain.
const FlushTimeout = 10 * time.Second

// brokerGrace is how long an embedded broker may keep forwarding after the publisher closed.
const brokerGrace = 300 * time.Millisecond

// Daemon is a running oodguardd.
type Daemon struct {
	cfg      Config
	log      *zap.Logger
	start    time.Time
	version0 string // the daemon's own version

	clf     *ort.Classifier
	cal     *calibrate.Calibration
	version string
	model   *pipeline.Model
	store   *ota.Store

	cmds   *commands
	src    *supervised
	box    *outbox.Outbox
	pub    *mqtt.Publisher
	broker *broker.Broker
	pipe   *pipeline.Pipeline
	http   *http.Server
}

// Run starts the daemon and blocks until ctx ends, the source ends, or a part fails. version
// is the daemon's own version, which bundles may require a minimum of.
func Run(ctx context.Context, cfg Config, log *zap.Logger, version string) (err error) {
	d := &Daemon{cfg: cfg, log: log, start: time.Now(), version0: version}
	defer func() { err = errors.Join(err, d.close()) }()
	if err := d.open(ctx); err != nil {
		return err
	}
	return d.run(ctx)
}

// open loads everything; on error the caller closes what was opened.
func (d *Daemon) open(ctx context.Context) error {
	cfg := d.cfg
	lib, err := ort.Setup(cfg.Model.ORTLib)
	if err != nil {
		return err
	}
	d.log.Info("ONNX Runtime loaded", zap.String("library", lib), zap.String("version", ort.Version()))
	if cfg.EmbeddedBroker.Listen != "" {
		if d.broker, err = broker.Start(cfg.EmbeddedBroker.Listen, d.log.Named("broker")); err != nil {
			return err
		}
	}
	if d.box, err = outbox.Open(cfg.Outbox.Dir, cfg.Outbox.Limits, d.log.Named("outbox")); err != nil {
		return err
	}
	if d.pub, err = mqtt.New(cfg.MQTT, d.box, d.log.Named("mqtt")); err != nil {
		return err
	}
	if cfg.OTA.Dir != "" {
		d.cmds = newCommands(cfg.OTA.Dir, d.log.Named("ota"), d.publishCommandResult)
		d.pub.Handle(d.pub.Topics().OTAUpdate(), func(_ string, payload []byte) {
			d.cmds.offer(append([]byte(nil), payload...))
		})
	}
	if err := d.pub.Start(ctx); err != nil {
		return err
	}

	if cfg.OTA.Dir != "" {
		err = d.openOTA(ctx)
	} else {
		d.clf, d.cal, err = d.loadModel(cfg.Model.Path, cfg.Model.Calibration)
		d.version = cfg.Model.Version
	}
	if err != nil {
		return err
	}
	if d.version == "" {
		d.version = "sha256:" + d.clf.SHA256()[:12]
	}
	d.model, err = pipeline.NewModel(d.clf, d.cal.Preprocess, d.cal.Score, d.cal.Threshold, cfg.Guard.Debounce, d.version)
	if err != nil {
		return fmt.Errorf("model %s: %w", d.clf.Path(), err)
	}
	d.log.Info("model loaded", zap.String("model", d.clf.Path()), zap.String("version", d.version),
		zap.Stringer("score", d.cal.Score), zap.Float64("threshold", d.cal.Threshold))

	slog := d.log.Named("source")
	d.src = newSupervised(sourceName(cfg.Source), func() (device.Source, error) { return openSource(cfg.Source, slog) },
		cfg.Source.RetryMin, cfg.Source.RetryMax, slog, d.publishSourceStatus)
	d.pipe = pipeline.New(pipeline.Config{
		Device: cfg.DeviceID, RunID: event.NewRunID(), SendFrames: cfg.Guard.SendFrames, JPEGQuality: cfg.Guard.JPEGQuality,
	}, d.src, d.model, d.pub, d.log.Named("pipeline"))
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		d.http = &http.Server{Handler: d.handler(), ReadHeaderTimeout: 5 * time.Second}
		go d.http.Serve(ln)
		d.log.Info("serving /metrics and /healthz", zap.String("addr", ln.Addr().String()))
	}
	return nil
}

// publishSourceStatus queues the source's state, retained, on <prefix>/<device>/source.
func (d *Daemon) publishSourceStatus(s SourceStatus) {
	b, err := json.Marshal(s)
	if err == nil {
		err = d.pub.Queue(d.pub.Topics().Source(), b, true)
	}
	if err != nil {
		d.log.Warn("source state not queued", zap.Error(err))
	}
}

// loadModel opens a model and its calibration and checks that they belong together.
func (d *Daemon) loadModel(model, calibration string) (*ort.Classifier, *calibrate.Calibration, error) {
	cal, err := calibrate.LoadCalibration(calibration)
	if err != nil {
		return nil, nil, err
	}
	clf, err := ort.Open(model, ort.Options{IntraOpThreads: d.cfg.Model.IntraOpThreads, Provider: d.cfg.Model.Provider, Logger: d.log.Named("runtime")})
	if err != nil {
		return nil, nil, err
	}
	if err := cal.CheckModel(clf.SHA256()); err != nil {
		clf.Close()
		return nil, nil, fmt.Errorf("calibration %s, model %s: %w", calibration, model, err)
	}
	return clf, cal, nil
}

// run runs the pipeline with the watchdog and stats beside it.
func (d *Daemon) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.watch(ctx, cancel) }()
	go func() { defer wg.Done(); d.publishStats(ctx) }()
	if d.store != nil {
		wg.Add(2)
		go func() { defer wg.Done(); d.updates(ctx, cancel) }()
		go func() { defer wg.Done(); d.commitWhenHealthy(ctx, everySecond(ctx)) }()
	}
	notifyReady(d.log)
	err := d.pipe.Run(ctx)
	cancel(nil)
	wg.Wait()
	s := d.pipe.Snapshot()
	d.log.Info("frame loop ended", zap.Uint64("frames", s.Frames), zap.Uint64("flagged", s.Flagged),
		zap.Uint64("bad_frames", s.BadFrames), zap.Float64("inference_p50_ms", s.InferenceP50Ms), zap.Float64("inference_p99_ms", s.InferenceP99Ms))
	if cause := context.Cause(ctx); errors.Is(cause, ErrStuck) || errors.Is(cause, ErrRestart) {
		return cause
	}
	return err
}

// watch pings the systemd watchdog while inference is healthy and stops the daemon when an
// inference has run for longer than guard.stuck_timeout: ONNX Runtime cannot interrupt a run,
// so the way out is a restart by systemd (Restart=on-failure).
func (d *Daemon) watch(ctx context.Context, stop context.CancelCauseFunc) {
	every := watchdogInterval(d.log)
	if every == 0 || every > d.cfg.Guard.StuckTimeout/4 {
		every = max(d.cfg.Guard.StuckTimeout/4, 100*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if busy := d.pipe.InferenceRunning(); busy > d.cfg.Guard.StuckTimeout {
			d.log.Error("inference stuck, stopping for a restart", zap.Duration("running", busy))
			stop(fmt.Errorf("%w: one inference has run for %v (guard.stuck_timeout %v)", ErrStuck, busy.Round(time.Millisecond), d.cfg.Guard.StuckTimeout))
			return
		}
		notifyWatchdog()
	}
}

// publishStats sends the stats message every stats_interval.
func (d *Daemon) publishStats(ctx context.Context) {
	if d.cfg.StatsInterval == 0 {
		return
	}
	t := time.NewTicker(d.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.pub.Stats(d.stats()); err != nil {
				d.log.Debug("stats not sent", zap.Error(err))
			}
		}
	}
}

func (d *Daemon) stats() event.Stats {
	s := d.pipe.Snapshot()
	return event.Stats{
		Time: time.Now().UTC(), Device: d.cfg.DeviceID, Model: s.Model, Frames: s.Frames, Flagged: s.Flagged,
		Dropped: s.BadFrames, FPS: s.FPS, InferenceP50Ms: s.InferenceP50Ms, InferenceP99Ms: s.InferenceP99Ms,
		OutboxLen: d.box.Len(), OutboxBytes: d.box.Bytes(), OutboxDropped: d.box.Dropped(),
		UptimeS: time.Since(d.start).Seconds(),
	}
}

// close stops everything in reverse order; the publisher gets FlushTimeout to drain the outbox.
func (d *Daemon) close() error {
	var errs []error
	if d.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, d.http.Shutdown(ctx))
		cancel()
	}
	if d.src != nil {
		errs = append(errs, d.src.Close())
	}
	if d.pub != nil {
		ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
		if err := d.pub.Close(ctx); err != nil {
			d.log.Warn("outbox not fully flushed; the rest is sent after the next start", zap.Error(err), zap.Int("left", d.box.Len()))
		}
		cancel()
	}
	if d.box != nil {
		errs = append(errs, d.box.Close())
	}
	if d.broker != nil {
		// Give the embedded broker a moment to hand the last messages ("offline" among them) to
		// its subscribers before it closes their connections.
		time.Sleep(brokerGrace)
		errs = append(errs, d.broker.Close())
	}
	if d.model != nil {
		errs = append(errs, d.model.Close())
	}
	if d.clf != nil {
		errs = append(errs, d.clf.Close())
	}
	return errors.Join(errs...)
}

// everySecond ticks once a second until ctx ends.
func everySecond(ctx context.Context) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
	}()
	return c
}

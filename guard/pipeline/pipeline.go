// Package pipeline is the daemon's frame loop: frame -> tensor -> logits -> score -> decision ->
// alert. It reads frames from a device.Source, preprocesses them into the model's input, runs
// the model with ONNX Runtime one frame at a time, scores the logits (or reads the score the
// graph computed, for a graph score), debounces the decision and hands an alert (with the frame
// as JPEG) to an Alerter for every frame it flags.
//
// The loop makes no allocation per frame once running, except for flagged frames, whose JPEG
// and event are built for the alert. A bad frame (unreadable, undecodable) is counted and
// skipped; the loop goes on.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/decision"
	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/outbox"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/score"
	"go.uber.org/zap"
)

// Alerter takes the alert of a flagged frame; guard/mqtt.Publisher is one. It must not block
// for long: the frame loop waits for it.
type Alerter interface {
	Alert(ev event.Event, jpeg []byte) error
}

// Model is everything the loop needs to turn a frame into a decision. It is built once per
// model (see NewModel) and replaced as a whole on a model update.
type Model struct {
	Version   string // shown in events and stats: a bundle version or a sha256 prefix
	ScoreKind score.Kind
	Threshold float64

	runner  *ort.Runner
	pre     *preprocess.Preprocessor
	score   score.SampleFunc
	decider *decision.Decider
}

// NewModel prepares clf for the loop: a batch-1 runner, the preprocessor of spec, the score and
// the debounce window. The spec must produce the model's input shape.
func NewModel(clf *ort.Classifier, spec preprocess.Spec, sc score.Spec, threshold float64, window int, version string) (*Model, error) {
	if err := clf.CheckInput(spec.Channels, spec.Height, spec.Width); err != nil {
		return nil, fmt.Errorf("pipeline: preprocessing gives %dx%dx%d: %w", spec.Channels, spec.Height, spec.Width, err)
	}
	pre, err := preprocess.New(spec)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	f, err := sc.SampleFunc()
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if err := sc.CheckModel(clf.Shape().Score); err != nil {
		return nil, fmt.Errorf("pipeline: model %s: %w", clf.Path(), err)
	}
	dec, err := decision.New(threshold, window)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	r, err := clf.NewRunner(1)
	if err != nil {
		return nil, err
	}
	return &Model{Version: version, ScoreKind: sc.Kind, Threshold: threshold, runner: r, pre: pre, score: f, decider: dec}, nil
}

// Close releases the model's runner; the classifier stays open.
func (m *Model) Close() error { return m.runner.Close() }

// Config holds the loop's settings.
type Config struct {
	Device      string // device id, in events
	RunID       string // this daemon run's id (event.NewRunID), part of every event id
	SendFrames  bool   // attach the flagged frame as JPEG
	JPEGQuality int    // for frames that arrive as pixels; 85 when 0
}

// Pipeline runs the frame loop. Run it once at a time; Snapshot and InferenceRunning may be
// called from other goroutines meanwhile. A new model is applied by restarting the daemon (see
// guard/daemon), so the model is fixed for the Pipeline's life.
type Pipeline struct {
	cfg     Config
	src     device.Source
	alerter Alerter
	log     *zap.Logger

	mu    sync.Mutex // guards stats
	model *Model
	stats counters

	busySince atomic.Int64 // unix nanoseconds when the running inference started; 0 when none runs
	jpegBuf   bytes.Buffer
	alertLog  *rateLimit // alerts that could not be queued (or only in memory)
}

type counters struct {
	frames, flagged, bad, alertErrs uint64
	lat                             latency
	fps                             rate
}

// New returns a Pipeline over src that runs model and alerts through alerter.
func New(cfg Config, src device.Source, model *Model, alerter Alerter, log *zap.Logger) *Pipeline {
	if cfg.JPEGQuality == 0 {
		cfg.JPEGQuality = 85
	}
	if log == nil {
		log = zap.NewNop()
	}
	p := &Pipeline{cfg: cfg, src: src, alerter: alerter, log: log, model: model, alertLog: newRateLimit(10 * time.Second)}
	return p
}

// InferenceRunning returns how long the current inference has been running, or 0 when none
// is. A watchdog compares it with a timeout to find a stuck inference.
func (p *Pipeline) InferenceRunning() time.Duration {
	since := p.busySince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// Run reads and scores frames until ctx ends (returns nil), a finite source ends (returns nil)
// or the source fails for good (returns its error).
func (p *Pipeline) Run(ctx context.Context) error {
	var f device.Frame
	badLog := newRateLimit(10 * time.Second)
	for {
		err := p.src.Next(ctx, &f)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			p.log.Info("source finished")
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, device.ErrBadFrame):
			p.countBad()
			if badLog.allow() {
				p.log.Warn("skipping bad frame", zap.Error(err))
			}
			continue
		default:
			return fmt.Errorf("pipeline: source: %w", err)
		}
		if err := p.frame(&f); err != nil {
			p.countBad()
			if badLog.allow() {
				p.log.Warn("skipping frame", zap.String("frame", f.Name), zap.Error(err))
			}
		}
	}
}

// frame scores one frame and raises its alert.
func (p *Pipeline) frame(f *device.Frame) error {
	m := p.model
	if err := m.pre.Process(m.runner.Input(), f.Image); err != nil {
		return err
	}
	start := time.Now()
	p.busySince.Store(start.UnixNano())
	logits, err := m.runner.Run()
	p.busySince.Store(0)
	took := time.Since(start)
	if err != nil {
		return err
	}
	var out float32
	if outs := m.runner.Scores(); outs != nil {
		out = outs[0]
	}
	s, err := m.score(logits, out)
	if err != nil {
		return err
	}
	d, err := m.decider.Add(s)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.stats.frames++
	p.stats.lat.add(took)
	p.stats.fps.tick(start)
	if d.OOD {
		p.stats.flagged++
	}
	p.mu.Unlock()
	if !d.OOD {
		return nil
	}
	return p.alert(f, m, d)
}

// alert builds the event and JPEG of a flagged frame and hands them to the alerter. An alert
// the alerter kept in memory only (outbox.ErrInMemory) is queued; any other error loses it and
// is counted in AlertErrors. Either is logged here; the error returned is the JPEG encoder's.
func (p *Pipeline) alert(f *device.Frame, m *Model, d decision.Decision) error {
	ev := event.Event{
		ID: event.NewID(p.cfg.Device, p.cfg.RunID, f.ID), Time: f.Time, Device: p.cfg.Device, Model: m.Version,
		FrameID: f.ID, Source: f.Name, ScoreKind: string(m.ScoreKind), Score: d.Score, Median: d.Median,
		Threshold: m.Threshold, Decision: event.DecisionOOD,
	}
	var img []byte
	if p.cfg.SendFrames {
		if f.Encoded != nil {
			img = append([]byte(nil), f.Encoded...)
		} else {
			p.jpegBuf.Reset()
			if err := jpeg.Encode(&p.jpegBuf, f.Image, &jpeg.Options{Quality: p.cfg.JPEGQuality}); err != nil {
				return fmt.Errorf("encode frame %d as JPEG: %w", f.ID, err)
			}
			img = append([]byte(nil), p.jpegBuf.Bytes()...)
		}
	}
	if err := p.alerter.Alert(ev, img); err != nil {
		// The frame was scored: an alert that cannot be queued is not a bad frame. It is
		// logged here at ERROR, rate-limited, and counted when it is lost.
		lost := !errors.Is(err, outbox.ErrInMemory)
		if lost {
			p.mu.Lock()
			p.stats.alertErrs++
			p.mu.Unlock()
		}
		if p.alertLog.allow() {
			if lost {
				p.log.Error("alert lost: it could not be queued", zap.String("frame", f.Name), zap.Uint64("frame_id", f.ID), zap.Error(err))
			} else {
				// Queued all the same, in memory: an operator must know all the same.
				p.log.Error("alert not stored on disk; held in memory until the disk has room (lost if the daemon stops first)",
					zap.String("frame", f.Name), zap.Uint64("frame_id", f.ID), zap.Error(err))
			}
		}
	}
	return nil
}

func (p *Pipeline) countBad() {
	p.mu.Lock()
	p.stats.bad++
	p.mu.Unlock()
}

// Snapshot is the loop's counters at one moment.
type Snapshot struct {
	Model          string
	Frames         uint64
	Flagged        uint64
	BadFrames      uint64
	AlertErrors    uint64
	FPS            float64
	InferenceP50Ms float64
	InferenceP99Ms float64
}

// Snapshot returns the counters since the loop started.
func (p *Pipeline) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	p50, p99 := p.stats.lat.percentiles()
	return Snapshot{
		Model: p.model.Version, Frames: p.stats.frames, Flagged: p.stats.flagged, BadFrames: p.stats.bad,
		AlertErrors: p.stats.alertErrs, FPS: p.stats.fps.perSecond(time.Now()),
		InferenceP50Ms: ms(p50), InferenceP99Ms: ms(p99),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

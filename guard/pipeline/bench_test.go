package pipeline

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/detect/detecttest"
	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/device/source"
	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/guard/outbox"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// limited ends a source (io.EOF) after n frames.
type limited struct {
	device.Source
	n, i int
}

func (l *limited) Next(ctx context.Context, f *device.Frame) error {
	if l.i >= l.n {
		return io.EOF
	}
	l.i++
	return l.Source.Next(ctx, f)
}

type nopAlerter struct{}

func (nopAlerter) Alert(event.Event, []byte) error { return nil }

// BenchmarkPipelineVsBare runs the daemon's frame loop over the sample frames (a looping folder
// source, served from its decoded-frame cache after the first pass) and, interleaved, a bare
// ONNX Runtime loop of batch-1 runs on the same model and threads with the input already in
// place. Reported:
//
//	ratio          pipeline frames/s / bare frames/s (target >= 0.95)
//	frames/s       pipeline frames per second
//	bare-frames/s  bare ONNX Runtime runs per second
//	allocs/frame   heap allocations per frame in the loop (target 0; no frame is flagged here)
//	rss-MB         resident memory of the benchmark process after the runs
func BenchmarkPipelineVsBare(b *testing.B) {
	runtimetest.Setup(b)
	root := runtimetest.RepoRoot(b)
	imagenet := preprocess.Spec{Width: 224, Height: 224, Channels: 3, Resize: preprocess.ResizeCenterCrop,
		Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
	for _, m := range []struct {
		model string
		spec  preprocess.Spec
		chunk int
	}{{"cnn28", preprocess.FashionMNIST(), 200}, {"cnn28.knn", preprocess.FashionMNIST(), 200}, {"cnn28.vim", preprocess.FashionMNIST(), 200}, {"cnn28.knn10k", preprocess.FashionMNIST(), 200},
		{"resnet32", preprocess.CIFAR10(), 200}, {"resnet50", imagenet, 4}} {
		b.Run(m.model+"/threads1", func(b *testing.B) {
			path := filepath.Join(root, "testdata/models", m.model+".onnx")
			sc := score.Spec{Kind: score.KindEnergy}
			if method, ok := strings.CutPrefix(m.model, "cnn28."); ok {
				// A detector written into cnn28's graph, scored by its output (detecttest).
				w := detecttest.Write(b, method)
				path, sc = w.Path, w.Score
			}
			if m.model == "resnet50" {
				// ImageNet size, random weights (testdata/make_resnet50.py, run by make bench).
				path = filepath.Join(root, ".cache/models/resnet50.onnx")
				if _, err := os.Stat(path); err != nil {
					b.Skipf("no %s: run testdata/make_resnet50.py", path)
				}
			}
			clf, err := ort.Open(path, ort.Options{IntraOpThreads: 1, InterOpThreads: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer clf.Close()
			src, err := source.OpenFolder(filepath.Join(root, "testdata/frames"), source.FolderOptions{Loop: true}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			model, err := NewModel(clf, m.spec, sc, -1e30, 5, "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer model.Close()
			bare, err := clf.NewRunner(1)
			if err != nil {
				b.Fatal(err)
			}
			defer bare.Close()
			chunk := m.chunk
			p := New(Config{Device: "bench", RunID: "r"}, &limited{Source: src, n: 40}, model, nopAlerter{}, nil)
			p.Run(context.Background()) // warm up: fills the frame cache

			var pipe, raw time.Duration
			var mallocs uint64
			var ms runtime.MemStats
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.src = &limited{Source: src, n: chunk}
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				t := time.Now()
				p.Run(context.Background())
				pipe += time.Since(t)
				runtime.ReadMemStats(&ms)
				mallocs += ms.Mallocs - before
				t = time.Now()
				for j := 0; j < chunk; j++ {
					if _, err := bare.Run(); err != nil {
						b.Fatal(err)
					}
				}
				raw += time.Since(t)
			}
			b.StopTimer()
			frames := float64(b.N * chunk)
			b.ReportMetric(raw.Seconds()/pipe.Seconds(), "ratio")
			b.ReportMetric(frames/pipe.Seconds(), "frames/s")
			b.ReportMetric(frames/raw.Seconds(), "bare-frames/s")
			b.ReportMetric(float64(mallocs)/frames, "allocs/frame")
			b.ReportMetric(rssMB(), "rss-MB")
		})
	}
}

// BenchmarkFrameToPublish flags every frame and measures, per alert, the time from the frame's
// capture (Frame.Time) to the subscriber receiving its event from a local mosquitto, through the
// outbox (fsync included) and the MQTT publisher. Reported: p50-ms, p99-ms.
func BenchmarkFrameToPublish(b *testing.B) {
	runtimetest.Setup(b)
	root := runtimetest.RepoRoot(b)
	mq := mqtttest.StartMosquitto(b)
	sub := mqtttest.Subscribe(b, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/bench/events")
	clf, err := ort.Open(filepath.Join(root, "testdata/models/cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer clf.Close()
	src, err := source.OpenFolder(filepath.Join(root, "testdata/frames"), source.FolderOptions{Loop: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	model, err := NewModel(clf, preprocess.FashionMNIST(), score.Spec{Kind: score.KindEnergy}, 1e30, 1, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	box, err := outbox.Open(b.TempDir(), outbox.Limits{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer box.Close()
	cfg := mqtt.DefaultConfig()
	cfg.Broker, cfg.DeviceID = mq.URL(), "bench"
	pub, err := mqtt.New(cfg, box, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer pub.Close(context.Background())
	p := New(Config{Device: "bench", RunID: "r", SendFrames: true}, nil, model, pub, nil)

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.src = &limited{Source: src, n: 1}
		p.Run(context.Background())
		m := sub.Next(10 * time.Second)
		ev, err := event.Decode(m.Payload)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, m.At.Sub(ev.Time))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(q float64) float64 {
		i := max(0, min(len(lat)-1, int(math.Ceil(q*float64(len(lat))))-1))
		return float64(lat[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// rssMB reads VmRSS from /proc/self/status.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

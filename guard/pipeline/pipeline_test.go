package pipeline

import (
	"bytes"
	"context"
	"image/jpeg"
	"runtime"

	"fmt"
	"github.com/oodguard/oodguard/device/source"
	"image"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/event"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// listSource serves fixed images; a nil image is a bad frame.
type listSource struct {
	imgs []image.Image
	i    int
}

func (s *listSource) Next(ctx context.Context, f *device.Frame) error {
	if s.i >= len(s.imgs) {
		return io.EOF
	}
	img := s.imgs[s.i]
	s.i++
	name := fmt.Sprintf("frame-%d", s.i)
	if img == nil {
		return &device.FrameError{Name: name, Err: fmt.Errorf("truncated")}
	}
	f.ID, f.Time, f.Image, f.Name, f.Encoded = uint64(s.i), time.Now(), img, name, nil
	return nil
}

func (s *listSource) Close() error { return nil }

type recorder struct {
	events []event.Event
	jpegs  [][]byte
}

func (r *recorder) Alert(ev event.Event, jpeg []byte) error {
	r.events = append(r.events, ev)
	r.jpegs = append(r.jpegs, jpeg)
	return nil
}

func grayFrame(seed int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range g.Pix {
		g.Pix[i] = uint8((i*seed + seed*seed) % 256)
	}
	return g
}

func openCNN(t testing.TB) *ort.Classifier {
	runtimetest.Setup(t)
	clf, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clf.Close() })
	return clf
}

// offlineScores scores images one by one, as the calibration tools would.
func offlineScores(t *testing.T, clf *ort.Classifier, imgs []image.Image) []float64 {
	pre, _ := preprocess.New(preprocess.FashionMNIST())
	r, _ := clf.NewRunner(1)
	defer r.Close()
	var out []float64
	for _, img := range imgs {
		if img == nil {
			continue
		}
		pre.Process(r.Input(), img)
		z, err := r.Run()
		if err != nil {
			t.Fatal(err)
		}
		s, _ := score.Energy(z, 1)
		out = append(out, s)
	}
	return out
}

func TestAlertsAreTheFramesBelowThreshold(t *testing.T) {
	clf := openCNN(t)
	var imgs []image.Image
	for i := 1; i <= 30; i++ {
		imgs = append(imgs, grayFrame(i))
		if i == 7 {
			imgs = append(imgs, nil) // a bad frame in the middle
		}
	}
	scores := offlineScores(t, clf, imgs)
	// A threshold at the median score flags about half the frames.
	sorted := slices.Sorted(slices.Values(scores))
	th := sorted[len(sorted)/2]
	m, err := NewModel(clf, preprocess.FashionMNIST(), score.Spec{Kind: score.KindEnergy}, th, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec := &recorder{}
	p := New(Config{Device: "cam", RunID: "run1", SendFrames: true}, &listSource{imgs: imgs}, m, rec, nil)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []int
	for i, s := range scores {
		if s < th {
			want = append(want, i)
		}
	}
	if len(rec.events) != len(want) {
		t.Fatalf("%d alerts, want %d", len(rec.events), len(want))
	}
	for k, ev := range rec.events {
		if err := ev.Validate(); err != nil {
			t.Errorf("event %d: %v", k, err)
		}
		if ev.Score >= th || ev.Decision != event.DecisionOOD || ev.Threshold != th || ev.Device != "cam" {
			t.Errorf("event %+v", ev)
		}
		if len(rec.jpegs[k]) < 100 || rec.jpegs[k][0] != 0xff || rec.jpegs[k][1] != 0xd8 {
			t.Errorf("event %d: frame is not a JPEG (%d bytes)", k, len(rec.jpegs[k]))
		}
	}
	snap := p.Snapshot()
	if snap.Frames != 30 || snap.BadFrames != 1 || snap.Flagged != uint64(len(want)) {
		t.Errorf("snapshot %+v", snap)
	}
}

// TestNoAllocationsPerFrame runs the loop over 100 and over 1100 synthetic frames: the heap
// allocations of the two runs (goroutine and channels of each Run included) must be the same.
func TestNoAllocationsPerFrame(t *testing.T) {
	clf := openCNN(t)
	m, err := NewModel(clf, preprocess.FashionMNIST(), score.Spec{Kind: score.KindEnergy}, -1e30, 5, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkNoAllocationsPerFrame(t, m)
}

func checkNoAllocationsPerFrame(t *testing.T, m *Model) {
	t.Helper()
	for _, gray := range []bool{true, false} {
		src, err := source.NewSynthetic(source.SyntheticOptions{Width: 64, Height: 48, Gray: gray})
		if err != nil {
			t.Fatal(err)
		}
		p := New(Config{Device: "cam", RunID: "run1", SendFrames: true}, nil, m, &recorder{}, nil)
		mallocs := func(n int) uint64 {
			p.src = &limited{Source: src, n: n}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.Mallocs
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&ms)
			return ms.Mallocs - before
		}
		mallocs(50) // warm up: buffers reach their size
		// The fewest of three runs each: the runtime allocates now and then on its own (more
		// under load), while one allocation per frame would show in every run.
		least := func(n int) uint64 { return min(mallocs(n), mallocs(n), mallocs(n)) }
		few, many := least(100), least(1100)
		if many > few+5 { // a little slack for the runtime's own bookkeeping
			t.Errorf("gray=%v: %d allocations for 100 frames, %d for 1100", gray, few, many)
		}
	}
}

func TestAlertFrameFromPixels(t *testing.T) {
	clf := openCNN(t)
	m, err := NewModel(clf, preprocess.FashionMNIST(), score.Spec{Kind: score.KindEnergy}, 1e30, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	src, _ := source.NewSynthetic(source.SyntheticOptions{Width: 40, Height: 30, Frames: 3})
	rec := &recorder{}
	if err := New(Config{Device: "cam", RunID: "r", SendFrames: true}, src, m, rec, nil).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.jpegs) != 3 {
		t.Fatalf("%d alerts", len(rec.jpegs))
	}
	for i, b := range rec.jpegs {
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 40 || img.Bounds().Dy() != 30 {
			t.Errorf("alert %d: frame %v, %v", i, img.Bounds(), err)
		}
	}
}

func TestModelRejectsWrongSpec(t *testing.T) {
	clf := openCNN(t)
	if _, err := NewModel(clf, preprocess.CIFAR10(), score.Spec{Kind: score.KindEnergy}, 0, 1, "x"); err == nil {
		t.Fatal("a 3x32x32 spec was accepted for a 1x28x28 model")
	}
}

func TestLatencyPercentiles(t *testing.T) {
	var l latency
	for i := 1; i <= 100; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	p50, p99 := l.percentiles()
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("p50 %v p99 %v", p50, p99)
	}
}

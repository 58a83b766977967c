package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	ortgo "github.com/yalue/onnxruntime_go"
)

// BenchmarkInference runs batches through a runtime.Runner and through a bare onnxruntime_go
// AdvancedSession with bound tensors (the fastest loop the wrapper offers) on the same model,
// batch and threads, in alternating blocks so both see the same machine noise. It reports
//
//	ratio        Runner throughput / bare throughput (target >= 0.98)
//	img/s        Runner images per second
//	bare-img/s   bare images per second
//	allocs/call  Go allocations per Runner.Run (target 0)
func BenchmarkInference(b *testing.B) {
	runtimetest.Setup(b)
	const threads = 2
	for _, m := range []struct {
		name  string
		batch int
	}{{"cnn28", 64}, {"resnet32", 64}, {"resnet50", 8}} {
		b.Run(fmt.Sprintf("%s/batch%d/threads%d", m.name, m.batch, threads), func(b *testing.B) {
			path := runtimetest.Model(b, m.name+".onnx")
			if m.name == "resnet50" {
				// ImageNet size, random weights, made by testdata/make_resnet50.py (make bench).
				path = filepath.Join(runtimetest.RepoRoot(b), ".cache", "models", "resnet50.onnx")
				if _, err := os.Stat(path); err != nil {
					b.Skipf("no %s: run testdata/make_resnet50.py (make bench does)", path)
				}
			}
			opts := ort.Options{IntraOpThreads: threads, InterOpThreads: 1}
			c, err := ort.Open(path, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r, err := c.NewRunner(m.batch)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			bare := newBareSession(b, path, c.Shape(), m.batch, opts)
			defer bare.Destroy()
			for i := range r.Input() {
				r.Input()[i] = float32(i%255) / 255
			}
			copy(bare.in.GetData(), r.Input())

			for i := 0; i < 3; i++ { // warm up both
				mustRun(b, r)
				if err := bare.s.Run(); err != nil {
					b.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(10, func() { mustRun(b, r) })
			var ours, base time.Duration
			b.ResetTimer()
			// Blocks of runs, alternating which side goes first: each session has its own thread
			// pool, whose threads spin for a while after a run and would slow the other
			// session's next run if the two alternated run by run.
			const block = 8
			for i := 0; i < b.N; i++ {
				oursBlock := func() {
					for j := 0; j < block; j++ {
						mustRun(b, r)
					}
				}
				bareBlock := func() {
					for j := 0; j < block; j++ {
						mustBare(b, bare)
					}
				}
				if i%2 == 0 {
					ours += timeIt(oursBlock)
					base += timeIt(bareBlock)
				} else {
					base += timeIt(bareBlock)
					ours += timeIt(oursBlock)
				}
			}
			b.StopTimer()
			imgs := float64(b.N * block * m.batch)
			b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
			b.ReportMetric(imgs/ours.Seconds(), "img/s")
			b.ReportMetric(imgs/base.Seconds(), "bare-img/s")
			b.ReportMetric(allocs, "allocs/call")
		})
	}
}

type bareSession struct {
	s       *ortgo.AdvancedSession
	in, out *ortgo.Tensor[float32]
}

func (s *bareSession) Destroy() {
	s.s.Destroy()
	s.in.Destroy()
	s.out.Destroy()
}

func newBareSession(b *testing.B, path string, sh ort.ClassifierShape, batch int, opts ort.Options) *bareSession {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
		b.Fatal(err)
	}
	if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
		b.Fatal(err)
	}
	in, err := ortgo.NewEmptyTensor[float32](ortgo.NewShape(int64(batch), int64(sh.Channels), int64(sh.Height), int64(sh.Width)))
	if err != nil {
		b.Fatal(err)
	}
	out, err := ortgo.NewEmptyTensor[float32](ortgo.NewShape(int64(batch), int64(sh.Classes)))
	if err != nil {
		b.Fatal(err)
	}
	s, err := ortgo.NewAdvancedSession(path, []string{sh.Input}, []string{sh.Output},
		[]ortgo.Value{in}, []ortgo.Value{out}, so)
	if err != nil {
		b.Fatal(err)
	}
	return &bareSession{s: s, in: in, out: out}
}

func timeIt(f func()) time.Duration {
	t := time.Now()
	f()
	return time.Since(t)
}

func mustRun(b *testing.B, r *ort.Runner) {
	if _, err := r.Run(); err != nil {
		b.Fatal(err)
	}
}

func mustBare(b *testing.B, s *bareSession) {
	if err := s.s.Run(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRunAfterPause measures how much slower a batched run is when the thread that calls it
// has just been busy with something else, as any program that reads and preprocesses data between
// runs is (oodguard eval spends about 50 µs per cnn28 batch of 64 on its own work). On one
// Runner, blocks of 16 runs back to back alternate with blocks of 16 runs each preceded by a busy
// pause of 50 µs that touches no memory; only the runs are timed, on a goroutine locked to its OS
// thread as eval's is. Reported:
//
//	ratio        mean back-to-back run / mean run after a pause (1 = no penalty)
//	slow-b2b     share of back-to-back runs slower than 1.3x the back-to-back median
//	slow-paused  the same share for runs after a pause
//
// No target: it documents the machine, and why eval is compared with two baselines. With 1
// intra-op thread as well as 2, to show where the penalty lives.
func BenchmarkRunAfterPause(b *testing.B) {
	runtimetest.Setup(b)
	const batch, block, pause = 64, 16, 50 * time.Microsecond
	for _, c := range []struct {
		name    string
		threads int
	}{{"cnn28", 2}, {"resnet32", 2}, {"cnn28", 1}, {"resnet32", 1}} {
		b.Run(fmt.Sprintf("%s/batch%d/threads%d", c.name, batch, c.threads), func(b *testing.B) {
			clf, err := ort.Open(runtimetest.Model(b, c.name+".onnx"), ort.Options{IntraOpThreads: c.threads, InterOpThreads: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer clf.Close()
			r, err := clf.NewRunner(batch)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			for i := range r.Input() {
				r.Input()[i] = float32(i%255) / 255
			}
			goruntime.LockOSThread()
			defer goruntime.UnlockOSThread()
			for i := 0; i < 3; i++ {
				mustRun(b, r)
			}
			var b2b, paused []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < block; j++ {
					b2b = append(b2b, timeIt(func() { mustRun(b, r) }))
				}
				for j := 0; j < block; j++ {
					for t := time.Now(); time.Since(t) < pause; {
					}
					paused = append(paused, timeIt(func() { mustRun(b, r) }))
				}
			}
			b.StopTimer()
			median := slices.Clone(b2b)
			slices.Sort(median)
			slowAt := median[len(median)/2] * 13 / 10
			b.ReportMetric(meanDuration(b2b).Seconds()/meanDuration(paused).Seconds(), "ratio")
			b.ReportMetric(shareOver(b2b, slowAt), "slow-b2b")
			b.ReportMetric(shareOver(paused, slowAt), "slow-paused")
		})
	}
}

func meanDuration(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}

func shareOver(d []time.Duration, limit time.Duration) float64 {
	n := 0
	for _, v := range d {
		if v > limit {
			n++
		}
	}
	return float64(n) / float64(len(d))
}

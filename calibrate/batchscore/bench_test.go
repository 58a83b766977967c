package batchscore

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// BenchmarkEvalVsRaw measures what `oodguard eval` does per dataset (read samples in the model's
// own format, IDX 28x28 gray for cnn28 and CIFAR-10 binary 32x32 colour for resnet32, into one
// reused image as eval opens them; preprocess; run batches of 64; compute three scores)
// against two loops of batched ONNX Runtime runs over the same number of images, on the same
// model and 2 threads, in one session of 2 intra-op threads: "raw" runs the dataset's first
// batch over and over with the input already in place, back to back; "fed" copies each batch of
// the dataset, preprocessed beforehand and held in memory, into the input before its run, the
// least any program that infers on a dataset does per batch. The two differ by more than the
// copy: on the 2-core machine the README's numbers come from, any gap between runs (even a pause
// that touches no memory) makes the next run slower with 2 intra-op threads
// (runtime.BenchmarkRunAfterPause).
//
// Eval scores through a Pool (eval -workers), two ways: "threads2" on that same 2-thread session
// (eval -threads 2), and "workers2x1" on two sessions of 1 thread each (eval -threads 1
// -workers 2). Each side runs for at least 150 ms before the next takes over: a session's pool
// threads spin on for a while after its last run, and in short turns the 2-thread session's
// spinning took a core from the 1-thread sessions that followed it. Reported:
//
//	ratio          eval throughput / raw throughput (the target, >= 0.9, is on this one)
//	ratio-fed      eval throughput / fed throughput
//	img/s          eval images per second
//	raw-img/s      raw images per second
//	fed-img/s      fed images per second
//	peak-heap-MB   the largest live heap seen after any eval batch (sampled after a GC)
//
// The 2048- and 8192-image cases show whether eval's peak memory grows with the dataset.
func BenchmarkEvalVsRaw(b *testing.B) {
	runtimetest.Setup(b)
	for _, m := range []struct {
		model string
		spec  preprocess.Spec
		data  func(b *testing.B, n int) func() (dataset.Reader, error)
	}{{"cnn28", preprocess.FashionMNIST(), idxData}, {"resnet32", preprocess.CIFAR10(), cifarData}} {
		for _, n := range []int{2048, 8192} {
			b.Run(fmt.Sprintf("%s/images%d/threads2", m.model, n), func(b *testing.B) {
				benchEval(b, m.model, m.spec, n, m.data(b, n), 1)
			})
			b.Run(fmt.Sprintf("%s/images%d/workers2x1", m.model, n), func(b *testing.B) {
				benchEval(b, m.model, m.spec, n, m.data(b, n), 2)
			})
		}
	}
}

// idxData writes n 28x28 IDX images and returns their opener.
func idxData(b *testing.B, n int) func() (dataset.Reader, error) {
	images, labels := datasettest.WriteIDX(b, b.TempDir(), "bench", n, 28, 28)
	return func() (dataset.Reader, error) {
		return dataset.OpenIDX(images, labels, dataset.Options{ReuseImages: true})
	}
}

// cifarData writes n CIFAR-10 records and returns their opener.
func cifarData(b *testing.B, n int) func() (dataset.Reader, error) {
	path := datasettest.WriteCIFAR(b, b.TempDir(), "bench", n)
	return func() (dataset.Reader, error) {
		return dataset.OpenCIFAR([]string{path}, dataset.Options{ReuseImages: true})
	}
}

// benchEval measures eval on workers sessions (1: the baselines' 2-thread session; more: that many
// 1-thread sessions) against the baselines described at BenchmarkEvalVsRaw.
func benchEval(b *testing.B, model string, spec preprocess.Spec, n int, open func() (dataset.Reader, error), workers int) {
	const batch, threads = 64, 2
	path := runtimetest.Model(b, model+".onnx")
	clf, err := ort.Open(path, ort.Options{IntraOpThreads: threads, InterOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer clf.Close()
	specs := []score.Spec{{Kind: score.KindEnergy}, {Kind: score.KindMSP}, {Kind: score.KindMaxLogit}}
	raw, err := clf.NewRunner(batch)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()

	evalOn := []*ort.Classifier{clf}
	if workers > 1 {
		evalOn = nil
		for range workers {
			one, err := ort.Open(path, ort.Options{IntraOpThreads: 1, InterOpThreads: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer one.Close()
			evalOn = append(evalOn, one)
		}
	}
	pool, err := NewPool(evalOn, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	evalOnce := func(progress func(int)) {
		r, err := open()
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		res, err := pool.Run(context.Background(), spec, r, Options{Scores: specs, Progress: progress})
		if err != nil || res.Len() != n {
			b.Fatalf("scored %v, %v", res, err)
		}
	}

	// Peak live heap, in an untimed pass: a GC after every batch, then the heap in use.
	var peak uint64
	var ms runtime.MemStats
	evalOnce(func(int) {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	})

	// The baselines' input: the whole dataset, preprocessed as eval does it, in memory.
	all := preprocessAll(b, open, spec, n)
	in := raw.Input()
	copy(in, all)
	// The baselines run on a locked OS thread, as Run does (see the package comment): raw runs
	// the first batch over and over, fed copies each batch in before its run.
	baseline := func(fed bool) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for done := 0; done < n; done += batch {
			if fed {
				copy(in, all[done*len(in)/batch:])
			}
			if _, err := raw.Run(); err != nil {
				b.Fatal(err)
			}
		}
	}

	// A side's turn: whole passes over the n images until at least 150 ms have gone by.
	type tally struct {
		imgs int
		time time.Duration
	}
	turn := func(t *tally, pass func()) {
		start := time.Now()
		for time.Since(start) < 150*time.Millisecond {
			pass()
			t.imgs += n
		}
		t.time += time.Since(start)
	}
	var evalT, rawT, fedT tally
	sides := []func(){
		func() { turn(&evalT, func() { evalOnce(nil) }) },
		func() { turn(&rawT, func() { baseline(false) }) },
		func() { turn(&fedT, func() { baseline(true) }) },
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Rotate the order so that no side always runs first.
		for j := range sides {
			sides[(i+j)%len(sides)]()
		}
	}
	b.StopTimer()
	rate := func(t tally) float64 { return float64(t.imgs) / t.time.Seconds() }
	b.ReportMetric(rate(evalT)/rate(rawT), "ratio")
	b.ReportMetric(rate(evalT)/rate(fedT), "ratio-fed")
	b.ReportMetric(rate(evalT), "img/s")
	b.ReportMetric(rate(rawT), "raw-img/s")
	b.ReportMetric(rate(fedT), "fed-img/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// preprocessAll reads the n images open gives and returns them preprocessed, back to back.
func preprocessAll(b *testing.B, open func() (dataset.Reader, error), spec preprocess.Spec, n int) []float32 {
	r, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	pre, err := preprocess.New(spec)
	if err != nil {
		b.Fatal(err)
	}
	per := pre.Len()
	all := make([]float32, n*per)
	for i := 0; i < n; i++ {
		s, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := pre.Process(all[i*per:(i+1)*per], s.Image); err != nil {
			b.Fatal(err)
		}
	}
	return all
}

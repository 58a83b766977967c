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
	"github.com/oodguard/oodguard/guard/score"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// BenchmarkEvalVsRaw measures what `oodguard eval` does per dataset (read IDX samples, preprocess,
// run batches of 64, compute three scores) against a raw loop of batched ONNX Runtime runs over
// the same number of images with the input already in place, on the same model and threads.
// Reported:
//
//	ratio          eval throughput / raw ONNX Runtime throughput (target >= 0.9)
//	img/s          eval images per second
//	raw-img/s      raw images per second
//	peak-heap-MB   the largest live heap seen after any batch (sampled after a GC)
//
// The 2048- and 8192-image cases show whether peak memory grows with the dataset.
func BenchmarkEvalVsRaw(b *testing.B) {
	runtimetest.Setup(b)
	for _, m := range []struct {
		model string
		spec  preprocess.Spec
	}{{"cnn28", preprocess.FashionMNIST()}, {"resnet32", preprocess.CIFAR10()}} {
		for _, n := range []int{2048, 8192} {
			b.Run(fmt.Sprintf("%s/images%d/threads2", m.model, n), func(b *testing.B) {
				benchEval(b, m.model, m.spec, n)
			})
		}
	}
}

func benchEval(b *testing.B, model string, spec preprocess.Spec, n int) {
	const batch, threads = 64, 2
	clf, err := ort.Open(runtimetest.Model(b, model+".onnx"), ort.Options{IntraOpThreads: threads, InterOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer clf.Close()
	images, labels := datasettest.WriteIDX(b, b.TempDir(), "bench", n, 28, 28)
	specs := []score.Spec{{Kind: score.KindEnergy}, {Kind: score.KindMSP}, {Kind: score.KindMaxLogit}}
	raw, err := clf.NewRunner(batch)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()

	// The raw loop runs on the dataset's first batch, preprocessed as eval does it: the same
	// kind of input, so that both sides do the same arithmetic.
	{
		r, err := dataset.OpenIDX(images, labels, dataset.Options{})
		if err != nil {
			b.Fatal(err)
		}
		pre, err := preprocess.New(spec)
		if err != nil {
			b.Fatal(err)
		}
		in, per := raw.Input(), pre.Len()
		for j := 0; j < batch; j++ {
			s, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := pre.Process(in[j*per:(j+1)*per], s.Image); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
	evalOnce := func(progress func(int)) {
		r, err := dataset.OpenIDX(images, labels, dataset.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		res, err := Run(context.Background(), clf, spec, r, Options{Batch: batch, Scores: specs, Progress: progress})
		if err != nil || res.Len() != n {
			b.Fatalf("scored %v, %v", res, err)
		}
	}
	rawOnce := func() {
		for done := 0; done < n; done += batch {
			if _, err := raw.Run(); err != nil {
				b.Fatal(err)
			}
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

	var evalTime, rawTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order so that neither side always runs second.
		if i%2 == 0 {
			evalTime += timeIt(func() { evalOnce(nil) })
			rawTime += timeIt(rawOnce)
		} else {
			rawTime += timeIt(rawOnce)
			evalTime += timeIt(func() { evalOnce(nil) })
		}
	}
	b.StopTimer()
	imgs := float64(b.N * n)
	b.ReportMetric(rawTime.Seconds()/evalTime.Seconds(), "ratio")
	b.ReportMetric(imgs/evalTime.Seconds(), "img/s")
	b.ReportMetric(imgs/rawTime.Seconds(), "raw-img/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

func timeIt(f func()) time.Duration {
	t := time.Now()
	f()
	return time.Since(t)
}

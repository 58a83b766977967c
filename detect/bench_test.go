package detect

import (
	"fmt"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// fixedSession is an ONNX Runtime session with its tensors bound once, as the daemon runs.
type fixedSession struct {
	s    *ort.AdvancedSession
	vals []*ort.Tensor[float32]
}

func newFixedSession(tb testing.TB, data []byte, x []float32, shape []int64, classes int, withScore bool) *fixedSession {
	tb.Helper()
	so, err := ort.NewSessionOptions()
	if err != nil {
		tb.Fatal(err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(1); err != nil {
		tb.Fatal(err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		tb.Fatal(err)
	}
	in, err := ort.NewTensor(ort.NewShape(shape...), append([]float32(nil), x...))
	if err != nil {
		tb.Fatal(err)
	}
	logits, err := ort.NewEmptyTensor[float32](ort.NewShape(shape[0], int64(classes)))
	if err != nil {
		tb.Fatal(err)
	}
	fs := &fixedSession{vals: []*ort.Tensor[float32]{in, logits}}
	names, outs := []string{"logits"}, []ort.Value{logits}
	if withScore {
		score, err := ort.NewEmptyTensor[float32](ort.NewShape(shape[0]))
		if err != nil {
			tb.Fatal(err)
		}
		fs.vals = append(fs.vals, score)
		names, outs = append(names, ScoreOutput), append(outs, score)
	}
	if fs.s, err = ort.NewAdvancedSessionWithONNXData(data, []string{"input"}, names, []ort.Value{in}, outs, so); err != nil {
		tb.Fatal(err)
	}
	return fs
}

func (fs *fixedSession) run(tb testing.TB) {
	if err := fs.s.Run(); err != nil {
		tb.Fatal(err)
	}
}

func (fs *fixedSession) destroy() {
	fs.s.Destroy()
	for _, v := range fs.vals {
		v.Destroy()
	}
}

// BenchmarkGraphCost measures what each detector's graph costs over the plain model: one image
// per run (the daemon's frame loop), one thread, the two sessions run in alternating blocks.
// KNN runs with the fixture's bank (every fit image) and with a bank of DefaultBankSize.
//
//	ratio  plain model's runs per second / the detector graph's (1 = free; 0.5 = twice as slow)
//	us/frame  the detector graph's time per image
func BenchmarkGraphCost(b *testing.B) {
	runtimetest.Setup(b)
	for _, name := range fixtureNames {
		fx := loadFixture(b, name)
		f, err := Fit(&fx.model.Head, fx.pass(), FitOptions{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		img := len(fx.eval) / int(fx.ref.EvalShape[0])
		shape := append([]int64{1}, fx.ref.EvalShape[1:]...)
		x := fx.eval[:img]
		react, _ := f.ReAct(90)
		ashS, _ := NewASH(&fx.model.Head, ASHS, 90)
		dice, _ := f.DICE(90)
		vim, _ := f.ViM(fx.model.Head.Dim / 2)
		mds, _ := f.Mahalanobis()
		knn, _ := f.KNN(50)
		// KNN with choose's default bank of 10,000 vectors: the fixture's fit features passed
		// over enough times to fill it (the graph's cost depends on the bank's size only).
		reps := (DefaultBankSize + fx.ref.FitCount - 1) / fx.ref.FitCount
		big, err := Fit(&fx.model.Head, func(yield func([]float32, []int) error) error {
			for range reps {
				if err := fx.pass()(yield); err != nil {
					return err
				}
			}
			return nil
		}, FitOptions{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		if big.BankLen() != DefaultBankSize {
			b.Fatalf("bank of %d vectors, want %d", big.BankLen(), DefaultBankSize)
		}
		knn10k, _ := big.KNN(50)
		for _, d := range []Detector{react, ashS, dice, vim, mds, knn, knn10k} {
			label := d.Spec().Method
			if d.Spec().Method == "knn" {
				label = fmt.Sprintf("knn-bank%d", d.Spec().Bank)
			}
			b.Run(fmt.Sprintf("%s/%s", name, label), func(b *testing.B) {
				data, err := fx.model.Write(d)
				if err != nil {
					b.Fatal(err)
				}
				plain := newFixedSession(b, fx.raw, x, shape, fx.ref.Classes, false)
				defer plain.destroy()
				det := newFixedSession(b, data, x, shape, fx.ref.Classes, !d.Shaping())
				defer det.destroy()
				for i := 0; i < 20; i++ {
					plain.run(b)
					det.run(b)
				}
				const block = 32
				var tp, td time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					runBlock := func(s *fixedSession) time.Duration {
						t0 := time.Now()
						for j := 0; j < block; j++ {
							s.run(b)
						}
						return time.Since(t0)
					}
					if i%2 == 0 {
						tp += runBlock(plain)
						td += runBlock(det)
					} else {
						td += runBlock(det)
						tp += runBlock(plain)
					}
				}
				b.StopTimer()
				b.ReportMetric(tp.Seconds()/td.Seconds(), "ratio")
				b.ReportMetric(td.Seconds()*1e6/float64(b.N*block), "us/frame")
				b.ReportMetric(tp.Seconds()*1e6/float64(b.N*block), "plain-us/frame")
			})
		}
	}
}

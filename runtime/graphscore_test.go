package runtime_test

import (
	"math"
	"testing"

	"github.com/oodguard/oodguard/detect/detecttest"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// TestGraphScoreOutput opens cnn28 with KNN and ViM written into its graph (logits plus
// ood_score [N]): the Runner returns both, the logits as the plain model's and the score as the
// detector's host-side reference within 1e-5 relative, in batches of 24 and of 1.
func TestGraphScoreOutput(t *testing.T) {
	runtimetest.Setup(t)
	ref := loadReference(t, "cnn28")
	n := ref.InputShape[0]
	for _, method := range []string{"knn", "vim"} {
		t.Run(method, func(t *testing.T) {
			w := detecttest.Write(t, method)
			want := w.Reference(t, ref.Input, n)
			c, err := ort.Open(w.Path, ort.Options{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := c.Shape()
			if s.Output != "logits" || s.Score != "ood_score" || s.Classes != 10 {
				t.Fatalf("shape %v, want logits[?,10] and ood_score[?]", s)
			}
			per := s.InputLen(1)
			for _, batch := range []int{n, 1} {
				r, err := c.NewRunner(batch)
				if err != nil {
					t.Fatal(err)
				}
				for start := 0; start < n; start += batch {
					if err := r.SetInput(ref.Input[start*per : (start+batch)*per]); err != nil {
						t.Fatal(err)
					}
					logits, err := r.Run()
					if err != nil {
						t.Fatal(err)
					}
					scores := r.Scores()
					if len(scores) != batch {
						t.Fatalf("%d scores for a batch of %d", len(scores), batch)
					}
					for i := 0; i < batch; i++ {
						checkRow(t, ref, start+i, logits[i*s.Classes:(i+1)*s.Classes])
						got, w := float64(scores[i]), want[start+i]
						if math.Abs(got-w) > detecttest.Tolerance(w) {
							t.Errorf("batch %d image %d: graph score %.9g, host reference %.9g", batch, start+i, got, w)
						}
					}
				}
				r.Close()
			}
		})
	}
}

// TestGraphScoreRunnerMakesNoAllocations: with a score output bound, Run and Scores still
// allocate nothing.
func TestGraphScoreRunnerMakesNoAllocations(t *testing.T) {
	runtimetest.Setup(t)
	w := detecttest.Write(t, "knn")
	c, err := ort.Open(w.Path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.NewRunner(4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sink float32
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := r.Run(); err != nil {
			t.Fatal(err)
		}
		sink += r.Scores()[3]
	})
	if allocs != 0 {
		t.Fatalf("Run and Scores allocate %v times per call, want 0", allocs)
	}
	_ = sink
}

// TestPlainModelHasNoScores: a logits-only model's Runner has no score output.
func TestPlainModelHasNoScores(t *testing.T) {
	runtimetest.Setup(t)
	c, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Shape().Score != "" {
		t.Errorf("cnn28 has a score output %q", c.Shape().Score)
	}
	r, err := c.NewRunner(2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Run(); err != nil {
		t.Fatal(err)
	}
	if s := r.Scores(); s != nil {
		t.Errorf("Scores() = %v, want nil", s)
	}
}

// BenchmarkGraphScore runs cnn28 with KNN in its graph, batch 1, through a Runner: the cost of
// reading the score output with the logits (allocs/op must be 0).
func BenchmarkGraphScore(b *testing.B) {
	runtimetest.Setup(b)
	for _, method := range []string{"plain", "knn", "vim"} {
		b.Run(method, func(b *testing.B) {
			path := runtimetest.Model(b, "cnn28.onnx")
			if method != "plain" {
				path = detecttest.Write(b, method).Path
			}
			c, err := ort.Open(path, ort.Options{IntraOpThreads: 1, InterOpThreads: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r, err := c.NewRunner(1)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.Run(); err != nil {
					b.Fatal(err)
				}
				_ = r.Scores()
			}
		})
	}
}

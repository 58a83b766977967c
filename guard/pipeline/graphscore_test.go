package pipeline

import (
	"context"
	"image"
	"math"
	"slices"
	"testing"

	"github.com/oodguard/oodguard/detect/detecttest"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/event"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

func openWritten(t *testing.T, w detecttest.Written) *ort.Classifier {
	t.Helper()
	runtimetest.Setup(t)
	clf, err := ort.Open(w.Path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clf.Close() })
	return clf
}

// TestGraphScoreFrames runs the frame loop on cnn28 with KNN and with ViM written into its graph,
// scored by the graph output: every alert's score equals detect's host-side reference of its
// frame within 1e-5 relative to max(1, |score|), and the alerts are exactly the frames whose
// reference is below the threshold.
func TestGraphScoreFrames(t *testing.T) {
	for _, method := range []string{"knn", "vim"} {
		t.Run(method, func(t *testing.T) {
			w := detecttest.Write(t, method)
			clf := openWritten(t, w)
			spec := preprocess.FashionMNIST()
			pre, err := preprocess.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			var imgs []image.Image
			per := pre.Len()
			const n = 30
			x := make([]float32, n*per)
			for i := 0; i < n; i++ {
				img := grayFrame(i + 1)
				imgs = append(imgs, img)
				if err := pre.Process(x[i*per:(i+1)*per], img); err != nil {
					t.Fatal(err)
				}
			}
			want := w.Reference(t, x, n)
			// A threshold halfway between two neighbouring reference scores near the median.
			sorted := slices.Sorted(slices.Values(want))
			th := (sorted[n/2-1] + sorted[n/2]) / 2
			if sorted[n/2]-sorted[n/2-1] < 1e-3 {
				t.Fatalf("reference scores %v and %v too close to split", sorted[n/2-1], sorted[n/2])
			}
			m, err := NewModel(clf, spec, w.Score, th, 1, "test")
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			rec := &recorder{}
			p := New(Config{Device: "cam", RunID: "run1"}, &listSource{imgs: imgs}, m, rec, nil)
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var flagged []int
			for i, s := range want {
				if s < th {
					flagged = append(flagged, i)
				}
			}
			if len(rec.events) != len(flagged) {
				t.Fatalf("%d alerts, want %d", len(rec.events), len(flagged))
			}
			for k, ev := range rec.events {
				i := flagged[k]
				if ev.FrameID != uint64(i+1) || ev.ScoreKind != string(score.KindGraph) || ev.Decision != event.DecisionOOD {
					t.Errorf("alert %d: %+v, want frame %d", k, ev, i+1)
				}
				if math.Abs(ev.Score-want[i]) > detecttest.Tolerance(want[i]) {
					t.Errorf("frame %d: loop's graph score %.9g, host reference %.9g", i+1, ev.Score, want[i])
				}
			}
		})
	}
}

// TestGraphScoreNoAllocationsPerFrame: the loop reads the graph score without allocating.
func TestGraphScoreNoAllocationsPerFrame(t *testing.T) {
	w := detecttest.Write(t, "knn")
	clf := openWritten(t, w)
	m, err := NewModel(clf, preprocess.FashionMNIST(), w.Score, -1e30, 5, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkNoAllocationsPerFrame(t, m)
}

// TestGraphScoreNeedsTheOutput: a graph score on a model without the output is refused.
func TestGraphScoreNeedsTheOutput(t *testing.T) {
	clf := openCNN(t)
	_, err := NewModel(clf, preprocess.FashionMNIST(), score.Spec{Kind: score.KindGraph, Output: "ood_score"}, 0, 1, "test")
	if err == nil {
		t.Fatal("a graph score of cnn28, which has no score output, was accepted")
	}
}

package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// TestZooHeads finds the final linear layer of every family in testdata/zoo (both export forms),
// runs the features copy under ONNX Runtime (the logits unchanged, the head's own logits of the
// features equal to them) and writes two detectors whose graph scores equal the host-side ones.
// SqueezeNet classifies with a 1x1 convolution: it has no final linear layer and must be refused
// with ErrNoHead.
func TestZooHeads(t *testing.T) {
	root := runtimetest.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "testdata", "zoo", "*.onnx"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no zoo models (%v)", err)
	}
	x := readF32(t, filepath.Join(root, "testdata", "zoo", "zoo.input.f32"))
	shape := []int64{8, 3, 32, 32}
	for _, path := range files {
		name := filepath.Base(path)
		if strings.Contains(name, "trainbn") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			m, err := Load(path)
			if strings.HasPrefix(name, "squeezenet") {
				if !errors.Is(err, ErrNoHead) {
					t.Fatalf("err %v, want ErrNoHead", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := m.WithFeatures()
			if err != nil {
				t.Fatal(err)
			}
			plain, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := runORT(t, plain, x, shape, "logits")[0]
			got := runORT(t, data, x, shape, "logits", FeaturesOutput)
			for i := range want {
				if got[0][i] != want[i] {
					t.Fatalf("logit %d: %v with the features output, %v without", i, got[0][i], want[i])
				}
			}
			n := 8
			if len(got[1]) != n*m.Head.Dim {
				t.Fatalf("features: %d values, want %d×%d", len(got[1]), n, m.Head.Dim)
			}
			checkClose(t, "head logits of the features", m.Head.LogitsOf(got[1], n), f64(want), 1e-4)
			feats := got[1]
			f, err := Fit(&m.Head, func(yield func([]float32, []int) error) error { return yield(feats, nil) }, FitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			react, err := f.ReAct(90)
			if err != nil {
				t.Fatal(err)
			}
			knn, err := f.KNN(2)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []Detector{react, knn} {
				g, err := m.Write(d)
				if err != nil {
					t.Fatal(err)
				}
				hostScore, err := d.Score(feats, n)
				if err != nil {
					t.Fatal(err)
				}
				var score []float64
				if d.Shaping() {
					z := runORT(t, g, x, shape, "logits")[0]
					K := m.Head.Classes
					for r := 0; r < n; r++ {
						score = append(score, logsumexp(f64(z[r*K:(r+1)*K])))
					}
				} else {
					score = f64(runORT(t, g, x, shape, ScoreOutput)[0])
				}
				checkClose(t, d.Name(), score, hostScore, graphTol(hostScore))
			}
		})
	}
}

package detect

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	rt "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// realSet is a dataset read for the real-data comparison.
type realSet struct {
	name  string
	path  string
	opts  dataset.Options
	noise bool // seeded uniform noise images instead of a file
}

// TestRealData fits every candidate of the default grid on real ID training data and prints,
// for each OOD set, FPR95 and AUROC next to plain energy, MSP and MaxLogit, with the ID accuracy
// of the shaped logits, then picks a detector on the first OOD set only (lowest FPR95 among those
// within 1 point of the model's accuracy and not worse than energy there) and shows how it does
// on the sets the choice never saw. It needs the shared data: set OODGUARD_DATA (e.g.
// ../shared/data); skipped otherwise and in -short mode. OODGUARD_REALDATA_FIT and _EVAL change
// the number of fit and evaluation images (default 20000 and 2000), taken evenly spread over
// each set (folders and tar archives are sorted by class).
func TestRealData(t *testing.T) {
	root := os.Getenv("OODGUARD_DATA")
	if root == "" || testing.Short() {
		t.Skip("set OODGUARD_DATA to the shared data folder to compare the detectors on real data")
	}
	nFit, nEval := envInt(t, "OODGUARD_REALDATA_FIT", 20000), envInt(t, "OODGUARD_REALDATA_EVAL", 2000)
	p := func(rel string) string { return filepath.Join(root, rel) }
	tin := dataset.Options{Prefix: "val/images", Layout: dataset.LayoutFlat}
	for _, tc := range []struct {
		model string
		spec  preprocess.Spec
		fit   realSet
		id    realSet
		ood   []realSet // the first one chooses
	}{
		{"cnn28.onnx", preprocess.FashionMNIST(),
			realSet{name: "fashion-mnist train", path: p("fashion-mnist/train-images-idx3-ubyte.gz")},
			realSet{name: "fashion-mnist test", path: p("fashion-mnist/t10k-images-idx3-ubyte.gz")},
			[]realSet{
				{name: "mnist", path: p("mnist/t10k-images-idx3-ubyte.gz")},
				{name: "cifar10-gray", path: p("cifar10/test.tar"), opts: dataset.Options{Prefix: "test"}},
				{name: "tinyimagenet-gray", path: p("tiny-imagenet/val.tar"), opts: tin},
				{name: "noise", noise: true},
			}},
		{"resnet32.onnx", preprocess.CIFAR10(),
			realSet{name: "cifar10 train", path: p("cifar10/train.tar"), opts: dataset.Options{Prefix: "train"}},
			realSet{name: "cifar10 test", path: p("cifar10/test.tar"), opts: dataset.Options{Prefix: "test"}},
			[]realSet{
				{name: "tinyimagenet", path: p("tiny-imagenet/val.tar"), opts: tin},
				{name: "mnist-rgb", path: p("mnist/t10k-images-idx3-ubyte.gz")},
				{name: "fashion-mnist-rgb", path: p("fashion-mnist/t10k-images-idx3-ubyte.gz")},
				{name: "noise", noise: true},
			}},
	} {
		t.Run(strings.TrimSuffix(tc.model, ".onnx"), func(t *testing.T) {
			runtimetest.Setup(t)
			m, err := Load(runtimetest.Model(t, tc.model))
			if err != nil {
				t.Fatal(err)
			}
			pre, err := preprocess.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			x, err := m.NewExtractor(256, rt.Options{IntraOpThreads: 1, InterOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			f, err := Fit(&m.Head, x.Pass(images(t, pre, tc.fit, nFit, 256)), FitOptions{BankSize: 5000, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("fitted on %d %s images: bank %d", f.Count, tc.fit.name, f.BankLen())
			cands, skipped := Candidates(m, f, DefaultGrid())
			for _, err := range skipped {
				t.Logf("skipped: %v", err)
			}
			idF, idY := extract(t, x, images(t, pre, tc.id, nEval, 256))
			plainAcc := accuracy(m.Head.LogitsOf(idF, len(idY)), idY, m.Head.Classes)
			type row struct {
				name string
				acc  float64
				id   []float64
				ood  [][]float64
			}
			var rows []row
			oodF := make([][]float32, len(tc.ood))
			for i, s := range tc.ood {
				oodF[i], _ = extract(t, x, images(t, pre, s, nEval, 256))
			}
			for _, b := range []string{"energy", "msp", "maxlogit"} {
				r := row{name: b, acc: plainAcc, id: logitScore(m, idF, b)}
				for i := range tc.ood {
					r.ood = append(r.ood, logitScore(m, oodF[i], b))
				}
				rows = append(rows, r)
			}
			for _, d := range cands {
				r := row{name: d.Name(), acc: plainAcc}
				if s, ok := d.(Shaper); ok {
					z, err := s.Logits(idF, len(idY))
					if err != nil {
						t.Fatal(err)
					}
					r.acc = accuracy(z, idY, m.Head.Classes)
				}
				if r.id, err = d.Score(idF, len(idF)/m.Head.Dim); err != nil {
					t.Fatal(err)
				}
				for i := range tc.ood {
					s, err := d.Score(oodF[i], len(oodF[i])/m.Head.Dim)
					if err != nil {
						t.Fatal(err)
					}
					r.ood = append(r.ood, s)
				}
				rows = append(rows, r)
			}
			// The table: FPR95 / AUROC in percent per OOD set.
			head := fmt.Sprintf("%-26s %6s", "detector", "acc")
			for _, s := range tc.ood {
				head += fmt.Sprintf(" | %-20s", s.name+" FPR/AUROC")
			}
			t.Log(head)
			fpr := make([][]float64, len(rows))
			for ri, r := range rows {
				line := fmt.Sprintf("%-26s %6.2f", r.name, 100*r.acc)
				for i := range tc.ood {
					mt, err := calibrate.Evaluate(r.id, r.ood[i], 0.95)
					if err != nil {
						t.Fatalf("%s on %s: %v", r.name, tc.ood[i].name, err)
					}
					fpr[ri] = append(fpr[ri], 100*mt.FPR95)
					line += fmt.Sprintf(" | %6.2f / %6.2f      ", 100*mt.FPR95, 100*mt.AUROC)
				}
				t.Log(line)
			}
			// Choose on the first OOD set only.
			best := 0 // energy
			for ri, r := range rows {
				if 100*(plainAcc-r.acc) <= 1 && fpr[ri][0] < fpr[best][0] {
					best = ri
				}
			}
			t.Logf("chosen on %s: %s (FPR95 %.2f there, energy %.2f)", tc.ood[0].name, rows[best].name, fpr[best][0], fpr[0][0])
			for i := 1; i < len(tc.ood); i++ {
				t.Logf("  on %s, never seen by the choice: %s %.2f, energy %.2f", tc.ood[i].name, rows[best].name, fpr[best][i], fpr[0][i])
			}
		})
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var v int
	if _, err := fmt.Sscan(s, &v); err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// images streams up to limit preprocessed images of the set in batches.
func images(t *testing.T, pre *preprocess.Preprocessor, s realSet, limit, batch int) Images {
	return func(yield func([]float32, int, []int) error) error {
		size := pre.Len()
		buf := make([]float32, batch*size)
		labels := make([]int, batch)
		var next func() (image.Image, int, error)
		if s.noise {
			rng := rand.New(rand.NewPCG(11, 12))
			spec := pre.Spec()
			next = func() (image.Image, int, error) {
				img := image.NewNRGBA(image.Rect(0, 0, spec.Width, spec.Height))
				for i := range img.Pix {
					img.Pix[i] = uint8(rng.IntN(256))
					if i%4 == 3 {
						img.Pix[i] = 255
					}
				}
				return img, -1, nil
			}
		} else {
			r, err := dataset.Open(s.path, s.opts)
			if err != nil {
				return err
			}
			defer r.Close()
			// Images spread evenly over the set: folders and tar archives come grouped by class.
			total, pos, k := r.Len(), 0, 0
			next = func() (image.Image, int, error) {
				want := k
				if total > limit {
					want = int(int64(k) * int64(total) / int64(limit))
				}
				k++
				for ; pos < want; pos++ {
					if _, err := r.Next(); err != nil {
						return nil, 0, err
					}
				}
				pos++
				smp, err := r.Next()
				return smp.Image, smp.Label, err
			}
		}
		n := 0
		for done := 0; done < limit; done++ {
			img, label, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := pre.Process(buf[n*size:(n+1)*size], img); err != nil {
				return err
			}
			labels[n] = label
			n++
			if n == batch {
				if err := yield(buf[:n*size], n, labels[:n]); err != nil {
					return err
				}
				n = 0
			}
		}
		if n > 0 {
			return yield(buf[:n*size], n, labels[:n])
		}
		return nil
	}
}

// extract returns the features and labels of every image.
func extract(t *testing.T, x *Extractor, imgs Images) ([]float32, []int) {
	t.Helper()
	var feats []float32
	var labels []int
	err := x.Pass(imgs)(func(f []float32, l []int) error {
		feats = append(feats, f...)
		labels = append(labels, l...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return feats, labels
}

func accuracy(logits []float64, labels []int, K int) float64 {
	right := 0
	for i, y := range labels {
		z := logits[i*K : (i+1)*K]
		best := 0
		for k := range z {
			if z[k] > z[best] {
				best = k
			}
		}
		if best == y {
			right++
		}
	}
	return float64(right) / float64(len(labels))
}

// logitScore is a plain logit score of the model's own logits.
func logitScore(m *Model, feats []float32, name string) []float64 {
	K := m.Head.Classes
	n := len(feats) / m.Head.Dim
	z := m.Head.LogitsOf(feats, n)
	out := make([]float64, n)
	for i := range out {
		row := z[i*K : (i+1)*K]
		switch name {
		case "energy":
			out[i] = logsumexp(row)
		case "msp":
			out[i] = math.Exp(row[score.Argmax(row)] - logsumexp(row))
		case "maxlogit":
			out[i] = row[score.Argmax(row)]
		}
	}
	return out
}

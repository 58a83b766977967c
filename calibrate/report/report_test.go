package report

import (
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/calibrate"
)

func TestWriteReport(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	id := make([]float64, 500)
	ood := make([]float64, 300)
	for i := range id {
		id[i] = r.NormFloat64() + 2
	}
	for i := range ood {
		ood[i] = r.NormFloat64()
	}
	m, err := calibrate.Evaluate(id, ood, calibrate.DefaultRecall)
	if err != nil {
		t.Fatal(err)
	}
	th, _, err := calibrate.FitThreshold(id, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{
		Model: "m.onnx", ModelSHA256: strings.Repeat("ab", 32), Tool: "oodguard test", Created: time.Unix(0, 0).UTC(),
		ID:  calibrate.DataRef{Role: "id-test", Name: "fashion test", Count: len(id)},
		OOD: []calibrate.DataRef{{Role: "ood", Name: "mnist/test", Count: len(ood)}},
		Scores: []ScoreResult{{Score: "energy(T=1)", Threshold: &th,
			Sets: []SetResult{{Name: "mnist/test", Metrics: m}}, Mean: m}},
	}
	dir := t.TempDir()
	if d := os.Getenv("OODGUARD_REPORT_DIR"); d != "" {
		dir = d // to look at the pictures
	}
	if err := Write(dir, rep, []Scores{{ID: id, OOD: [][]float64{ood}}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.json", "report.csv", "index.html", "hist_mnist_test_energy_T_1_.png", "roc_mnist_test_energy_T_1_.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// The PNGs decode, the HTML links them and shows the numbers, the CSV has the mean row.
	for _, f := range []string{rep.Scores[0].Sets[0].Hist, rep.Scores[0].Sets[0].ROC} {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		fh.Close()
	}
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	for _, want := range []string{rep.Scores[0].Sets[0].Hist, "mnist/test", "ID is the positive class"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	f, _ := os.Open(filepath.Join(dir, "report.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || rows[2][1] != "mean" {
		t.Fatalf("csv rows %v %v", rows, err)
	}
	var back Report
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &back); err != nil || back.Scores[0].Sets[0].Metrics.AUROC != m.AUROC {
		t.Fatalf("json round trip: %v", err)
	}
}

func TestWriteRejectsMismatchedScores(t *testing.T) {
	rep := &Report{Scores: []ScoreResult{{Score: "msp", Sets: []SetResult{{Name: "a"}}}}}
	if err := Write(t.TempDir(), rep, nil); err == nil {
		t.Fatal("accepted missing raw scores")
	}
}

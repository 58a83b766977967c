package calibrate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// referenceCase is one case of testdata/metrics/reference.json, written by
// testdata/metrics/make_reference.py with scikit-learn and the method's numpy routine.
type referenceCase struct {
	Name             string    `json:"name"`
	Kind             string    `json:"kind"`
	Recall           float64   `json:"recall"`
	ID               []float64 `json:"id"`
	OOD              []float64 `json:"ood"`
	AUROC            float64   `json:"auroc"`
	AUPRIn           float64   `json:"aupr_in"`
	AUPROut          float64   `json:"aupr_out"`
	FPRClosest       float64   `json:"fpr_closest"`
	TPRClosest       float64   `json:"tpr_closest"`
	ThresholdClosest float64   `json:"threshold_closest"`
	FPROpenOOD       float64   `json:"fpr_openood"`
	TPROpenOOD       float64   `json:"tpr_openood"`
	ThresholdOpenOOD float64   `json:"threshold_openood"`
	DetectionError   float64   `json:"detection_error"`
}

func loadReference(t *testing.T) []referenceCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "metrics", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []referenceCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("reference.json has no cases")
	}
	return doc.Cases
}

func TestMetricsReference(t *testing.T) {
	const tol = 1e-9
	kinds := map[string]int{}
	for _, rc := range loadReference(t) {
		kinds[rc.Kind]++
		t.Run(rc.Name, func(t *testing.T) {
			id, ood := slices.Clone(rc.ID), slices.Clone(rc.OOD)
			m, err := Evaluate(id, ood, rc.Recall)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(id, rc.ID) || !slices.Equal(ood, rc.OOD) {
				t.Fatal("Evaluate modified its input")
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"auroc", m.AUROC, rc.AUROC},
				{"aupr_in", m.AUPRIn, rc.AUPRIn},
				{"aupr_out", m.AUPROut, rc.AUPROut},
				{"fpr95 (closest)", m.FPR95, rc.FPRClosest},
				{"tpr (closest)", m.TPRAtThreshold, rc.TPRClosest},
				{"fpr95 (openood)", m.FPR95OpenOOD, rc.FPROpenOOD},
				{"tpr (openood)", m.TPRAtThresholdOpenOOD, rc.TPROpenOOD},
				{"detection error", m.DetectionError, rc.DetectionError},
			} {
				if math.Abs(c.got-c.want) > tol {
					t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
				}
			}
			if m.NumID != len(rc.ID) || m.NumOOD != len(rc.OOD) || m.Recall != rc.Recall {
				t.Errorf("counts = %d, %d, recall %g; want %d, %d, %g", m.NumID, m.NumOOD, m.Recall, len(rc.ID), len(rc.OOD), rc.Recall)
			}
			for _, c := range []struct {
				conv Convention
				want float64
			}{{Closest, rc.ThresholdClosest}, {OpenOOD, rc.ThresholdOpenOOD}} {
				p, err := FPRAtRecall(id, ood, rc.Recall, c.conv)
				if err != nil {
					t.Fatal(err)
				}
				if p.Threshold != c.want {
					t.Errorf("%s threshold = %v, want %v", c.conv, p.Threshold, c.want)
				}
			}
			th, tpr, err := FitThreshold(id, rc.Recall)
			if err != nil {
				t.Fatal(err)
			}
			if th != rc.ThresholdOpenOOD || tpr != rc.TPROpenOOD {
				t.Errorf("FitThreshold = %v, %v; want the OpenOOD point %v, %v", th, tpr, rc.ThresholdOpenOOD, rc.TPROpenOOD)
			}
		})
	}
	for _, k := range []string{"random", "ties", "degenerate"} {
		if kinds[k] == 0 {
			t.Errorf("reference has no %q cases", k)
		}
	}
}

// TestConventionsDiffer pins the two documented quirks of the method's routine.
func TestConventionsDiffer(t *testing.T) {
	// 20 ID scores in tied pairs: recall 0.9 and 1.0 are equally far from 0.95 in exact
	// arithmetic, but in float64 0.9 is closer, so the routine picks it.
	var id []float64
	for i := range 10 {
		id = append(id, float64(i), float64(i))
	}
	p, err := FPRAtRecall(id, []float64{-1, 100}, 0.95, Closest)
	if err != nil {
		t.Fatal(err)
	}
	if p.TPR != 0.9 || p.Threshold != 1 {
		t.Errorf("closest on pairs = %+v, want TPR 0.9 at threshold 1", p)
	}
	// Same recall at several thresholds: Closest takes the lowest, OpenOOD the highest.
	id = []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	ood := []float64{0.5, 0.6, 0.7, 5.5}
	c, _ := FPRAtRecall(id, ood, 0.95, Closest)
	o, _ := FPRAtRecall(id, ood, 0.95, OpenOOD)
	if c != (OperatingPoint{Threshold: 0.5, TPR: 0.95, FPR: 1}) || o != (OperatingPoint{Threshold: 1, TPR: 0.95, FPR: 0.25}) {
		t.Errorf("closest = %+v, openood = %+v", c, o)
	}
	if _, err := FPRAtRecall(id, ood, 0.95, "median"); err == nil {
		t.Error("unknown convention: no error")
	}
}

func TestMetricsErrors(t *testing.T) {
	ok := []float64{1, 2}
	for _, c := range []struct {
		name    string
		id, ood []float64
		recall  float64
		want    error
		msg     string
	}{
		{"empty ID", nil, ok, 0.95, ErrNoScores, "ID scores"},
		{"empty OOD", ok, []float64{}, 0.95, ErrNoScores, "OOD scores"},
		{"NaN ID", []float64{1, math.NaN()}, ok, 0.95, ErrNonFinite, "ID score 1 is NaN"},
		{"Inf OOD", ok, []float64{math.Inf(-1)}, 0.95, ErrNonFinite, "OOD score 0 is -Inf"},
		{"recall 0", ok, ok, 0, ErrRecall, "got 0"},
		{"recall above 1", ok, ok, 1.01, ErrRecall, "got 1.01"},
		{"recall NaN", ok, ok, math.NaN(), ErrRecall, "got NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Evaluate(c.id, c.ood, c.recall)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
	for name, f := range map[string]func([]float64, []float64) (float64, error){
		"AUROC": AUROC, "AUPRIn": AUPRIn, "AUPROut": AUPROut, "DetectionError": DetectionError,
	} {
		if _, err := f(ok, nil); !errors.Is(err, ErrNoScores) {
			t.Errorf("%s(empty OOD): err = %v", name, err)
		}
	}
}

func TestSingleMetrics(t *testing.T) {
	id, ood := []float64{3, 2, 2, 1}, []float64{2, 0}
	// Pairs: 3>2, 3>0, 2=2 (x2, half each), 2>0 (x2), 1>0, 1<2 -> 5 + 2*0.5 = 6 of 8.
	if got, _ := AUROC(id, ood); got != 6.0/8 {
		t.Errorf("AUROC = %v, want 0.75", got)
	}
	// Thresholds 3: R=1/4 P=1; 2: R=3/4 P=3/4; 1: R=1 P=4/5.
	if got, _ := AUPRIn(id, ood); math.Abs(got-(0.25+0.5*0.75+0.25*0.8)) > 1e-15 {
		t.Errorf("AUPRIn = %v", got)
	}
	// OOD positive, ascending: 0: R=1/2 P=1; 1: nothing; 2: R=1 P=2/5.
	if got, _ := AUPROut(id, ood); math.Abs(got-(0.5+0.5*0.4)) > 1e-15 {
		t.Errorf("AUPROut = %v", got)
	}
	// Best threshold 1: TPR 1, FPR 1/2 -> 0.25; threshold 3: TPR 1/4, FPR 0 -> 0.375.
	if got, _ := DetectionError(id, ood); got != 0.25 {
		t.Errorf("DetectionError = %v, want 0.25", got)
	}
}

func TestMean(t *testing.T) {
	a := Metrics{NumID: 10, NumOOD: 5, Recall: 0.95, AUROC: 0.9, AUPRIn: 0.8, AUPROut: 0.7, FPR95: 0.5,
		TPRAtThreshold: 0.95, FPR95OpenOOD: 0.4, TPRAtThresholdOpenOOD: 0.95, DetectionError: 0.2}
	b := Metrics{NumID: 10, NumOOD: 15, Recall: 0.95, AUROC: 0.7, AUPRIn: 0.6, AUPROut: 0.5, FPR95: 0.3,
		TPRAtThreshold: 0.9, FPR95OpenOOD: 0.2, TPRAtThresholdOpenOOD: 1, DetectionError: 0.4}
	got, err := Mean([]Metrics{a, b})
	if err != nil {
		t.Fatal(err)
	}
	want := Metrics{NumID: 10, NumOOD: 20, Recall: 0.95, AUROC: 0.8, AUPRIn: 0.7, AUPROut: 0.6, FPR95: 0.4,
		TPRAtThreshold: 0.925, FPR95OpenOOD: 0.3, TPRAtThresholdOpenOOD: 0.975, DetectionError: 0.3}
	if math.Abs(got.AUROC-want.AUROC)+math.Abs(got.AUPRIn-want.AUPRIn)+math.Abs(got.AUPROut-want.AUPROut)+
		math.Abs(got.FPR95-want.FPR95)+math.Abs(got.TPRAtThreshold-want.TPRAtThreshold)+
		math.Abs(got.FPR95OpenOOD-want.FPR95OpenOOD)+math.Abs(got.TPRAtThresholdOpenOOD-want.TPRAtThresholdOpenOOD)+
		math.Abs(got.DetectionError-want.DetectionError) > 1e-12 ||
		got.NumID != want.NumID || got.NumOOD != want.NumOOD || got.Recall != want.Recall {
		t.Errorf("Mean = %+v\nwant %+v", got, want)
	}
	if _, err := Mean(nil); !errors.Is(err, ErrNoScores) {
		t.Errorf("Mean(nil): err = %v", err)
	}
	b.NumID = 11
	if _, err := Mean([]Metrics{a, b}); err == nil {
		t.Error("Mean over different ID sets: no error")
	}
}

func TestAccuracy(t *testing.T) {
	if got, err := Accuracy([]int{1, 2, 3, 4}, []int{1, 0, 3, 0}); err != nil || got != 0.5 {
		t.Errorf("Accuracy = %v, %v; want 0.5", got, err)
	}
	if _, err := Accuracy([]int{1}, []int{1, 2}); err == nil {
		t.Error("length mismatch: no error")
	}
	if _, err := Accuracy(nil, nil); !errors.Is(err, ErrNoScores) {
		t.Errorf("empty: err = %v", err)
	}
}

func TestFitThreshold(t *testing.T) {
	seq := func(lo, hi int) []float64 {
		var s []float64
		for i := lo; i <= hi; i++ {
			s = append(s, float64(i))
		}
		return s
	}
	for _, c := range []struct {
		name          string
		id            []float64
		target        float64
		wantThreshold float64
		wantTPR       float64
	}{
		{"distinct 19 of 20", seq(1, 20), 0.95, 2, 0.95},
		{"distinct just above", seq(1, 20), 0.951, 1, 1},
		{"distinct 90%", seq(1, 20), 0.9, 3, 0.9},
		{"unsorted", []float64{5, 1, 4, 2, 3}, 0.6, 3, 0.6},
		{"tie group taken whole", []float64{5, 5, 5, 5, 1}, 0.5, 5, 0.8},
		{"tie pairs", []float64{3, 3, 2, 2, 1, 1, 0, 0, 0, 0}, 0.5, 1, 0.6},
		{"tie at the bottom", []float64{9, 8, 7, 0, 0, 0, 0, 0, 0, 0}, 0.95, 0, 1},
		{"target 1 is the minimum", []float64{0.5, -2, 7}, 1, -2, 1},
		{"all equal", []float64{4, 4, 4}, 0.01, 4, 1},
		{"single", []float64{-3}, 0.95, -3, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.id)
			th, tpr, err := FitThreshold(in, c.target)
			if err != nil {
				t.Fatal(err)
			}
			if th != c.wantThreshold || tpr != c.wantTPR {
				t.Errorf("FitThreshold = %v, %v; want %v, %v", th, tpr, c.wantThreshold, c.wantTPR)
			}
			if !slices.Equal(in, c.id) {
				t.Error("FitThreshold modified its input")
			}
		})
	}
}

// TestFitThresholdCounts checks the contract by counting on tie-heavy random data: the
// threshold accepts a fraction >= target, and every larger score accepts less than target.
func TestFitThresholdCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(300)
		id := make([]float64, n)
		for i := range id {
			id[i] = float64(rng.IntN(1 + n/10))
		}
		target := float64(1+rng.IntN(1000)) / 1000
		th, tpr, err := FitThreshold(id, target)
		if err != nil {
			t.Fatal(err)
		}
		accepted := countAtLeast(id, th)
		if tpr != float64(accepted)/float64(n) || tpr < target || !slices.Contains(id, th) {
			t.Fatalf("n=%d target=%v: threshold %v accepts %d, TPR %v", n, target, th, accepted, tpr)
		}
		for _, v := range id {
			if v > th && float64(countAtLeast(id, v))/float64(n) >= target {
				t.Fatalf("n=%d target=%v: larger threshold %v also reaches the target", n, target, v)
			}
		}
	}
}

func TestFitThresholdErrors(t *testing.T) {
	for _, c := range []struct {
		id     []float64
		target float64
		want   error
	}{
		{[]float64{1}, 0, ErrRecall},
		{[]float64{1}, -0.5, ErrRecall},
		{[]float64{1}, 1.5, ErrRecall},
		{[]float64{1}, math.NaN(), ErrRecall},
		{nil, 0.95, ErrNoScores},
		{[]float64{1, math.NaN()}, 0.95, ErrNonFinite},
		{[]float64{math.Inf(1)}, 0.95, ErrNonFinite},
	} {
		if _, _, err := FitThreshold(c.id, c.target); !errors.Is(err, c.want) {
			t.Errorf("FitThreshold(%v, %v): err = %v, want %v", c.id, c.target, err, c.want)
		}
	}
}

func TestReadScores(t *testing.T) {
	in := "# energy scores\n1.5\n\n  -2e-3  \r\n\t# indented comment\n7\n0x1p-2\n"
	got, err := ReadScores(strings.NewReader(in), "s.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1.5, -0.002, 7, 0.25}; !slices.Equal(got, want) {
		t.Errorf("ReadScores = %v, want %v", got, want)
	}
	for _, c := range []struct {
		in, msg string
		want    error
	}{
		{"1\n2\nabc\n", "s.txt:3: invalid score \"abc\": invalid syntax", nil},
		{"1\n1 2\n", "s.txt:2: invalid score \"1 2\"", nil},
		{"1e400\n", "s.txt:1: invalid score \"1e400\": value out of range", nil},
		{"# c\n\nNaN\n", "s.txt:3:", ErrNonFinite},
		{"-inf\n", "s.txt:1:", ErrNonFinite},
		{"# only comments\n\n", "s.txt: no scores", ErrNoScores},
		{"", "s.txt: no scores", ErrNoScores},
		{"1\n" + strings.Repeat("1", 70000) + "\n", "s.txt:2: bufio.Scanner: token too long", nil},
	} {
		_, err := ReadScores(strings.NewReader(c.in), "s.txt")
		if err == nil || !strings.Contains(err.Error(), c.msg) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("ReadScores(%.20q): err = %v, want %q", c.in, err, c.msg)
		}
	}
}

func TestReadScoreFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.txt")
	if err := os.WriteFile(path, []byte("0.5\n0.25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadScoreFile(path)
	if err != nil || !slices.Equal(got, []float64{0.5, 0.25}) {
		t.Errorf("ReadScoreFile = %v, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("0.5\nx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadScoreFile(path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("bad line: err = %v, want it to name %s:2", err, path)
	}
	missing := filepath.Join(t.TempDir(), "missing.txt")
	if _, err := ReadScoreFile(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v", err)
	}
}

// FuzzMetrics checks that the metrics never panic, reject exactly the bad inputs, stay in
// [0,1], and agree with brute-force counting. An even first byte makes tie-heavy scores from
// single bytes; an odd one reads raw float64 bits (NaN, Inf and extremes included).
func FuzzMetrics(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8}, uint16(4), 0.95)
	f.Add([]byte{2, 9, 9, 9, 9, 1, 1, 1}, uint16(3), 1.0)
	f.Add([]byte{4, 5, 5}, uint16(0), 0.95)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8}, uint16(1), 0.5)
	f.Add([]byte{6, 200, 100, 50, 3, 3, 3, 250}, uint16(5), 0.01)
	f.Fuzz(func(t *testing.T, data []byte, split uint16, recall float64) {
		if len(data) == 0 {
			return
		}
		var scores []float64
		if data[0]%2 == 0 {
			for _, b := range data[1:] {
				scores = append(scores, float64(int8(b))/8)
			}
		} else {
			for b := data[1:]; len(b) >= 8; b = b[8:] {
				scores = append(scores, math.Float64frombits(binary.LittleEndian.Uint64(b)))
			}
		}
		nID := int(split) % (len(scores) + 1)
		id, ood := scores[:nID], scores[nID:]
		bad := len(id) == 0 || len(ood) == 0 || !(recall > 0 && recall <= 1) ||
			slices.ContainsFunc(scores, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })

		m, err := Evaluate(id, ood, recall)
		if bad != (err != nil) {
			t.Fatalf("Evaluate(%v, %v, %v): err = %v", id, ood, recall, err)
		}
		if err != nil {
			return
		}
		for name, v := range map[string]float64{
			"auroc": m.AUROC, "aupr_in": m.AUPRIn, "aupr_out": m.AUPROut, "fpr95": m.FPR95,
			"tpr": m.TPRAtThreshold, "fpr95_openood": m.FPR95OpenOOD,
			"tpr_openood": m.TPRAtThresholdOpenOOD, "detection_error": m.DetectionError,
		} {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s = %v outside [0,1]", name, v)
			}
		}
		if m.DetectionError > 0.5 || m.TPRAtThresholdOpenOOD < recall {
			t.Fatalf("detection error %v, OpenOOD TPR %v at target %v", m.DetectionError, m.TPRAtThresholdOpenOOD, recall)
		}
		if len(scores) <= 300 {
			if want := bruteAUROC(id, ood); math.Abs(m.AUROC-want) > 1e-12 {
				t.Fatalf("AUROC = %v, brute force %v", m.AUROC, want)
			}
		}
		swapped, err := AUROC(ood, id)
		if err != nil || math.Abs(m.AUROC+swapped-1) > 1e-12 {
			t.Fatalf("AUROC %v + swapped %v != 1 (%v)", m.AUROC, swapped, err)
		}
		for _, conv := range []Convention{Closest, OpenOOD} {
			p, err := FPRAtRecall(id, ood, recall, conv)
			if err != nil {
				t.Fatal(err)
			}
			if p.TPR != float64(countAtLeast(id, p.Threshold))/float64(len(id)) ||
				p.FPR != float64(countAtLeast(ood, p.Threshold))/float64(len(ood)) {
				t.Fatalf("%s point %+v does not match the counts at its threshold", conv, p)
			}
			if conv == OpenOOD {
				th, tpr, err := FitThreshold(id, recall)
				if err != nil || th != p.Threshold || tpr != p.TPR {
					t.Fatalf("FitThreshold = %v, %v, %v; OpenOOD point %+v", th, tpr, err, p)
				}
			}
		}
	})
}

func bruteAUROC(id, ood []float64) float64 {
	var twice int
	for _, a := range id {
		for _, b := range ood {
			switch {
			case a > b:
				twice += 2
			case a == b:
				twice++
			}
		}
	}
	return float64(twice) / float64(2*len(id)*len(ood))
}

func countAtLeast(s []float64, t float64) int {
	n := 0
	for _, v := range s {
		if v >= t {
			n++
		}
	}
	return n
}

func BenchmarkEvaluate(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	id, ood := make([]float64, 100_000), make([]float64, 100_000)
	for i := range id {
		id[i], ood[i] = rng.NormFloat64()+1, rng.NormFloat64()
	}
	for b.Loop() {
		if _, err := Evaluate(id, ood, DefaultRecall); err != nil {
			b.Fatal(err)
		}
	}
}

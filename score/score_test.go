package score

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestScoresByHand(t *testing.T) {
	z := []float32{1, 2, 3}
	lse := 3 + math.Log(math.Exp(-2)+math.Exp(-1)+1)
	cases := []struct {
		name string
		got  func() (float64, error)
		want float64
	}{
		{"energy T=1", func() (float64, error) { return Energy(z, 1) }, lse},
		{"energy T=2", func() (float64, error) { return Energy(z, 2) }, 2 * math.Log(math.Exp(0.5)+math.Exp(1)+math.Exp(1.5))},
		{"msp", func() (float64, error) { return MSP(z) }, math.Exp(3) / (math.Exp(1) + math.Exp(2) + math.Exp(3))},
		{"maxlogit", func() (float64, error) { return MaxLogit(z) }, 3},
		{"energy of equal logits", func() (float64, error) { return Energy([]float32{5, 5, 5, 5}, 1) }, 5 + math.Log(4)},
		{"msp of equal logits", func() (float64, error) { return MSP([]float32{5, 5, 5, 5}) }, 0.25},
	}
	for _, c := range cases {
		got, err := c.got()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if math.Abs(got-c.want) > 1e-12*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s = %.15g, want %.15g", c.name, got, c.want)
		}
	}
}

func TestScoresStableForLargeLogits(t *testing.T) {
	z := []float32{3e4, -3e4, 3e4 - 1}
	e, err := Energy(z, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3e4 + math.Log(1+math.Exp(-1)); math.Abs(e-want) > 1e-9 {
		t.Errorf("energy %v, want %v", e, want)
	}
	p, err := MSP(z)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 / (1 + math.Exp(-1)); math.Abs(p-want) > 1e-12 {
		t.Errorf("msp %v, want %v", p, want)
	}
	low := float32(-1e30)
	e, err = Energy([]float32{low, low}, 1)
	if want := float64(low) + math.Log(2); err != nil || e != want {
		t.Errorf("energy of very negative logits %v, %v", e, err)
	}
}

func TestNonFiniteLogitsAreErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, z := range [][]float32{{1, nan}, {inf, 0}, {0, -inf}} {
		for name, f := range map[string]Func{"energy": func(z []float32) (float64, error) { return Energy(z, 1) }, "msp": MSP, "maxlogit": MaxLogit} {
			if _, err := f(z); !errors.Is(err, ErrNonFinite) {
				t.Errorf("%s(%v): %v, want ErrNonFinite", name, z, err)
			}
		}
	}
	if _, err := MSP(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("MSP(nil): %v", err)
	}
	if _, err := Energy([]float32{1}, 0); err == nil {
		t.Error("Energy with T=0 worked")
	}
}

func TestSpec(t *testing.T) {
	for _, s := range []Spec{{Kind: KindEnergy}, {Kind: KindEnergy, Temperature: 1000}, {Kind: KindMSP}, {Kind: KindMaxLogit}} {
		if _, err := s.Func(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
	for _, s := range []Spec{{}, {Kind: "odin2"}, {Kind: KindEnergy, Temperature: -1}, {Kind: KindMSP, Temperature: 5}} {
		if _, err := s.Func(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	// Energy with no temperature means T=1.
	f, _ := Spec{Kind: KindEnergy}.Func()
	a, _ := f([]float32{1, 2})
	b, _ := Energy([]float32{1, 2}, 1)
	if a != b {
		t.Errorf("T=0 gives %v, T=1 gives %v", a, b)
	}
}

func TestBatch(t *testing.T) {
	dst := make([]float64, 2)
	if err := Batch(MaxLogit, []float32{1, 2, 5, 3}, 2, dst); err != nil || dst[0] != 2 || dst[1] != 5 {
		t.Fatalf("%v %v", dst, err)
	}
	if err := Batch(MaxLogit, []float32{1, 2, 3}, 2, dst); err == nil {
		t.Error("ragged batch accepted")
	}
	if err := Batch(MaxLogit, []float32{1, 2, float32(math.NaN()), 3}, 2, dst); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN row: %v", err)
	}
	logits := []float32{1, 2, 5, 3}
	allocs := testing.AllocsPerRun(100, func() { _ = Batch(MSP, logits, 2, dst) })
	if allocs != 0 {
		t.Errorf("Batch allocates %v times", allocs)
	}
}

func FuzzEnergy(f *testing.F) {
	f.Add(float32(1), float32(2), float32(3), 1.0)
	f.Add(float32(3e38), float32(-3e38), float32(0), 1000.0)
	f.Fuzz(func(t *testing.T, a, b, c float32, temp float64) {
		z := []float32{a, b, c}
		e, err := Energy(z, temp)
		if err != nil {
			return
		}
		m, _ := MaxLogit(z)
		// max z <= T*logsumexp(z/T) <= max z + T*log(K)
		if math.IsNaN(e) || e < m-1e-9*math.Abs(m) || e > m+temp*math.Log(3)+1e-9*math.Abs(m)+1e-9 {
			t.Fatalf("energy(%v, T=%v) = %v outside [max, max+T log K]", z, temp, e)
		}
	})
}

func BenchmarkEnergy(b *testing.B) {
	z := make([]float32, 1000)
	for i := range z {
		z[i] = float32(i%17) * 0.3
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Energy(z, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGraphSpec(t *testing.T) {
	s := Spec{Kind: KindGraph, Name: "knn(k=5)", Detector: []byte(`{"method": "knn", "k": 5}`)}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.GraphOutput(); got != DefaultOutput {
		t.Errorf("GraphOutput() = %q, want %q", got, DefaultOutput)
	}
	if got, want := s.String(), "graph(ood_score) knn(k=5)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := s.Func(); err == nil {
		t.Error("a graph score has a function of the logits")
	}
	f, err := s.SampleFunc()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f([]float32{1, 2}, -0.25); err != nil || v != -0.25 {
		t.Errorf("graph score of -0.25 = %v, %v", v, err)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		if _, err := f(nil, bad); !errors.Is(err, ErrNonFinite) {
			t.Errorf("graph score of %v: err %v, want ErrNonFinite", bad, err)
		}
	}
	// Equal compares the detector records as JSON values, and a missing Output as the default.
	o := Spec{Kind: KindGraph, Output: DefaultOutput, Name: "knn(k=5)", Detector: []byte("{\n  \"method\":\"knn\",\n  \"k\":5\n}")}
	if !s.Equal(o) {
		t.Errorf("%s and its indented copy differ", s)
	}
	o.Detector = []byte(`{"method":"knn","k":6}`)
	if s.Equal(o) {
		t.Error("k=5 and k=6 records are Equal")
	}
	if !(Spec{Kind: KindEnergy}).Equal(Spec{Kind: KindEnergy, Temperature: 1}) || (Spec{Kind: KindEnergy}).Equal(Spec{Kind: KindMSP}) {
		t.Error("Equal of logit scores is wrong")
	}
	// Which models give what a score reads.
	if err := s.CheckModel("ood_score"); err != nil {
		t.Error(err)
	}
	if err := s.CheckModel(""); err == nil || !strings.Contains(err.Error(), "only its logits") {
		t.Errorf("graph score on a logits-only model: %v", err)
	}
	if err := s.CheckModel("other"); err == nil {
		t.Error("graph score on a model with another score output: no error")
	}
	if err := (Spec{Kind: KindEnergy}).CheckModel("ood_score"); err != nil {
		t.Errorf("energy on a model with a score output: %v", err)
	}
	for _, bad := range []Spec{
		{Kind: KindGraph, Temperature: 2},
		{Kind: KindEnergy, Output: "ood_score"},
		{Kind: KindGraph, Detector: []byte("{not json")},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validates", bad)
		}
	}
}

// TestGEN: GEN against values computed independently (Python, sorted softmax, as OpenOOD's
// generalized_entropy), over all classes and over the top M, ties included; no allocation.
func TestGEN(t *testing.T) {
	for _, c := range []struct {
		z     []float32
		gamma float64
		m     int
		want  float64
	}{
		{[]float32{1, 2, 3}, 0.1, 3, -2.4838428873799954},
		{[]float32{1, 2, 3}, 0.1, 2, -1.7051939744495928},
		{[]float32{0.5, 3, 3, -1}, 0.5, 2, -0.998856892811331},
		{[]float32{5, 5, 5, 5}, 0.1, 100, -3.3834527702987143},
	} {
		got, err := GEN(c.z, c.gamma, c.m)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c.want) > 1e-12 {
			t.Errorf("GEN(%v, %v, %d) = %.15g, want %.15g", c.z, c.gamma, c.m, got, c.want)
		}
	}
	s := Spec{Kind: KindGEN}
	if got := s.String(); got != "gen(gamma=0.1,M=100)" {
		t.Errorf("String() = %q", got)
	}
	f, err := s.Func()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f([]float32{1, 2, 3}); math.Abs(v-(-2.4838428873799954)) > 1e-12 {
		t.Errorf("default GEN = %v", v)
	}
	z := make([]float32, 1000)
	for i := range z {
		z[i] = float32(i % 37)
	}
	if a := testing.AllocsPerRun(10, func() { GEN(z, 0.1, 100) }); a != 0 {
		t.Errorf("GEN with M < K allocates %v times", a)
	}
	if !s.SameScore(Spec{Kind: KindGEN, Gamma: 0.1, TopM: 100}) || s.SameScore(Spec{Kind: KindGEN, Gamma: 0.2}) {
		t.Error("SameScore of gen specs is wrong")
	}
	for _, bad := range []Spec{{Kind: KindGEN, Gamma: -1}, {Kind: KindGEN, TopM: -1}, {Kind: KindMSP, Gamma: 0.1}, {Kind: KindGEN, Temperature: 3}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validates", bad)
		}
	}
}

// TestArgmax: the first of the largest on ties, NaN never wins after the first place, float32
// and float64 alike.
func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		z    []float32
		want int
	}{
		{nil, 0},
		{[]float32{-1}, 0},
		{[]float32{1, 3, 2}, 1},
		{[]float32{1, 3, 3, 2}, 1},
		{[]float32{float32(math.Inf(-1)), -5}, 1},
		{[]float32{1, nan, 2}, 2},
		{[]float32{nan, 1, 2}, 0},
	} {
		if got := Argmax(c.z); got != c.want {
			t.Errorf("Argmax(%v) = %d, want %d", c.z, got, c.want)
		}
	}
	if got := Argmax([]float64{0.5, 2, 2, math.NaN()}); got != 1 {
		t.Errorf("Argmax of float64 = %d, want 1", got)
	}
}

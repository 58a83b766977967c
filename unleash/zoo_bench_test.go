package unleash_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"github.com/oodguard/oodguard/unleash/torchbench"
)

var (
	zooBench    = flag.Bool("zoo", false, "run BenchmarkZooStep (minutes: every testdata/zoo family against PyTorch)")
	zooFamily   = flag.String("zoo.family", "", "BenchmarkZooStep: only the families whose names contain this")
	zooRSSSteps = flag.Int("zoo.rss-steps", 20, "BenchmarkZooStep: steps of the peak-RSS runs")
	zooRSSOnly  = flag.Bool("zoo.rss-only", false, "BenchmarkZooStep: only the peak-RSS runs, no timing")
	zooRSSChild = flag.String("zoo.rss-child", "", "TestZooRSSChild: METHOD/FAMILY (or METHOD/PATH.onnx) to run (set by BenchmarkZooStep)")
)

// zooBenchBack is the backend of the zoo benchmark: $UNLEASH_BENCH_BACKEND, default onnx.
func zooBenchBack() string {
	if s := os.Getenv("UNLEASH_BENCH_BACKEND"); s != "" {
		return s
	}
	return "onnx"
}

// zooBatch is the batch of the zoo benchmark (the issue's: 64).
const zooBatch = 64

// BenchmarkZooStep measures one UMAP step and one UM step at batch 64 on every testdata/zoo
// family (NAME.onnx, BatchNorm kept and run in train mode) against the same step in PyTorch 1.13
// on the same architecture (testdata/unleash/bench_torch.py --arch zoo:NAME, built by
// testdata/make_zoo.py's constructors), both on 2 threads, alternating (torchbench.Compare:
// ratio is the median round, ratio-min and ratio-max the extremes). It then measures the peak
// RSS (VmHWM) of a run of -zoo.rss-steps steps in separate processes: this test binary
// (TestZooRSSChild) and the PyTorch script (--rss-steps), reported as rss-MB, torch-rss-MB and
// rss-ratio. It runs only with -zoo (scripts/zoo-bench.sh, make bench-zoo): it takes minutes.
func BenchmarkZooStep(b *testing.B) {
	if !*zooBench {
		b.Skip("the zoo benchmark runs with -zoo (make bench-zoo)")
	}
	for _, method := range []string{"umap", "um"} {
		for _, fam := range zooFamilies {
			if !strings.Contains(fam, *zooFamily) {
				continue
			}
			b.Run(method+"/"+fam, func(b *testing.B) {
				if !*zooRSSOnly {
					tr, x, y := zooTrainer(b, method, fam)
					if _, err := tr.Step(x, y, 0.01); err != nil { // compile outside the timing
						b.Fatal(err)
					}
					step := func() error { _, err := tr.Step(x, y, 0.01); return err }
					torchbench.Compare(b, zooBatch, step, "../testdata/unleash/bench_torch.py", "--arch", "zoo:"+fam, "--method", method)
				}
				b.StopTimer()
				ours, oursBase, err := zooRSSOurs(method, fam)
				if err != nil {
					b.Fatal(err)
				}
				torch, torchBase, err := zooRSSTorch(method, fam)
				if err != nil {
					b.Logf("no PyTorch RSS: %v", err)
				}
				b.ReportMetric(ours, "rss-MB")
				b.ReportMetric(ours-oursBase, "rss-growth-MB")
				if torch > 0 {
					b.ReportMetric(torch, "torch-rss-MB")
					b.ReportMetric(torch-torchBase, "torch-rss-growth-MB")
					b.ReportMetric(ours/torch, "rss-ratio")
				}
			})
		}
	}
}

// zooTrainer returns a trainer of method on testdata/zoo/FAMILY.onnx (or on FAMILY itself, a
// path ending in .onnx) and a random batch of 64.
func zooTrainer(tb testing.TB, method, fam string) (*unleash.Trainer, []float32, []int) {
	tb.Helper()
	path := fam
	if !strings.HasSuffix(fam, ".onnx") {
		path = filepath.Join(runtimetest.RepoRoot(tb), "testdata", "zoo", fam+".onnx")
	}
	m, err := onnxgraph.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	opts := unleash.DefaultOptions(unleash.UMAP)
	if method == "um" {
		opts = unleash.DefaultOptions(unleash.UM)
	}
	b, err := unleash.NewBackend(zooBenchBack())
	if err != nil {
		tb.Fatal(err)
	}
	opts.Constraint, opts.Backend = 0.3, b
	tr, err := unleash.New(m, opts)
	if err != nil {
		tb.Fatal(err)
	}
	x, y := randomBatch(m, zooBatch, 10, 1)
	return tr, x, y
}

// TestZooRSSChild is the process BenchmarkZooStep measures: with -zoo.rss-child METHOD/FAMILY it
// runs -zoo.rss-steps steps (the first compiles) and prints its peak RSS; otherwise it skips.
func TestZooRSSChild(t *testing.T) {
	if *zooRSSChild == "" {
		t.Skip("run by BenchmarkZooStep")
	}
	base := peakRSSMB(t)
	method, fam, _ := strings.Cut(*zooRSSChild, "/")
	tr, x, y := zooTrainer(t, method, fam)
	for range *zooRSSSteps {
		if _, err := tr.Step(x, y, 0.01); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("peak RSS: %.1f MB (at start: %.1f MB; %s, %d steps)\n", peakRSSMB(t), base, *zooRSSChild, *zooRSSSteps)
}

// zooRSSOurs runs TestZooRSSChild in a fresh process of this test binary and returns its peak
// RSS and its peak before it loaded the model and the backend, in MB.
func zooRSSOurs(method, fam string) (peak, base float64, err error) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestZooRSSChild$", "-test.count", "1",
		"-zoo.rss-child", method+"/"+fam, "-zoo.rss-steps", fmt.Sprint(*zooRSSSteps))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("%s/%s: %w\n%s", method, fam, err, out)
	}
	return parsePeakRSS(string(out))
}

// zooRSSTorch runs the PyTorch script's peak-RSS run: its peak RSS and its peak after importing
// PyTorch and building the model, in MB.
func zooRSSTorch(method, fam string) (peak, base float64, err error) {
	out, err := exec.Command("/usr/bin/python3", "../testdata/unleash/bench_torch.py", "--threads", "2",
		"--arch", "zoo:"+fam, "--method", method, "--rss-steps", fmt.Sprint(*zooRSSSteps)).Output()
	if err != nil {
		return 0, 0, err
	}
	return parsePeakRSS(string(out))
}

// parsePeakRSS reads "peak RSS: X MB (WORDS: Y MB; ...)" lines.
func parsePeakRSS(out string) (peak, base float64, err error) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "peak RSS: ")
		if !ok {
			continue
		}
		if _, err := fmt.Sscanf(rest, "%g MB", &peak); err != nil {
			continue
		}
		if _, after, ok := strings.Cut(rest, ": "); ok {
			fmt.Sscanf(after, "%g MB", &base)
		}
		return peak, base, nil
	}
	return 0, 0, fmt.Errorf("no peak RSS in %q", out)
}

// peakRSSMB returns this process's VmHWM in MB.
func peakRSSMB(tb testing.TB) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb float64
		if _, err := fmt.Sscanf(s.Text(), "VmHWM: %g kB", &kb); err == nil {
			return kb / 1024
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

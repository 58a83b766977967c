// Package torchbench runs the PyTorch speed scripts the training benchmarks compare with.
package torchbench

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// ImagesPerSecond runs a PyTorch speed script with Debian's Python (2 threads, 2 repeats, then
// args) that prints "repeat N: X img/s" lines and returns their mean, or 0, logged, when
// PyTorch is not installed.
func ImagesPerSecond(tb testing.TB, script string, args ...string) float64 {
	out, err := exec.Command("/usr/bin/python3", append([]string{script, "--threads", "2", "--repeats", "2"}, args...)...).Output()
	if err != nil {
		tb.Logf("no PyTorch baseline (%s): %v", script, err)
		return 0
	}
	var sum float64
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		var r int
		var v float64
		if _, err := fmt.Sscanf(line, "repeat %d: %g img/s", &r, &v); err == nil {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Compare times step, which processes batch images, in b's loop, and reports img/s. When the
// PyTorch script runs, it runs just before and just after the loop (the machine may be shared,
// so both sides are measured in the same window) and the mean of the two is reported as
// torch-img/s with the ratio ours/PyTorch.
func Compare(b *testing.B, batch int, step func() error, script string, args ...string) {
	before := ImagesPerSecond(b, script, args...)
	b.ResetTimer()
	for b.Loop() {
		if err := step(); err != nil {
			b.Fatal(err)
		}
	}
	ours := float64(b.N*batch) / b.Elapsed().Seconds()
	b.ReportMetric(ours, "img/s")
	if after := ImagesPerSecond(b, script, args...); before > 0 && after > 0 {
		torch := (before + after) / 2
		b.ReportMetric(torch, "torch-img/s")
		b.ReportMetric(ours/torch, "ratio")
	}
}

// Package torchbench runs the PyTorch speed scripts the training benchmarks compare with.
package torchbench

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// ImagesPerSecond runs a PyTorch speed script with Debian's Python (2 threads, then args) that
// prints "repeat N: X img/s" lines and returns their mean, or 0, logged, when PyTorch is not
// installed.
func ImagesPerSecond(tb testing.TB, script string, args ...string) float64 {
	out, err := exec.Command("/usr/bin/python3", append([]string{script, "--threads", "2"}, args...)...).Output()
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

// Rounds is how many times Compare alternates between PyTorch and step.
const Rounds = 3

// Compare times step, which processes batch images, in b's loop, and reports img/s. When the
// PyTorch script runs, Compare also alternates it with rounds of step, PyTorch first and last
// (PyTorch, ours, PyTorch, ours, PyTorch, ours, PyTorch; a fresh PyTorch process of one repeat
// each time, about a second of step each round), and reports:
//
//	ratio        the median over the rounds of ours / PyTorch, PyTorch being the mean of the
//	             two runs on either side of the round
//	ratio-min    the lowest round
//	ratio-max    the highest round
//	torch-img/s  the median PyTorch run
//
// The machine may be shared and PyTorch's speed varies from process to process by ±15%
// (measured), more than ours does; pairing each round with its neighbours and taking the
// median keeps one fast or slow PyTorch process from deciding the ratio.
func Compare(b *testing.B, batch int, step func() error, script string, args ...string) {
	args = append([]string{"--repeats", "1"}, args...)
	torch := []float64{ImagesPerSecond(b, script, args...)}
	var ratios []float64
	for r := 0; torch[0] > 0 && r < Rounds; r++ {
		ours := round(b, batch, step, time.Second)
		t := ImagesPerSecond(b, script, args...)
		if t == 0 {
			ratios = nil
			break
		}
		ratios = append(ratios, ours/((torch[r]+t)/2))
		torch = append(torch, t)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := step(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
	if len(ratios) == 0 {
		return
	}
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(median(torch), "torch-img/s")
}

// round runs step for at least d and returns its images per second.
func round(b *testing.B, batch int, step func() error, d time.Duration) float64 {
	start, n := time.Now(), 0
	for time.Since(start) < d {
		if err := step(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(n*batch) / time.Since(start).Seconds()
}

// median returns the middle value of v (the mean of the two middle ones for even lengths).
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

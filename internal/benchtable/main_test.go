package main

import (
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `goos: linux
pkg: github.com/oodguard/oodguard/runtime
BenchmarkInference/cnn28/batch64/threads2-2   409   8630396 ns/op   0 allocs/call   14571 bare-img/s   15103 img/s   1.037 ratio
BenchmarkEvalVsRaw/cnn28/images2048/threads2-2   4  198991987 ns/op   0.7692 ratio
BenchmarkEnergy-2   100   1200 ns/op   0 B/op   0 allocs/op
PASS`
	rows, err := parse(strings.NewReader(in), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.Name != "BenchmarkInference/cnn28/batch64/threads2" || r.Package != "github.com/oodguard/oodguard/runtime" ||
		r.Metrics["ratio"] != 1.037 || r.Metrics["img/s"] != 15103 || r.Meets == nil || !*r.Meets {
		t.Errorf("row 0: %+v", r)
	}
	if rows[1].Meets == nil || *rows[1].Meets {
		t.Errorf("row 1 should miss its 0.9 target: %+v", rows[1])
	}
	if rows[2].Meets != nil || rows[2].Metrics["allocs/op"] != 0 {
		t.Errorf("row 2: %+v", rows[2])
	}
}

func TestPrintShowsPlainTimings(t *testing.T) {
	in := `BenchmarkEnergy-2   100   1200 ns/op   0 B/op   0 allocs/op
BenchmarkEvalVsRaw/cnn28-2   4  198991987 ns/op   0.7692 ratio   5000 img/s
PASS`
	rows, err := parse(strings.NewReader(in), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	print(&out, rows)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "ns/op=1200") || strings.Contains(lines[2], "ns/op") {
		t.Errorf("a plain timing shows its ns/op, a benchmark with its own metrics does not:\n%s", out.String())
	}
}

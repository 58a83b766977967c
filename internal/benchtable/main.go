// Command benchtable turns `go test -bench` output into the table `make bench` prints: one row
// per benchmark with its ratio against the baseline measured in the same run, the target, and
// the other metrics the benchmark reported. It also writes the rows as JSON.
//
//	go test -run '^$' -bench . ./... | go run ./internal/benchtable -json bench.json
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// targets are the ratio targets, by benchmark name prefix.
var targets = []struct {
	prefix string
	min    float64
	what   string
}{
	{"BenchmarkInference/", 0.98, "runtime.Runner vs bare onnxruntime_go"},
	{"BenchmarkEvalVsRaw/", 0.90, "oodguard eval vs raw batched ONNX Runtime"},
	{"BenchmarkPipelineVsBare/", 0.95, "daemon frame loop vs bare ONNX Runtime"},
	{"BenchmarkUMAPStep", 0.50, "mask learning vs PyTorch"},
	{"BenchmarkTrain", 0.50, "training vs PyTorch"},
}

// Row is one benchmark result.
type Row struct {
	Name    string             `json:"name"`
	Package string             `json:"package"`
	Iters   int                `json:"iterations"`
	Metrics map[string]float64 `json:"metrics"`
	Target  float64            `json:"target_ratio,omitempty"`
	Versus  string             `json:"versus,omitempty"`
	Meets   *bool              `json:"meets_target,omitempty"`
}

func main() {
	jsonPath := flag.String("json", "", "also write the rows as JSON to this file")
	flag.Parse()
	rows, err := parse(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	print(os.Stdout, rows)
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(map[string]any{"time": time.Now().UTC(), "rows": rows}, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
	}
}

// parse reads benchmark output, echoing it to echo, and returns the result rows.
func parse(r io.Reader, echo io.Writer) ([]Row, error) {
	var rows []Row
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(line, "pkg: ")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		row := Row{Name: trimProcs(f[0]), Package: pkg, Iters: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			row.Metrics[f[i+1]] = v
		}
		for _, t := range targets {
			if strings.HasPrefix(row.Name, t.prefix) {
				row.Target, row.Versus = t.min, t.what
				if r, ok := row.Metrics["ratio"]; ok {
					meets := r >= t.min
					row.Meets = &meets
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// trimProcs drops the -GOMAXPROCS suffix go test adds to a name.
func trimProcs(name string) string {
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func print(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "\n%-58s %7s %7s %-4s %s\n", "benchmark", "ratio", "target", "ok", "metrics")
	for _, r := range rows {
		ratio, target, ok := "", "", ""
		if v, has := r.Metrics["ratio"]; has {
			ratio = fmt.Sprintf("%.3f", v)
		}
		if r.Target > 0 {
			target = fmt.Sprintf(">=%.2f", r.Target)
		}
		if r.Meets != nil {
			ok = map[bool]string{true: "yes", false: "NO"}[*r.Meets]
		}
		var keys []string
		for k := range r.Metrics {
			if k != "ratio" && k != "ns/op" {
				keys = append(keys, k)
			}
		}
		if _, has := r.Metrics["ns/op"]; has && !hasOwnMetric(keys) {
			keys = append(keys, "ns/op") // a plain timing: its time is the result
		}
		sort.Strings(keys)
		var ms []string
		for _, k := range keys {
			ms = append(ms, fmt.Sprintf("%s=%s", k, strconv.FormatFloat(r.Metrics[k], 'g', 4, 64)))
		}
		fmt.Fprintf(w, "%-58s %7s %7s %-4s %s\n", r.Name, ratio, target, ok, strings.Join(ms, " "))
	}
}

// hasOwnMetric reports whether keys hold a metric the benchmark reported itself, beyond the
// allocation counts of -benchmem.
func hasOwnMetric(keys []string) bool {
	for _, k := range keys {
		if k != "B/op" && k != "allocs/op" {
			return true
		}
	}
	return false
}

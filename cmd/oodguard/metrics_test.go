package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runMetrics runs "oodguard metrics args..." through run and returns the exit code and what
// went to stdout and stderr.
func runMetrics(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(append([]string{"metrics"}, args...), &o, &e)
	return code, o.String(), e.String()
}

// writeScores writes a score file into a temp dir and returns its path.
func writeScores(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMetricsCommand(t *testing.T) {
	// 20 ID scores 1..20; "far" lies below all of them, "near" interleaves.
	var b strings.Builder
	b.WriteString("# ID energy scores\n")
	for i := 1; i <= 20; i++ {
		b.WriteString(strings.Repeat(" ", i%2) + string(rune('0'+i/10)) + string(rune('0'+i%10)) + "\n")
	}
	id := writeScores(t, "id.txt", b.String())
	far := writeScores(t, "far.txt", "-1\n-2\n\n-3\n0\n")
	near := writeScores(t, "near.txt", "1.5\n2.5\n15\n30\n")

	code, out, errOut := runMetrics(t, "--id", id, "--ood", far, "--ood", near)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"ID positive, higher score = more ID; FPR95 = closest-to-95%-TPR (method) and first-TPR>=95% (OpenOOD)",
		"(20 scores)", "AUROC", "FPR95-OpenOOD", "far.txt", "near.txt", "mean of 2",
		"100.00", // far: AUROC
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runMetrics(t, "--id", id, "--ood", far, "--ood", near, "--json", "--recall", "0.9")
	if code != 0 {
		t.Fatalf("--json: exit %d, stderr %q", code, errOut)
	}
	var r struct {
		Conventions string  `json:"conventions"`
		Recall      float64 `json:"recall"`
		Sets        []struct {
			OODFile string  `json:"ood_file"`
			NumOOD  int     `json:"n_ood"`
			AUROC   float64 `json:"auroc"`
			FPR95   float64 `json:"fpr95"`
			FPROpen float64 `json:"fpr95_openood"`
		} `json:"sets"`
		Mean struct {
			NumID  int     `json:"n_id"`
			NumOOD int     `json:"n_ood"`
			AUROC  float64 `json:"auroc"`
		} `json:"mean"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	// near vs 1..20: 1.5 beats 1, 2.5 beats 2, 15 beats 14 and ties 15, 30 beats all:
	// AUROC = 1 - (1+2+14.5+20)/80. At recall 0.9 the threshold is 3 (18 of 20 ID):
	// OOD 15 and 30 are accepted, and for the closest rule also 2.5 (the lowest threshold
	// at recall 0.9 is the OOD score 2.5).
	if len(r.Sets) != 2 || r.Sets[0].OODFile != far || r.Sets[1].OODFile != near || r.Sets[1].NumOOD != 4 ||
		r.Sets[0].AUROC != 1 || r.Sets[1].AUROC != 1-37.5/80 ||
		r.Sets[1].FPROpen != 0.5 || r.Sets[1].FPR95 != 0.75 {
		t.Errorf("sets = %+v", r.Sets)
	}
	if r.Recall != 0.9 || !strings.Contains(r.Conventions, "FPR90 = closest-to-90%-TPR") ||
		r.Mean.NumID != 20 || r.Mean.NumOOD != 8 || r.Mean.AUROC != (1+1-37.5/80)/2 {
		t.Errorf("report = %+v", r)
	}
}

func TestMetricsCommandErrors(t *testing.T) {
	id := writeScores(t, "id.txt", "1\n2\n3\n")
	ood := writeScores(t, "ood.txt", "0\n")
	bad := writeScores(t, "bad.txt", "0\nNaN\n")
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no flags", nil, 2, "--id is required"},
		{"no ood", []string{"--id", id}, 2, "at least one --ood is required"},
		{"no id", []string{"--ood", ood}, 2, "--id is required"},
		{"recall 0", []string{"--id", id, "--ood", ood, "--recall", "0"}, 2, "--recall must be in (0, 1]"},
		{"recall 1.5", []string{"--id", id, "--ood", ood, "--recall", "1.5"}, 2, "--recall must be in (0, 1]"},
		{"stray argument", []string{"--id", id, "--ood", ood, "extra"}, 2, `unexpected argument "extra"`},
		{"unknown flag", []string{"--id", id, "--ood", ood, "--bogus"}, 2, "flag provided but not defined"},
		{"missing file", []string{"--id", id, "--ood", ood + ".missing"}, 1, "no such file"},
		{"NaN score", []string{"--id", id, "--ood", bad}, 1, bad + ":2:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runMetrics(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.code, c.msg)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
}

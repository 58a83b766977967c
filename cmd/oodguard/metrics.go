package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/oodguard/oodguard/calibrate"
)

// metricsCommand evaluates OOD detection from score files: AUROC, AUPR-In/Out, FPR at a target
// ID recall in both conventions, and detection error, per OOD set and averaged.
type metricsCommand struct{}

// metricsReport is the --json output. Rates are fractions in [0,1].
type metricsReport struct {
	Conventions string            `json:"conventions"`
	IDFile      string            `json:"id_file"`
	Recall      float64           `json:"recall"`
	Sets        []oodMetrics      `json:"sets"`
	Mean        calibrate.Metrics `json:"mean"`
}

// oodMetrics is the metrics of one OOD score file.
type oodMetrics struct {
	OODFile string `json:"ood_file"`
	calibrate.Metrics
}

// Usage prints the command's synopsis.
func (c *metricsCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard metrics --id FILE --ood FILE [--ood FILE ...] [--recall 0.95] [--json]

Computes OOD-detection metrics of a score from score files (one score per line, higher = more
ID; blank lines and # comments ignored): for each OOD file against the ID file, and the
unweighted mean over the OOD files. ID is the positive class. FPR95 is given in two
conventions: the method's (the threshold whose ID recall is closest to the target) and
OpenOOD's (the first threshold whose ID recall reaches the target). The table shows values
x100; --json gives fractions in [0,1].

Flags:
`)
}

// Run parses the flags, reads the score files and prints the metrics.
func (c *metricsCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("metrics", c)
	idPath := fs.String("id", "", "score file of the ID test set (required)")
	var oodPaths stringList
	fs.Var(&oodPaths, "ood", "score file of an OOD set (required; repeat for several sets)")
	recall := fs.Float64("recall", calibrate.DefaultRecall, "target ID recall (TPR) at which FPR is read, in (0, 1]")
	asJSON := fs.Bool("json", false, "print JSON (fractions) instead of a table (x100)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *idPath == "":
		return usagef("--id is required")
	case len(oodPaths) == 0:
		return usagef("at least one --ood is required")
	case !(*recall > 0 && *recall <= 1):
		return usagef("--recall must be in (0, 1], got %v", *recall)
	}

	id, err := calibrate.ReadScoreFile(*idPath)
	if err != nil {
		return err
	}
	report := metricsReport{Conventions: conventions(*recall), IDFile: *idPath, Recall: *recall}
	all := make([]calibrate.Metrics, 0, len(oodPaths))
	for _, path := range oodPaths {
		if err := ctx.Err(); err != nil {
			return err
		}
		ood, err := calibrate.ReadScoreFile(path)
		if err != nil {
			return err
		}
		m, err := calibrate.Evaluate(id, ood, *recall)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		report.Sets = append(report.Sets, oodMetrics{OODFile: path, Metrics: m})
		all = append(all, m)
	}
	if report.Mean, err = calibrate.Mean(all); err != nil {
		return err
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(report)
	}
	return printMetricsTable(stdout, report)
}

// conventions states the conventions of the report for a target recall.
func conventions(recall float64) string {
	p := strconv.FormatFloat(100*recall, 'f', -1, 64)
	return fmt.Sprintf("ID positive, higher score = more ID; FPR%s = closest-to-%s%%-TPR (method) and first-TPR>=%s%% (OpenOOD)", p, p, p)
}

// printMetricsTable prints the report as an aligned table with values x100.
func printMetricsTable(w io.Writer, r metricsReport) error {
	p := strconv.FormatFloat(100*r.Recall, 'f', -1, 64)
	fmt.Fprintf(w, "%s\nID: %s (%d scores). Values x100.\n\n", r.Conventions, r.IDFile, r.Mean.NumID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "OOD set\tN\tAUROC\tAUPR-In\tAUPR-Out\tFPR%s\tTPR\tFPR%s-OpenOOD\tTPR-OpenOOD\tDetErr\t\n", p, p)
	row := func(name string, m calibrate.Metrics) {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, m.NumOOD,
			100*m.AUROC, 100*m.AUPRIn, 100*m.AUPROut, 100*m.FPR95, 100*m.TPRAtThreshold,
			100*m.FPR95OpenOOD, 100*m.TPRAtThresholdOpenOOD, 100*m.DetectionError)
	}
	for _, s := range r.Sets {
		row(s.OODFile, s.Metrics)
	}
	row(fmt.Sprintf("mean of %d", len(r.Sets)), r.Mean)
	return tw.Flush()
}

// stringList is a flag that may be repeated.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty file name")
	}
	*s = append(*s, v)
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/calibrate/batchscore"
	"github.com/oodguard/oodguard/calibrate/report"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/score"
	ort "github.com/oodguard/oodguard/runtime"
)

// evalCommand evaluates OOD detection on an ID test set against OOD sets and writes a report.
type evalCommand struct {
	ort         ortFlags
	model, id   string
	ood         dataList
	calib       string
	preset      string
	specFile    string
	scores      string
	temperature float64
	limit       int
	batch       int
	out         string
	jsonOut     bool
}

func (c *evalCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard eval -model MODEL.onnx -id ID_TEST -ood OOD [-ood OOD ...] [flags]

Scores the ID test set and every OOD set, and reports per OOD set and as the unweighted mean:
FPR95 (the method's closest to 95 percent TPR point, and OpenOOD's first TPR >= 95 percent point), AUROC,
AUPR-In, AUPR-Out, detection error, and the ID top-1 accuracy. ID is the positive class and
scores are higher = more ID. With -calibration, the preprocessing spec and threshold come from
calibration.json (which must be for this model) and the report shows the share of each OOD set
the threshold accepts.

Writes report.json, report.csv, index.html and PNG plots into -out.

Datasets are PATH or PATH#PREFIX (see 'oodguard calibrate -h').

Flags:
`)
}

func (c *evalCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("eval", c)
	c.ort.register(fs)
	fs.StringVar(&c.model, "model", "", "ONNX image classifier (required)")
	fs.StringVar(&c.id, "id", "", "ID test data (required)")
	fs.Var(&c.ood, "ood", "OOD data (required; repeat for several sets)")
	fs.StringVar(&c.calib, "calibration", "", "calibration.json for this model")
	fs.StringVar(&c.preset, "preset", "", "preprocessing preset: fashion-mnist or cifar10")
	fs.StringVar(&c.specFile, "preprocess", "", "preprocessing spec JSON (default: from -calibration, else MODEL.preprocess.json)")
	fs.StringVar(&c.scores, "scores", "energy,msp,maxlogit", "scores to evaluate, comma separated")
	fs.Float64Var(&c.temperature, "temperature", 1, "energy temperature T")
	fs.IntVar(&c.limit, "limit", 0, "use only the first N images of each set (0: all)")
	fs.IntVar(&c.batch, "batch", 64, "images per ONNX Runtime run")
	fs.StringVar(&c.out, "out", "report", "report folder")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.model == "" || c.id == "" || len(c.ood) == 0 {
		return usagef("-model, -id and at least one -ood are required")
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	specs, err := parseScoreList(c.scores, c.temperature)
	if err != nil {
		return usageError{err}
	}
	idData, err := parseDataArg(c.id)
	if err != nil {
		return usageError{err}
	}
	var cal *calibrate.Calibration
	var spec preprocess.Spec
	if c.calib != "" {
		if c.preset != "" || c.specFile != "" {
			return usagef("-calibration carries the preprocessing spec; drop -preset/-preprocess")
		}
		if cal, err = calibrate.LoadCalibration(c.calib); err != nil {
			return err
		}
		spec = cal.Preprocess
	} else if spec, _, err = loadSpec(c.preset, c.specFile, c.model); err != nil {
		return err
	}
	opts, err := c.ort.options()
	if err != nil {
		return err
	}
	clf, err := ort.Open(c.model, opts)
	if err != nil {
		return err
	}
	defer clf.Close()
	if cal != nil {
		if err := cal.CheckModel(clf.SHA256()); err != nil {
			return fmt.Errorf("calibration %s, model %s: %w", c.calib, c.model, err)
		}
	}

	start := time.Now()
	bopts := batchscore.Options{Batch: c.batch, Scores: specs, Limit: c.limit}
	idRes, err := scoreData(ctx, clf, spec, idData, false, bopts)
	if err != nil {
		return err
	}
	oodRes := make([]*batchscore.Result, len(c.ood))
	for i, d := range c.ood {
		if oodRes[i], err = scoreData(ctx, clf, spec, d, true, bopts); err != nil {
			return err
		}
	}

	rep := &report.Report{
		Model: c.model, ModelSHA256: clf.SHA256(), Tool: "oodguard " + Version, Created: time.Now().UTC().Truncate(time.Second),
		ID: calibrate.DataRef{Role: "id-test", Name: idData.name(), Count: idRes.Len()},
	}
	if acc, ok := idRes.Accuracy(); ok {
		rep.Accuracy = &acc
	}
	for i, d := range c.ood {
		rep.OOD = append(rep.OOD, calibrate.DataRef{Role: "ood", Name: d.name(), Count: oodRes[i].Len()})
	}
	raw := make([]report.Scores, len(specs))
	for i, sp := range specs {
		sr := report.ScoreResult{Score: sp.String()}
		if cal != nil && cal.Score == sp {
			th := cal.Threshold
			sr.Threshold = &th
		}
		var all []calibrate.Metrics
		raw[i].ID = idRes.Scores[i]
		for j, d := range c.ood {
			m, err := calibrate.Evaluate(idRes.Scores[i], oodRes[j].Scores[i], calibrate.DefaultRecall)
			if err != nil {
				return fmt.Errorf("%s vs %s: %w", sp, d.name(), err)
			}
			set := report.SetResult{Name: d.name(), Metrics: m}
			if sr.Threshold != nil {
				acc := acceptedShare(oodRes[j].Scores[i], *sr.Threshold)
				set.AcceptedOOD = &acc
			}
			sr.Sets = append(sr.Sets, set)
			all = append(all, m)
			raw[i].OOD = append(raw[i].OOD, oodRes[j].Scores[i])
		}
		if sr.Mean, err = calibrate.Mean(all); err != nil {
			return err
		}
		rep.Scores = append(rep.Scores, sr)
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := report.Write(c.out, rep, raw); err != nil {
		return err
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(stdout, rep)
	fmt.Fprintf(stdout, "report: %s/index.html\n", strings.TrimSuffix(c.out, "/"))
	return nil
}

// parseScoreList parses "energy,msp,maxlogit".
func parseScoreList(s string, temperature float64) ([]score.Spec, error) {
	var out []score.Spec
	for _, k := range strings.Split(s, ",") {
		sp := score.Spec{Kind: score.Kind(strings.TrimSpace(k))}
		if sp.Kind == score.KindEnergy {
			sp.Temperature = temperature
		}
		if err := sp.Validate(); err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

// acceptedShare is the fraction of scores at or above the threshold (accepted as ID).
func acceptedShare(scores []float64, th float64) float64 {
	n := 0
	for _, s := range scores {
		if s >= th {
			n++
		}
	}
	return float64(n) / float64(len(scores))
}

func printReport(w io.Writer, r *report.Report) {
	fmt.Fprintf(w, "ID %s (%d images)", r.ID.Name, r.ID.Count)
	if r.Accuracy != nil {
		fmt.Fprintf(w, ", top-1 accuracy %.2f%%", 100**r.Accuracy)
	}
	fmt.Fprintf(w, "\n%s\n\n", report.Convention)
	fmt.Fprintf(w, "%-16s %-28s %8s %8s %8s %8s %8s\n", "score", "OOD set", "FPR95", "FPR95oo", "AUROC", "AUPR-In", "AUPR-Out")
	row := func(score, set string, m calibrate.Metrics) {
		fmt.Fprintf(w, "%-16s %-28s %8.2f %8.2f %8.2f %8.2f %8.2f\n", score, set, 100*m.FPR95, 100*m.FPR95OpenOOD, 100*m.AUROC, 100*m.AUPRIn, 100*m.AUPROut)
	}
	for _, s := range r.Scores {
		for _, set := range s.Sets {
			row(s.Score, set.Name, set.Metrics)
		}
		if len(s.Sets) > 1 {
			row(s.Score, "mean", s.Mean)
		}
	}
}

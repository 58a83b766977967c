package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/calibrate/batchscore"
	"github.com/oodguard/oodguard/calibrate/report"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/score"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/odin"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
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
	sub         subset
	batch       int
	out         string
	jsonOut     bool
	odin        odin.Options // the ODIN settings, when -scores names odin
	odinBackend string
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

The odin score (-scores ...,odin) is host-only: it needs the input gradient, so the model runs on
GoMLX (-odin-backend) instead of ONNX Runtime. T = -odin-temperature, and the pixel-space step
-odin-epsilon becomes epsilon/std per channel on the normalised input. The model's convolutions
must have odd kernel sizes.

Datasets are PATH or PATH#PREFIX (see 'oodguard calibrate -h').

Flags:
`)
}

func (c *evalCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("eval", c)
	c.ort.register(fs)
	c.ort.registerWorkers(fs)
	fs.StringVar(&c.model, "model", "", "ONNX image classifier (required)")
	fs.StringVar(&c.id, "id", "", "ID test data (required)")
	fs.Var(&c.ood, "ood", "OOD data (required; repeat for several sets)")
	fs.StringVar(&c.calib, "calibration", "", "calibration.json for this model")
	fs.StringVar(&c.preset, "preset", "", "preprocessing preset: fashion-mnist or cifar10")
	fs.StringVar(&c.specFile, "preprocess", "", "preprocessing spec JSON (default: from -calibration, else MODEL.preprocess.json)")
	fs.StringVar(&c.scores, "scores", "energy,msp,maxlogit", "scores to evaluate, comma separated: energy, msp, maxlogit, gen, graph (the model's score output; added when it has one), odin")
	fs.Float64Var(&c.odin.Temperature, "odin-temperature", odin.DefaultTemperature, "ODIN temperature T")
	fs.Float64Var(&c.odin.Epsilon, "odin-epsilon", odin.DefaultEpsilon, "ODIN perturbation step in [0,1] pixel space")
	fs.StringVar(&c.odinBackend, "odin-backend", "onnx", "GoMLX backend for ODIN: onnx (ONNX Runtime) or go")
	fs.Float64Var(&c.temperature, "temperature", 1, "energy temperature T")
	c.sub.register(fs, "each set", true)
	fs.IntVar(&c.batch, "batch", 64, "images per ONNX Runtime run")
	fs.StringVar(&c.out, "out", "report", "report folder")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	if c.model == "" || c.id == "" || len(c.ood) == 0 {
		return usagef("-model, -id and at least one -ood are required")
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if err := checkTemperature("temperature", c.temperature); err != nil {
		return err
	}
	if err := c.sub.check("limit"); err != nil {
		return err
	}
	scoreList, withODIN := splitODIN(c.scores)
	var specs []score.Spec
	if scoreList != "" {
		if specs, err = parseScoreList(scoreList, c.temperature); err != nil {
			return usageError{err}
		}
	}
	if withODIN {
		if err := c.odin.Validate(); err != nil {
			return usageError{err}
		}
	}
	idData, err := parseDataArg(c.id)
	if err != nil {
		return usageError{err}
	}
	if err := checkModelFile(c.model); err != nil {
		return err
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
	clf, pool, closePool, err := c.ort.openPool(c.model, cal, c.calib, &c.batch)
	if err != nil {
		return err
	}
	defer closePool()
	specs = withGraphScore(specs, clf.Shape().Score, cal, explicitFlag(fs, "scores"))
	// ODIN is built before anything is scored: a model it cannot run fails here, not after
	// the other scores have run.
	var odinScorer *odin.Scorer
	if withODIN {
		if odinScorer, err = c.prepareODIN(spec); err != nil {
			return fmt.Errorf("odin: %w", err)
		}
	}

	start := time.Now()
	bopts := batchscore.Options{Batch: c.batch, Scores: specs}
	idRes, err := scoreData(ctx, pool, spec, idData, false, c.sub, bopts)
	if err != nil {
		return err
	}
	oodRes := make([]*batchscore.Result, len(c.ood))
	for i, d := range c.ood {
		if oodRes[i], err = scoreData(ctx, pool, spec, d, true, c.sub, bopts); err != nil {
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
		if cal != nil && cal.Score.SameScore(sp) {
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
	if withODIN {
		sr, r, err := c.evalODIN(ctx, odinScorer, spec, idData)
		if err != nil {
			return err
		}
		rep.Scores, raw = append(rep.Scores, *sr), append(raw, *r)
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

// splitODIN removes "odin" from a -scores list and says whether it was there.
func splitODIN(s string) (rest string, withODIN bool) {
	var keep []string
	for _, k := range strings.Split(s, ",") {
		if strings.TrimSpace(k) == "odin" {
			withODIN = true
			continue
		}
		keep = append(keep, k)
	}
	return strings.Join(keep, ","), withODIN
}

// prepareODIN imports the model into GoMLX and builds its ODIN scorer.
func (c *evalCommand) prepareODIN(spec preprocess.Spec) (*odin.Scorer, error) {
	m, err := onnxgraph.Load(c.model)
	if err != nil {
		return nil, err
	}
	bspec := c.odinBackend
	if bspec == "onnx" && c.ort.lib != "" {
		bspec = "onnx:" + c.ort.lib
	}
	b, err := unleash.NewBackend(bspec)
	if err != nil {
		return nil, err
	}
	o := c.odin
	o.Std, o.Backend = spec.Std, b
	return odin.New(m, o)
}

// evalODIN scores the ID set and every OOD set with ODIN on GoMLX (unleash/odin) and returns
// its metrics and raw scores.
func (c *evalCommand) evalODIN(ctx context.Context, sc *odin.Scorer, spec preprocess.Spec, idData dataArg) (*report.ScoreResult, *report.Scores, error) {
	var err error
	sr := &report.ScoreResult{Score: c.odin.Name()}
	raw := &report.Scores{}
	if raw.ID, err = c.scoreODIN(ctx, sc, spec, idData, false); err != nil {
		return nil, nil, err
	}
	var all []calibrate.Metrics
	for _, d := range c.ood {
		ood, err := c.scoreODIN(ctx, sc, spec, d, true)
		if err != nil {
			return nil, nil, err
		}
		mt, err := calibrate.Evaluate(raw.ID, ood, calibrate.DefaultRecall)
		if err != nil {
			return nil, nil, fmt.Errorf("%s vs %s: %w", sr.Score, d.name(), err)
		}
		sr.Sets = append(sr.Sets, report.SetResult{Name: d.name(), Metrics: mt})
		all = append(all, mt)
		raw.OOD = append(raw.OOD, ood)
	}
	if sr.Mean, err = calibrate.Mean(all); err != nil {
		return nil, nil, err
	}
	return sr, raw, nil
}

// scoreODIN scores one dataset with ODIN, with a progress bar on a terminal.
func (c *evalCommand) scoreODIN(ctx context.Context, sc *odin.Scorer, spec preprocess.Spec, d dataArg, unlabeled bool) ([]float64, error) {
	r, err := d.openForScoring(unlabeled, c.sub)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	bar := newBar(r.Len(), "odin "+d.name())
	start := time.Now()
	s, err := sc.Dataset(ctx, r, spec, odin.DatasetOptions{Batch: c.batch, Progress: func(n int) { bar.Set(n) }})
	bar.Finish()
	if err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("dataset %s holds no images", d.path)
	}
	fmt.Fprintf(stderr, "odin %s: %d images in %.1fs (%.0f img/s)\n", d.name(), len(s), time.Since(start).Seconds(),
		float64(len(s))/time.Since(start).Seconds())
	return s, nil
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
	fmt.Fprintf(w, "%-24s %-34s %8s %8s %8s %8s %8s\n", "score", "OOD set", "FPR95", "FPR95oo", "AUROC", "AUPR-In", "AUPR-Out")
	row := func(score, set string, m calibrate.Metrics) {
		fmt.Fprintf(w, "%-24s %-34s %8.2f %8.2f %8.2f %8.2f %8.2f\n", score, set, 100*m.FPR95, 100*m.FPR95OpenOOD, 100*m.AUROC, 100*m.AUPRIn, 100*m.AUPROut)
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

// withGraphScore adds the graph score to specs when the model has a score output and -scores
// was left at its default, and gives a graph score the calibration's record of its detector.
func withGraphScore(specs []score.Spec, output string, cal *calibrate.Calibration, explicit bool) []score.Spec {
	has := false
	for _, sp := range specs {
		has = has || sp.Kind == score.KindGraph
	}
	if output != "" && !explicit && !has {
		specs = append([]score.Spec{{Kind: score.KindGraph, Output: output}}, specs...)
	}
	for i, sp := range specs {
		if sp.Kind == score.KindGraph && output != "" && sp.Output == "" {
			specs[i].Output = output
		}
		if cal != nil && cal.Score.SameScore(specs[i]) {
			specs[i] = cal.Score
		}
	}
	return specs
}

// explicitFlag reports whether the flag name was set on the command line.
func explicitFlag(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

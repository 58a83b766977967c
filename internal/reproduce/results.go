package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const convention = "ID is the positive class; scores are higher = more ID. FPR95: the OOD share accepted at the threshold whose ID recall is closest to 95% (the method's routine); AUPR-In: average precision with ID positive. Values in percent."

// Results is results.json.
type Results struct {
	Mode       Mode             `json:"mode"`
	Commit     string           `json:"commit"`
	Started    time.Time        `json:"started"`
	Seconds    float64          `json:"seconds"` // wall time of this run of reproduce
	CPUs       int              `json:"cpus"`
	Host       string           `json:"host"`
	Convention string           `json:"convention"`
	Datasets   []*DatasetResult `json:"datasets"`
	Steps      []*StepRecord    `json:"steps"`
}

// DatasetResult is one ID dataset: its recipe, splits and runs.
type DatasetResult struct {
	Setup  Setup         `json:"setup"`
	Splits Splits        `json:"splits"`
	Seeds  []*SeedResult `json:"seeds"`
}

// SeedResult is one seed's run of a dataset.
type SeedResult struct {
	Seed  uint64          `json:"seed"`
	Dir   string          `json:"dir"`
	Train *TrainSummary   `json:"train"`
	UM    *UnleashSummary `json:"um"`
	UMAP  *UnleashSummary `json:"umap"`
	Rows  []Row           `json:"rows"`
	// Val: every model on the validation sets, energy score (what the choices could see).
	Val []Row `json:"val_rows"`
}

// Row is one line of results.csv: one model, score and OOD test set.
type Row struct {
	Dataset    string  `json:"dataset"`
	Seed       uint64  `json:"seed"`
	Step       string  `json:"step"` // final, best, um, umap
	Model      string  `json:"model"`
	Score      string  `json:"score"`
	OOD        string  `json:"ood"`
	NID        int     `json:"n_id"`
	NOOD       int     `json:"n_ood"`
	FPR95      float64 `json:"fpr95"`
	FPR95OO    float64 `json:"fpr95_openood"`
	AUROC      float64 `json:"auroc"`
	AUPRIn     float64 `json:"aupr_in"`
	AUPROut    float64 `json:"aupr_out"`
	IDAccuracy float64 `json:"id_accuracy"`
}

// EpochPoint is one epoch of the training curve (validation sets).
type EpochPoint struct {
	Epoch      int     `json:"epoch"`
	Loss       float64 `json:"loss"`
	ValAcc     float64 `json:"val_acc"`
	FPR95      float64 `json:"val_fpr95"`
	AUROC      float64 `json:"val_auroc"`
	Seconds    float64 `json:"seconds"`
	Checkpoint string  `json:"checkpoint"`
}

// TrainSummary is what train.json says, and the epoch chosen from it.
type TrainSummary struct {
	Arch    string       `json:"arch"`
	Params  int          `json:"params"`
	Epochs  int          `json:"epochs"`
	Images  int          `json:"train_images"`
	Seconds float64      `json:"seconds"`
	Rule    string       `json:"rule"`
	Final   EpochPoint   `json:"final"`
	Best    EpochPoint   `json:"best"`     // the chosen intermediate epoch
	BestAny EpochPoint   `json:"best_any"` // lowest validation FPR95 with no accuracy floor
	Curve   []EpochPoint `json:"curve"`
	Plot    string       `json:"plot"`
}

// selectEpoch reads train.json and picks the best epoch on the validation sets: the lowest
// energy FPR95 of ID validation vs OOD validation (ties: higher AUROC, then the later epoch)
// among the epochs whose validation accuracy is at most maxDrop points below the final's.
func selectEpoch(path string, maxDrop float64) (*TrainSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var log struct {
		Arch   string `json:"arch"`
		Params int    `json:"params"`
		Train  struct {
			Count int `json:"count"`
		} `json:"train"`
		Seconds float64 `json:"seconds"`
		Runs    []struct {
			Epoch      int      `json:"epoch"`
			Loss       float64  `json:"loss"`
			ValAcc     *float64 `json:"val_acc"`
			FPR95      *float64 `json:"fpr95"`
			AUROC      *float64 `json:"auroc"`
			Seconds    float64  `json:"seconds"`
			Checkpoint string   `json:"checkpoint"`
		} `json:"per_epoch"`
	}
	if err := json.Unmarshal(b, &log); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(log.Runs) == 0 {
		return nil, fmt.Errorf("%s: no epochs", path)
	}
	t := &TrainSummary{Arch: log.Arch, Params: log.Params, Epochs: len(log.Runs), Images: log.Train.Count,
		Seconds: log.Seconds, Plot: filepath.Join(filepath.Dir(path), "train.png")}
	for _, e := range log.Runs {
		if e.ValAcc == nil || e.FPR95 == nil || e.AUROC == nil {
			return nil, fmt.Errorf("%s: epoch %d has no validation numbers", path, e.Epoch)
		}
		t.Curve = append(t.Curve, EpochPoint{Epoch: e.Epoch, Loss: e.Loss, ValAcc: *e.ValAcc, FPR95: *e.FPR95,
			AUROC: *e.AUROC, Seconds: e.Seconds, Checkpoint: e.Checkpoint})
	}
	t.Final = t.Curve[len(t.Curve)-1]
	floor := t.Final.ValAcc - maxDrop/100
	t.Rule = fmt.Sprintf("lowest energy FPR95 on the validation sets among the epochs whose ID validation accuracy is at least the final epoch's minus %g points", maxDrop)
	better := func(a, b EpochPoint) bool {
		if a.FPR95 != b.FPR95 {
			return a.FPR95 < b.FPR95
		}
		if a.AUROC != b.AUROC {
			return a.AUROC > b.AUROC
		}
		return a.Epoch > b.Epoch
	}
	t.Best, t.BestAny = t.Final, t.Final
	for _, e := range t.Curve {
		if better(e, t.BestAny) {
			t.BestAny = e
		}
		if e.ValAcc >= floor-1e-12 && better(e, t.Best) {
			t.Best = e
		}
	}
	return t, nil
}

// UnleashSummary is what OUT.run.json says.
type UnleashSummary struct {
	Path        string  `json:"model"`
	Mode        string  `json:"mode"`
	Constraint  float64 `json:"constraint"`
	Method      string  `json:"constraint_method"`
	Estimate    float64 `json:"estimate"`
	DenseLoss   float64 `json:"dense_loss"`
	Epochs      int     `json:"epochs"`
	LR          float64 `json:"lr"`
	Images      int     `json:"train_images"`
	CheckAcc    float64 `json:"id_val_accuracy"` // after the last epoch
	Seconds     float64 `json:"seconds"`
	Grid        []Cand  `json:"grid"`
	ScoreInit   string  `json:"score_init,omitempty"`
	Keep        float64 `json:"keep,omitempty"`
	ExportCheck float64 `json:"export_check"`
}

// Cand is one grid candidate, scored on the validation sets.
type Cand struct {
	Value   float64 `json:"value"`
	From    string  `json:"from"`
	FPR95   float64 `json:"val_fpr95"`
	AUROC   float64 `json:"val_auroc"`
	Acc     float64 `json:"val_acc"`
	Seconds float64 `json:"seconds"`
	Chosen  bool    `json:"chosen"`
}

func readRun(path string) (*UnleashSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec struct {
		Mode string `json:"mode"`
		Data struct {
			Images int `json:"images"`
		} `json:"train_data"`
		Constraint struct {
			Value     float64  `json:"value"`
			Method    string   `json:"method"`
			Estimate  *float64 `json:"estimate"`
			DenseLoss *float64 `json:"dense_loss"`
			Grid      []struct {
				Value      float64 `json:"value"`
				From       string  `json:"from"`
				FPR95      float64 `json:"fpr95"`
				AUROC      float64 `json:"auroc"`
				IDAccuracy float64 `json:"id_val_accuracy"`
				Seconds    float64 `json:"seconds"`
				Chosen     bool    `json:"chosen"`
			} `json:"grid"`
		} `json:"constraint"`
		Keep         *float64 `json:"keep"`
		ScoreInit    string   `json:"score_init"`
		Epochs       int      `json:"epochs"`
		LR           float64  `json:"lr"`
		EpochResults []struct {
			CheckAccuracy *float64 `json:"check_accuracy"`
		} `json:"epoch_results"`
		ExportCheck *float64 `json:"export_check_max_abs_logit_diff"`
		Seconds     float64  `json:"seconds"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	u := &UnleashSummary{Path: strings.TrimSuffix(path, ".run.json") + ".onnx", Mode: rec.Mode, Constraint: rec.Constraint.Value,
		Method: rec.Constraint.Method, Epochs: rec.Epochs, LR: rec.LR, Images: rec.Data.Images, Seconds: rec.Seconds, ScoreInit: rec.ScoreInit}
	if rec.Constraint.Estimate != nil {
		u.Estimate = *rec.Constraint.Estimate
	}
	if rec.Constraint.DenseLoss != nil {
		u.DenseLoss = *rec.Constraint.DenseLoss
	}
	if rec.Keep != nil {
		u.Keep = *rec.Keep
	}
	if rec.ExportCheck != nil {
		u.ExportCheck = *rec.ExportCheck
	}
	if n := len(rec.EpochResults); n > 0 && rec.EpochResults[n-1].CheckAccuracy != nil {
		u.CheckAcc = *rec.EpochResults[n-1].CheckAccuracy
	}
	for _, g := range rec.Constraint.Grid {
		u.Grid = append(u.Grid, Cand{Value: g.Value, From: g.From, FPR95: g.FPR95, AUROC: g.AUROC, Acc: g.IDAccuracy, Seconds: g.Seconds, Chosen: g.Chosen})
	}
	return u, nil
}

// readReport turns an eval report.json into rows.
func readReport(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep struct {
		Accuracy *float64 `json:"id_accuracy"`
		Scores   []struct {
			Score string `json:"score"`
			Sets  []struct {
				Name    string `json:"name"`
				Metrics struct {
					NID     int     `json:"n_id"`
					NOOD    int     `json:"n_ood"`
					AUROC   float64 `json:"auroc"`
					AUPRIn  float64 `json:"aupr_in"`
					AUPROut float64 `json:"aupr_out"`
					FPR95   float64 `json:"fpr95"`
					FPR95OO float64 `json:"fpr95_openood"`
				} `json:"metrics"`
			} `json:"sets"`
		} `json:"scores"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rep.Accuracy == nil {
		return nil, fmt.Errorf("%s: no ID accuracy (is the ID test set labelled?)", path)
	}
	var rows []Row
	for _, s := range rep.Scores {
		for _, set := range s.Sets {
			m := set.Metrics
			rows = append(rows, Row{Score: s.Score, OOD: set.Name, NID: m.NID, NOOD: m.NOOD, FPR95: m.FPR95, FPR95OO: m.FPR95OO,
				AUROC: m.AUROC, AUPRIn: m.AUPRIn, AUPROut: m.AUPROut, IDAccuracy: *rep.Accuracy})
		}
	}
	return rows, nil
}

// write writes results.json, results.csv, steps.csv and results.md into dir.
func (res *Results) write(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := res.writeCSV(filepath.Join(dir, "results.csv")); err != nil {
		return err
	}
	if err := res.writeStepsCSV(filepath.Join(dir, "steps.csv")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(res.markdown(dir)), 0o644)
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) }

func (res *Results) writeCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"dataset", "seed", "step", "sets", "score", "ood_set", "n_id", "n_ood", "fpr95", "fpr95_openood", "auroc", "aupr_in", "aupr_out", "id_accuracy", "model"})
	for _, ds := range res.Datasets {
		for _, s := range ds.Seeds {
			for _, r := range s.Rows {
				w.Write([]string{r.Dataset, strconv.FormatUint(r.Seed, 10), r.Step, "test", r.Score, r.OOD, strconv.Itoa(r.NID), strconv.Itoa(r.NOOD),
					pct(r.FPR95), pct(r.FPR95OO), pct(r.AUROC), pct(r.AUPRIn), pct(r.AUPROut), pct(r.IDAccuracy), r.Model})
			}
			for _, r := range s.Val {
				w.Write([]string{r.Dataset, strconv.FormatUint(r.Seed, 10), r.Step, "validation", r.Score, r.OOD, strconv.Itoa(r.NID), strconv.Itoa(r.NOOD),
					pct(r.FPR95), pct(r.FPR95OO), pct(r.AUROC), pct(r.AUPRIn), pct(r.AUPROut), pct(r.IDAccuracy), r.Model})
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (res *Results) writeStepsCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"dataset", "seed", "step", "seconds", "reused", "started", "command"})
	for _, s := range res.Steps {
		w.Write([]string{s.Dataset, strconv.FormatUint(s.Seed, 10), s.Step, strconv.FormatFloat(s.Seconds, 'f', 1, 64),
			strconv.FormatBool(s.Reused), s.Started.Format(time.RFC3339), shellJoin(s.Command)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Labels for the markdown tables.
var (
	stepOrder  = []string{StepFinal, StepBest, StepBestAny, StepUM, StepUMAP}
	stepLabels = map[string]string{StepFinal: "baseline (final epoch)", StepBest: "best epoch (validation)",
		StepBestAny: "lowest val FPR95, no accuracy floor", StepUM: "UM", StepUMAP: "UMAP"}
)

func scoreLabel(s string) string {
	switch {
	case strings.HasPrefix(s, "energy"):
		return "Energy"
	case s == "msp":
		return "MSP"
	case s == "maxlogit":
		return "MaxLogit"
	case strings.HasPrefix(s, "odin"):
		return "ODIN"
	}
	return s
}

func oodLabel(name string) string {
	switch {
	case strings.Contains(name, "mnist-test"):
		return "MNIST"
	case strings.Contains(name, "tinyimagenet"):
		return "Tiny ImageNet"
	}
	return name
}

// stat formats the mean of vs (in percent), with the sample standard deviation when there are
// several.
func stat(vs []float64) string {
	if len(vs) == 0 {
		return "–"
	}
	var m float64
	for _, v := range vs {
		m += v
	}
	m /= float64(len(vs))
	if len(vs) == 1 {
		return pct(m)
	}
	var ss float64
	for _, v := range vs {
		ss += (v - m) * (v - m)
	}
	return fmt.Sprintf("%s ± %s", pct(m), pct(math.Sqrt(ss/float64(len(vs)-1))))
}

func (res *Results) markdown(dir string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := res.Mode
	var seeds []string
	for _, s := range m.Seeds {
		seeds = append(seeds, strconv.FormatUint(s, 10))
	}
	p("# Unleashing Mask on real data: `make reproduce` (REPRODUCE=%s)\n\n", m.Name)
	var sum float64
	reused := false
	for _, s := range res.Steps {
		sum += s.Seconds
		reused = reused || s.Reused
	}
	wall := fmt.Sprintf("wall time %s", fmtDuration(time.Duration(res.Seconds*float64(time.Second))))
	if reused {
		wall = fmt.Sprintf("steps' wall time %s in all, some from earlier runs (this run: %s)", fmtDuration(time.Duration(sum*float64(time.Second))),
			fmtDuration(time.Duration(res.Seconds*float64(time.Second))))
	}
	p("%s, commit %s, %d CPUs (%s); seeds %s; %s. Mode: %s.\n\n", res.Started.Format("2006-01-02 15:04 MST"), res.Commit, res.CPUs, res.Host,
		strings.Join(seeds, ", "), wall, m.What)
	p("%s With several seeds: mean ± standard deviation over seeds. Every choice (best epoch, constraint) was made on the validation sets; the test sets below were used for nothing else.\n\n", res.Convention)

	for _, ds := range res.Datasets {
		s := ds.Setup
		p("## %s: %s\n\n", s.Title, archLabel(s))
		for _, n := range ds.Splits.Notes {
			p("- %s\n", n)
		}
		p("- train: %s, batch %d, SGD lr %g cosine, momentum 0.9, wd 5e-4, crop+flip (oodguard train defaults)\n", plural(s.Epochs, "epoch"), s.Batch, s.LR)
		p("- UM: %s from the final epoch, lr %g, batch %d%s; constraint by the grid (factors %s of the estimate and of the dense loss, %s each, lowest validation energy FPR95)%s\n",
			plural(s.UM.Epochs, "epoch"), s.UM.LR, s.UM.Batch, limitNote(s.UM.Limit), s.UM.GridFactors, plural(s.UM.GridEpochs, "epoch"), keptNote(s.UM))
		p("- UMAP: %s from the final epoch, lr %g, keep %g, score init %s%s; constraint by the same grid%s\n\n", plural(s.UMAP.Epochs, "epoch"), s.UMAP.LR, s.UMAP.Keep, s.UMAP.ScoreInit, limitNote(s.UMAP.Limit), keptNote(s.UMAP))

		// Main table: rows step x score; per OOD set FPR95, AUROC, AUPR-In.
		var oods []string
		seen := map[string]bool{}
		for _, sd := range ds.Seeds {
			for _, r := range sd.Rows {
				if !seen[r.OOD] {
					seen[r.OOD] = true
					oods = append(oods, r.OOD)
				}
			}
		}
		var scores []string
		seenScore := map[string]bool{}
		for _, sd := range ds.Seeds {
			for _, r := range sd.Rows {
				if !seenScore[r.Score] {
					seenScore[r.Score] = true
					scores = append(scores, r.Score)
				}
			}
		}
		p("| model | ID acc ↑ | val FPR95 | score |")
		for _, o := range oods {
			l := oodLabel(o)
			p(" %s FPR95 ↓ | %s AUROC ↑ | %s AUPR-In ↑ |", l, l, l)
		}
		p("\n|---|---|---|---|")
		for range oods {
			p("---|---|---|")
		}
		p("\n")
		for _, step := range stepOrder {
			if !hasStep(ds, step) {
				continue
			}
			for i, sc := range scores {
				label, acc, val := "", "", ""
				if i == 0 {
					label = stepDetail(ds, step)
					var vals []float64
					for _, sd := range ds.Seeds {
						for _, r := range sd.Val {
							if r.Step == step {
								vals = append(vals, r.FPR95)
							}
						}
					}
					val = stat(vals)
					var accs []float64
					for _, sd := range ds.Seeds {
						for _, r := range sd.Rows {
							if r.Step == step && r.Score == sc && r.OOD == oods[0] {
								accs = append(accs, r.IDAccuracy)
							}
						}
					}
					acc = stat(accs)
				}
				p("| %s | %s | %s | %s |", label, acc, val, scoreLabel(sc))
				for _, o := range oods {
					var f, a, ai []float64
					for _, sd := range ds.Seeds {
						for _, r := range sd.Rows {
							if r.Step == step && r.Score == sc && r.OOD == o {
								f, a, ai = append(f, r.FPR95), append(a, r.AUROC), append(ai, r.AUPRIn)
							}
						}
					}
					p(" %s | %s | %s |", stat(f), stat(a), stat(ai))
				}
				p("\n")
			}
		}
		p("\n")

		p("ID acc: top-1 on the ID test set. Val FPR95: the same model on the validation sets (ID validation vs OOD validation, energy score), what a user choosing without the test sets sees.\n\n")

		// How the choices were made.
		p("Choices, on the validation sets (ID validation vs OOD validation, energy score):\n\n")
		for _, sd := range ds.Seeds {
			t := sd.Train
			if t == nil {
				continue
			}
			p("- seed %d, training (%s, %d parameters, %d images): final epoch %d: val acc %s, val FPR95 %s, val AUROC %s. Best epoch %d: val acc %s, val FPR95 %s, val AUROC %s",
				sd.Seed, t.Arch, t.Params, t.Images, t.Final.Epoch, pct(t.Final.ValAcc), pct(t.Final.FPR95), pct(t.Final.AUROC),
				t.Best.Epoch, pct(t.Best.ValAcc), pct(t.Best.FPR95), pct(t.Best.AUROC))
			if t.BestAny.Epoch != t.Best.Epoch {
				p(" (with no accuracy floor: epoch %d, val acc %s, val FPR95 %s)", t.BestAny.Epoch, pct(t.BestAny.ValAcc), pct(t.BestAny.FPR95))
			}
			p(". Val FPR95 by epoch: %s.\n", curve(t.Curve))
			for _, u := range []*UnleashSummary{sd.UM, sd.UMAP} {
				if u == nil {
					continue
				}
				p("- seed %d, %s: constraint %.4g (%s; estimate %.4g, dense loss %.4g, %d training images); val acc after training %s. Grid: %s.\n",
					sd.Seed, strings.ToUpper(u.Mode), u.Constraint, u.Method, u.Estimate, u.DenseLoss, u.Images, pct(u.CheckAcc), grid(u.Grid))
			}
		}
		p("\n")

		p("Plots: ")
		var links []string
		for _, sd := range ds.Seeds {
			rel := func(pth string) string {
				if r, err := filepath.Rel(dir, pth); err == nil {
					return r
				}
				return pth
			}
			links = append(links, fmt.Sprintf("[seed %d training curve](%s)", sd.Seed, rel(filepath.Join(sd.Dir, "train", "train.png"))))
			for _, step := range stepOrder {
				if !hasStep(ds, step) {
					continue
				}
				links = append(links, fmt.Sprintf("[seed %d %s report](%s)", sd.Seed, step, rel(filepath.Join(sd.Dir, "eval", step, "index.html"))))
			}
		}
		p("%s (each report folder holds the score histograms and ROC curves as PNG).\n\n", strings.Join(links, ", "))
	}

	// Wall time per step.
	p("## Wall time per step\n\n| dataset | seed | step | wall time |\n|---|---|---|---|\n")
	totals := map[string]float64{}
	var order []string
	for _, s := range res.Steps {
		seed := "–"
		if s.Step != "data" {
			seed = strconv.FormatUint(s.Seed, 10)
		}
		note := ""
		if s.Reused {
			note = " (earlier run)"
		}
		p("| %s | %s | %s | %s%s |\n", s.Dataset, seed, s.Step, fmtSeconds(s.Seconds), note)
		if _, ok := totals[s.Dataset]; !ok {
			order = append(order, s.Dataset)
		}
		totals[s.Dataset] += s.Seconds
	}
	for _, d := range order {
		p("| %s | | **total** | **%s** |\n", d, fmtSeconds(totals[d]))
	}
	p("\n")
	return b.String()
}

func archLabel(s Setup) string {
	if s.Arch == "resnet" {
		blocks := s.Blocks
		n := 0
		for _, f := range strings.Split(blocks, ",") {
			v, _ := strconv.Atoi(f)
			n += v
		}
		if !strings.Contains(blocks, ",") {
			n *= 3
		}
		return fmt.Sprintf("CIFAR ResNet-%d (width %d, blocks %s per stage)", 2*n+2, s.Width, blocks) // basic blocks: 2 convs each, plus stem and head
	}
	return fmt.Sprintf("%s (width %d)", s.Arch, s.Width)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func limitNote(n int) string {
	if n > 0 {
		return fmt.Sprintf(", a random %d of the training images (unleash -limit, seeded by -seed)", n)
	}
	return ""
}

// stepDetail labels a step, with the chosen epoch or constraint when there is one seed.
func stepDetail(ds *DatasetResult, step string) string {
	l := stepLabels[step]
	if len(ds.Seeds) != 1 {
		return l
	}
	sd := ds.Seeds[0]
	switch {
	case step == StepFinal && sd.Train != nil:
		return fmt.Sprintf("final epoch %d (baseline)", sd.Train.Final.Epoch)
	case step == StepBest && sd.Train != nil:
		return fmt.Sprintf("best epoch %d (validation)", sd.Train.Best.Epoch)
	case step == StepBestAny && sd.Train != nil:
		return fmt.Sprintf("epoch %d (lowest val FPR95, no accuracy floor)", sd.Train.BestAny.Epoch)
	case step == StepUM && sd.UM != nil:
		return fmt.Sprintf("UM, c = %.3g", sd.UM.Constraint)
	case step == StepUMAP && sd.UMAP != nil:
		return fmt.Sprintf("UMAP, c = %.3g", sd.UMAP.Constraint)
	}
	return l
}

func hasStep(ds *DatasetResult, step string) bool {
	for _, sd := range ds.Seeds {
		for _, r := range sd.Rows {
			if r.Step == step {
				return true
			}
		}
	}
	return false
}

func curve(c []EpochPoint) string {
	var parts []string
	for _, e := range c {
		parts = append(parts, fmt.Sprintf("%d: %.1f", e.Epoch, 100*e.FPR95))
	}
	return strings.Join(parts, ", ")
}

func grid(g []Cand) string {
	sorted := append([]Cand(nil), g...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Value < sorted[j].Value })
	var parts []string
	for _, c := range sorted {
		mark := ""
		if c.Chosen {
			mark = " **chosen**"
		}
		parts = append(parts, fmt.Sprintf("c %.4g (%s): val FPR95 %s, AUROC %s, acc %s%s", c.Value, c.From, pct(c.FPR95), pct(c.AUROC), pct(c.Acc), mark))
	}
	return strings.Join(parts, "; ")
}

func fmtSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", s)
	}
	return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// keptNote says when the grid's winning candidate is the reported model (its candidates train
// the full length; see oodguard unleash -grid-epochs).
func keptNote(u Unleash) string {
	if u.GridEpochs == u.Epochs {
		return "; the winning candidate is the model reported, not trained again"
	}
	return "; the chosen value then trained again for the full length"
}

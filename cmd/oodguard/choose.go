package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/calibrate/batchscore"
	"github.com/oodguard/oodguard/calibrate/report"
	"github.com/oodguard/oodguard/detect"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/internal/atomicfile"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/score"
)

// chooseCommand measures post-hoc detectors on the user's model and data and writes the best
// one, by a stated rule, as a model and calibration ready for bundle.
type chooseCommand struct {
	ort                ortFlags
	model              string
	preset, specFile   string
	fit, idVal, oodVal string
	idTest             string
	oodVals            dataList
	tests              dataList
	extras             stringList
	fitLimit           int
	sub                subset
	bank               int
	maxAccDrop         float64
	rule               string
	tpr                float64
	batch              int
	out                string
	ctx                context.Context // stops the passes over the data
}

func (c *chooseCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard choose -model MODEL.onnx -fit ID_TRAIN -id-val ID_VAL -ood-val OOD_VAL [-test OOD_TEST]... [-id-test ID_TEST] [flags]

Measures post-hoc OOD detectors on your model and data and writes the chosen one, compiled into
a copy of the ONNX graph, with its calibration, ready for 'oodguard bundle'.

Candidates: the logit scores (energy, MSP, MaxLogit, GEN); ReAct, ASH-P/B/S, DICE and DICE + ReAct
over OpenOOD's grid, fitted on -fit; ViM, Mahalanobis and KNN (a bank of at most -bank fit
images); and the same for each -extra model (e.g. an unleashed one: UMAP then ReAct is such a
combination). Each is scored on -id-val against -ood-val (one OOD family) and, for the report
only, against every -test set: with the same ID validation scores, or, when -id-test is given,
with that ID test set's scores (images the choice never sees; its accuracy is reported too).

Rule (-rule fpr): the lowest validation FPR95 among the candidates whose ID validation accuracy
is at most -max-acc-drop points below -model's; plain energy of -model is the first candidate
and wins ties (so do earlier candidates over later ones), so the choice is never worse than
energy on validation. -rule feature-first: among those candidates, the feature score (ViM,
Mahalanobis, KNN) with the lowest validation FPR95 if it is lower than energy's, else the fpr
rule's choice. Candidates are scored host-side in float64 on features ONNX Runtime extracted; the
chosen model is then calibrated on -id-val at -tpr under ONNX Runtime, as the device runs it.

Writes, in -out: model.onnx, calibration.json, candidates.json and candidates.csv (every
candidate on validation and on each test set) and report/ (HTML with plots of energy and the
chosen candidate, report.json, report.csv). With -id-test, report/ holds the validation family
against -id-val and report-test/ the test sets against -id-test.

Flags:
`)
}

func (c *chooseCommand) Run(ctx context.Context, args []string) error {
	c.ctx = ctx
	fs := newFlagSet("choose", c)
	c.ort.register(fs)
	c.ort.workers = 1
	fs.StringVar(&c.model, "model", "", "ONNX image classifier (required)")
	fs.StringVar(&c.preset, "preset", "", "preprocessing preset: fashion-mnist or cifar10")
	fs.StringVar(&c.specFile, "preprocess", "", "preprocessing spec JSON (default: MODEL.preprocess.json)")
	fs.StringVar(&c.fit, "fit", "", "ID training data the detectors are fitted on (required)")
	fs.StringVar(&c.idVal, "id-val", "", "ID validation data, labelled (required)")
	fs.Var(&c.oodVals, "ood-val", "OOD validation data: one family (required, once)")
	fs.Var(&c.tests, "test", "OOD test data, reported only (repeat for several sets)")
	fs.StringVar(&c.idTest, "id-test", "", "ID test data, labelled, distinct from -id-val: the -test sets are measured against it (default: against -id-val)")
	fs.Var(&c.extras, "extra", "another model of the same classifier, e.g. an unleashed one: its logit scores and detectors are candidates too (repeat)")
	fs.IntVar(&c.fitLimit, "fit-limit", 10000, "fit on a seeded random subset of N images of -fit (0: all)")
	c.sub.register(fs, "each validation and test set", true)
	fs.IntVar(&c.bank, "bank", detect.DefaultBankSize, "KNN bank: at most N fit feature vectors")
	fs.Float64Var(&c.maxAccDrop, "max-acc-drop", 1, "most ID validation accuracy (points) a candidate may lose")
	fs.StringVar(&c.rule, "rule", ruleFPR, "selection rule: "+ruleFPR+" or "+ruleFeatureFirst+" (see above)")
	fs.Float64Var(&c.tpr, "tpr", 0.95, "target ID true-positive rate of the threshold")
	fs.IntVar(&c.batch, "batch", 64, "images per ONNX Runtime run")
	fs.StringVar(&c.out, "out", "chosen", "output folder")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.model == "" || c.fit == "" || c.idVal == "" || len(c.oodVals) == 0 {
		return usagef("-model, -fit, -id-val and -ood-val are required")
	}
	if len(c.oodVals) != 1 {
		return usagef("-ood-val takes one OOD family, got %d (give the others as -test)", len(c.oodVals))
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if !(c.maxAccDrop >= 0) || math.IsInf(c.maxAccDrop, 0) {
		return usagef("-max-acc-drop %v must be a number >= 0", c.maxAccDrop)
	}
	if _, ok := ruleText[c.rule]; !ok {
		return usagef("-rule %q: want %s or %s", c.rule, ruleFPR, ruleFeatureFirst)
	}
	if !(c.tpr > 0 && c.tpr <= 1) {
		return usagef("-tpr %v must be in (0, 1]", c.tpr)
	}
	if c.fitLimit < 0 || c.bank < 1 || c.batch < 1 {
		return usagef("-fit-limit must be >= 0, -bank and -batch >= 1 (got %d, %d, %d)", c.fitLimit, c.bank, c.batch)
	}
	if err := c.sub.check("limit"); err != nil {
		return err
	}
	fitData, err := parseDataArg(c.fit)
	if err != nil {
		return usageError{fmt.Errorf("-fit: %w", err)}
	}
	idData, err := parseDataArg(c.idVal)
	if err != nil {
		return usageError{fmt.Errorf("-id-val: %w", err)}
	}
	var idTest *dataArg
	if c.idTest != "" {
		if len(c.tests) == 0 {
			return usagef("-id-test is only used with -test sets")
		}
		d, err := parseDataArg(c.idTest)
		if err != nil {
			return usageError{fmt.Errorf("-id-test: %w", err)}
		}
		if d == idData {
			return usagef("-id-test %s is -id-val: give ID test data the choice does not see", d.name())
		}
		idTest = &d
	}
	for _, m := range append([]string{c.model}, c.extras...) {
		if err := checkModelFile(m); err != nil {
			return err
		}
	}
	spec, _, err := loadSpec(c.preset, c.specFile, c.model)
	if err != nil {
		return err
	}
	opts, err := c.ort.options()
	if err != nil {
		return err
	}
	start := time.Now()
	sets := append(dataList{c.oodVals[0]}, c.tests...)
	base, err := c.measureModel(c.model, "", spec, opts, fitData, idData, idTest, sets)
	if err != nil {
		return err
	}
	cands, baseAcc := base.cands, base.accuracy
	for _, path := range c.extras {
		ms, err := c.measureModel(path, filepath.Base(path)+": ", spec, opts, fitData, idData, idTest, sets)
		if err != nil {
			return err
		}
		cands = append(cands, ms.cands...)
	}

	best := selectCandidate(cands, baseAcc, c.maxAccDrop, c.rule)
	best.Chosen = true
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	modelOut := filepath.Join(c.out, "model.onnx")
	if err := writeChosenModel(best, modelOut); err != nil {
		return err
	}
	cal, err := c.calibrate(ctx, modelOut, best.spec, spec, idData)
	if err != nil {
		return err
	}
	if err := cal.Save(filepath.Join(c.out, "calibration.json")); err != nil {
		return err
	}
	sum := &chooseSummary{
		Model: c.model, Rule: fmt.Sprintf(ruleText[c.rule], sets[0].name(), c.maxAccDrop),
		MaxAccDrop: c.maxAccDrop, Accuracy: baseAcc, Fit: calibrate.DataRef{Role: "fit", Name: fitData.name(), Count: base.fitCount},
		IDVal: calibrate.DataRef{Role: "id-validation", Name: idData.name(), Count: base.idCount}, Chosen: best.Name,
		Threshold: cal.Threshold, Candidates: cands,
	}
	if idTest != nil {
		sum.IDTest = &calibrate.DataRef{Role: "id-test", Name: idTest.name(), Count: base.idTestCount}
		sum.TestAccuracy = base.testAccuracy
	}
	for i, d := range sets {
		role := "ood-validation"
		if i > 0 {
			role = "ood-test"
		}
		sum.OOD = append(sum.OOD, calibrate.DataRef{Role: role, Name: d.name(), Count: base.oodCounts[i]})
	}
	if err := c.writeSummary(sum); err != nil {
		return err
	}
	if err := c.writeReport(sum, cands[0], best, cal, time.Since(start)); err != nil {
		return err
	}
	printChoice(stdout, sum, cands[0], best, c.out)
	return nil
}

// The selection rules (-rule).
const (
	ruleFPR          = "fpr"
	ruleFeatureFirst = "feature-first"
)

// ruleText states each rule in candidates.json (the OOD validation set, the accuracy bound).
var ruleText = map[string]string{
	ruleFPR:          "lowest FPR95 on %s among candidates within %g points of the model's ID validation accuracy; energy wins ties",
	ruleFeatureFirst: "feature-first: the feature score with the lowest FPR95 on %s among candidates within %g points of the model's ID validation accuracy if it beats energy, else the lowest FPR95 among them; energy wins ties",
}

// selectCandidate marks each candidate's eligibility (ID validation accuracy at most maxAccDrop
// points below baseAcc) and returns the one rule chooses, from validation metrics only. cands[0]
// is plain energy: it wins ties, so the choice is never worse than energy on validation.
func selectCandidate(cands []*candidate, baseAcc, maxAccDrop float64, rule string) *candidate {
	best, feature := cands[0], (*candidate)(nil)
	for _, cd := range cands {
		cd.Eligible = 100*(baseAcc-cd.Accuracy) <= maxAccDrop
		if !cd.Eligible {
			continue
		}
		if cd.Sets[0].Metrics.FPR95 < best.Sets[0].Metrics.FPR95 {
			best = cd
		}
		if cd.Kind == "feature" && (feature == nil || cd.Sets[0].Metrics.FPR95 < feature.Sets[0].Metrics.FPR95) {
			feature = cd
		}
	}
	if rule == ruleFeatureFirst && feature != nil && feature.Sets[0].Metrics.FPR95 < cands[0].Sets[0].Metrics.FPR95 {
		return feature
	}
	return best
}

// measured is one model's candidates and what they were measured on.
type measured struct {
	cands        []*candidate
	accuracy     float64 // the model's top-1 on the ID validation data
	testAccuracy float64 // and on the ID test data, when there is some
	fitCount     int
	idCount      int
	idTestCount  int
	oodCounts    []int
}

// measureModel fits the default grid on path's features of the fit data and measures every
// candidate of it (its logit scores, shaping and feature detectors) on the ID validation data
// against each OOD set (the test sets against idTest's when it is not nil); label prefixes the
// candidates' names (an -extra model's file name).
func (c *chooseCommand) measureModel(path, label string, spec preprocess.Spec, opts ort.Options, fitData, idData dataArg, idTest *dataArg, sets dataList) (*measured, error) {
	clf, err := ort.Open(path, opts)
	if err != nil {
		return nil, err
	}
	shape := clf.Shape()
	err = clf.CheckInput(spec.Channels, spec.Height, spec.Width)
	clf.Close()
	if err != nil {
		return nil, fmt.Errorf("preprocessing gives %dx%dx%d: %w", spec.Channels, spec.Height, spec.Width, err)
	}
	if shape.Score != "" {
		return nil, fmt.Errorf("model %s already has a score output %q: give choose plain classifiers", path, shape.Score)
	}
	m, err := detect.Load(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	batch := c.batch
	if shape.Batch > 0 {
		batch = shape.Batch
	}
	ex, err := m.NewExtractor(batch, opts)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	defer ex.Close()

	// Fit: two streaming passes over a seeded random subset of the training data.
	grid := detect.DefaultGrid()
	fitSub := subset{limit: c.fitLimit, seed: c.sub.seed}
	passes := 0
	fitPass := ex.Pass(c.images(fitData, false, spec, fitSub, batch, func() string {
		passes++
		return fmt.Sprintf("%sfit pass %d/2 %s", label, passes, fitData.name())
	}))
	fitStart := time.Now()
	fitted, err := detect.Fit(&m.Head, fitPass, detect.FitOptions{BankSize: c.bank, Seed: c.sub.seed, ReActPercentiles: grid.ReAct})
	if err != nil {
		return nil, fmt.Errorf("%sfit on %s: %w", label, fitData.name(), err)
	}
	dets, skipped := detect.Candidates(m, fitted, grid)
	for _, err := range skipped {
		fmt.Fprintf(stderr, "%sskipped: %v\n", label, err)
	}
	fmt.Fprintf(stderr, "%sfitted on %d images of %s in %.1fs: %d detectors\n", label, fitted.Count, fitData.name(), time.Since(fitStart).Seconds(), len(dets))

	// Features of every evaluation set, extracted once.
	idF, idY, err := c.features(ex, idData, false, spec, batch)
	if err != nil {
		return nil, err
	}
	labelled := false
	for _, y := range idY {
		labelled = labelled || y >= 0
	}
	if !labelled {
		return nil, fmt.Errorf("-id-val %s has no labels: choose needs them to hold the accuracy", idData.name())
	}
	K, D := m.Head.Classes, m.Head.Dim
	ms := &measured{fitCount: int(fitted.Count), idCount: len(idY)}
	var idTestF []float32
	var idTestY []int
	if idTest != nil {
		if idTestF, idTestY, err = c.features(ex, *idTest, false, spec, batch); err != nil {
			return nil, err
		}
		labelled := false
		for _, y := range idTestY {
			labelled = labelled || y >= 0
		}
		if !labelled {
			return nil, fmt.Errorf("-id-test %s has no labels: choose reports its accuracy", idTest.name())
		}
		ms.idTestCount = len(idTestY)
		ms.testAccuracy = accuracyOf(m.Head.LogitsOf(idTestF, len(idTestF)/D), idTestY, K)
	}
	testAcc := func(a float64) *float64 {
		if idTest == nil {
			return nil
		}
		return &a
	}
	oodF := make([][]float32, len(sets))
	for i, d := range sets {
		if oodF[i], _, err = c.features(ex, d, true, spec, batch); err != nil {
			return nil, err
		}
		ms.oodCounts = append(ms.oodCounts, len(oodF[i])/D)
	}

	// Every candidate on every set.
	ms.accuracy = accuracyOf(m.Head.LogitsOf(idF, len(idF)/D), idY, K)
	for _, kind := range score.Kinds {
		sp := score.Spec{Kind: kind}
		if kind == score.KindEnergy {
			sp.Temperature = 1
		}
		f, err := sp.Func()
		if err != nil {
			return nil, err
		}
		cd := &candidate{Name: label + sp.String(), Kind: "logits", Model: path, Accuracy: ms.accuracy, TestAccuracy: testAcc(ms.testAccuracy), spec: sp}
		logitScores := func(feats []float32) ([]float64, error) { return hostLogitScores(m, feats, f) }
		if err := cd.scoreAll(logitScores, idF, idTestF, oodF); err != nil {
			return nil, err
		}
		ms.cands = append(ms.cands, cd)
	}
	knns := newKNNCache(dets)
	for _, d := range dets {
		if err := c.ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := json.Marshal(d.Spec())
		if err != nil {
			return nil, err
		}
		ds := d.Spec()
		cd := &candidate{Name: label + d.Name(), Kind: "feature", Detector: &ds, Model: path, Accuracy: ms.accuracy, TestAccuracy: testAcc(ms.testAccuracy), det: d, base: m}
		cd.spec = score.Spec{Kind: score.KindGraph, Output: detect.ScoreOutput, Name: d.Name(), Detector: rec}
		if s, ok := d.(detect.Shaper); ok {
			cd.Kind = "shaping"
			cd.spec = score.Spec{Kind: score.KindEnergy, Temperature: 1, Name: d.Name(), Detector: rec}
			z, err := s.Logits(idF, len(idF)/D)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cd.Name, err)
			}
			cd.Accuracy = accuracyOf(z, idY, K)
			if idTest != nil {
				zt, err := s.Logits(idTestF, len(idTestF)/D)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", cd.Name, err)
				}
				cd.TestAccuracy = testAcc(accuracyOf(zt, idTestY, K))
			}
		}
		scoreFn := func(feats []float32) ([]float64, error) { return d.Score(feats, len(feats)/D) }
		if k, ok := d.(*detect.KNN); ok {
			scoreFn = func(feats []float32) ([]float64, error) { return knns.score(k, feats, len(feats)/D) }
		}
		if err := cd.scoreAll(scoreFn, idF, idTestF, oodF); err != nil {
			return nil, fmt.Errorf("%s: %w", cd.Name, err)
		}
		ms.cands = append(ms.cands, cd)
	}
	return ms, nil
}

// knnCache scores the KNN candidates of one bank together (detect.ScoreKNNs): each evaluation
// set's distances to the bank are computed once for all k, instead of once per k.
type knnCache struct {
	group  map[*detect.KNN][]*detect.KNN // each KNN's detectors of the same bank, itself included
	scores map[knnKey][]float64
}

type knnKey struct {
	k     *detect.KNN
	feats *float32 // the set's features
	n     int
}

func newKNNCache(dets []detect.Detector) *knnCache {
	c := &knnCache{group: map[*detect.KNN][]*detect.KNN{}, scores: map[knnKey][]float64{}}
	banks := map[detect.BankKey][]*detect.KNN{}
	for _, d := range dets {
		if k, ok := d.(*detect.KNN); ok && len(k.Bank) > 0 {
			banks[k.BankKey()] = append(banks[k.BankKey()], k)
		}
	}
	for _, g := range banks {
		for _, k := range g {
			c.group[k] = g
		}
	}
	return c
}

// score is k.Score(feats, n).
func (c *knnCache) score(k *detect.KNN, feats []float32, n int) ([]float64, error) {
	g, ok := c.group[k]
	if !ok || len(feats) == 0 {
		return k.Score(feats, n)
	}
	if s, ok := c.scores[knnKey{k, &feats[0], n}]; ok {
		return s, nil
	}
	all, err := detect.ScoreKNNs(g, feats, n)
	if err != nil {
		return nil, err
	}
	for i, o := range g {
		c.scores[knnKey{o, &feats[0], n}] = all[i]
	}
	return c.scores[knnKey{k, &feats[0], n}], nil
}

// candidate is one detector (or score, or extra model) and its measurements.
type candidate struct {
	Name     string       `json:"name"`
	Kind     string       `json:"kind"` // logits, shaping or feature
	Detector *detect.Spec `json:"detector,omitempty"`
	Model    string       `json:"model"`       // the model it runs on: -model or an -extra one
	Accuracy float64      `json:"id_accuracy"` // top-1 on the ID validation data
	// TestAccuracy is the top-1 on the ID test data (-id-test), nil without it.
	TestAccuracy *float64  `json:"id_test_accuracy,omitempty"`
	Eligible     bool      `json:"eligible"` // within -max-acc-drop of the model's accuracy
	Chosen       bool      `json:"chosen,omitempty"`
	Sets         []candSet `json:"sets"` // validation first, then each test set

	spec   score.Spec
	det    detect.Detector
	base   *detect.Model // the model det was fitted on
	id     []float64
	idTest []float64 // the scores of the ID test data; nil without -id-test
	ood    [][]float64
}

type candSet struct {
	Name    string            `json:"name"`
	Role    string            `json:"role"` // validation or test
	Metrics calibrate.Metrics `json:"metrics"`
}

// scoreAll scores the ID validation features, the ID test features (when not nil) and each OOD
// set's with f and measures them.
func (cd *candidate) scoreAll(f func([]float32) ([]float64, error), idF, idTestF []float32, oodF [][]float32) error {
	var err error
	if cd.id, err = f(idF); err != nil {
		return err
	}
	if idTestF != nil {
		if cd.idTest, err = f(idTestF); err != nil {
			return err
		}
	}
	for _, o := range oodF {
		s, err := f(o)
		if err != nil {
			return err
		}
		cd.ood = append(cd.ood, s)
	}
	return cd.measure(nil)
}

// measure fills Sets from the scores: the validation family against the ID validation scores,
// the test sets against the ID test scores when there are some; names are filled in by the
// caller when nil.
func (cd *candidate) measure(names []string) error {
	cd.Sets = cd.Sets[:0]
	for i, o := range cd.ood {
		mt, err := calibrate.Evaluate(cd.idFor(i), o, calibrate.DefaultRecall)
		if err != nil {
			return fmt.Errorf("%s: %w", cd.Name, err)
		}
		role := "validation"
		if i > 0 {
			role = "test"
		}
		s := candSet{Role: role, Metrics: mt}
		if names != nil {
			s.Name = names[i]
		}
		cd.Sets = append(cd.Sets, s)
	}
	return nil
}

// idFor is the ID scores OOD set i is measured against.
func (cd *candidate) idFor(i int) []float64 {
	if i > 0 && cd.idTest != nil {
		return cd.idTest
	}
	return cd.id
}

func hostLogitScores(m *detect.Model, feats []float32, f score.Func) ([]float64, error) {
	K := m.Head.Classes
	n := len(feats) / m.Head.Dim
	z := m.Head.LogitsOf(feats, n)
	row := make([]float32, K)
	out := make([]float64, n)
	for i := range out {
		for k := range row {
			row[k] = float32(z[i*K+k])
		}
		s, err := f(row)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		out[i] = s
	}
	return out, nil
}

func accuracyOf(z []float64, labels []int, K int) float64 {
	n, right := 0, 0
	for i, y := range labels {
		if y < 0 {
			continue
		}
		n++
		if score.Argmax(z[i*K:(i+1)*K]) == y {
			right++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(right) / float64(n)
}

// images streams the preprocessed images of d (the subset sub selects) in batches, with a
// progress bar described by desc() on each pass.
func (c *chooseCommand) images(d dataArg, unlabeled bool, spec preprocess.Spec, sub subset, batch int, desc func() string) detect.Images {
	return func(yield func([]float32, int, []int) error) error {
		r, err := d.openForScoring(unlabeled, sub)
		if err != nil {
			return err
		}
		defer r.Close()
		pre, err := preprocess.New(spec)
		if err != nil {
			return err
		}
		per := pre.Len()
		buf := make([]float32, batch*per)
		labels := make([]int, batch)
		bar := newBar(r.Len(), desc())
		defer bar.Finish()
		n, done := 0, 0
		for {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			smp, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := pre.Process(buf[n*per:(n+1)*per], smp.Image); err != nil {
				return fmt.Errorf("%s: %w", smp.Name(), err)
			}
			labels[n] = smp.Label
			n++
			if n == batch {
				if err := yield(buf, n, labels); err != nil {
					return err
				}
				done += n
				bar.Set(done)
				n = 0
			}
		}
		if n > 0 {
			if err := yield(buf[:n*per], n, labels[:n]); err != nil {
				return err
			}
			done += n
		}
		if done == 0 {
			return fmt.Errorf("dataset %s holds no images", d.name())
		}
		return nil
	}
}

// features extracts the features and labels of every image of d's subset.
func (c *chooseCommand) features(ex *detect.Extractor, d dataArg, unlabeled bool, spec preprocess.Spec, batch int) ([]float32, []int, error) {
	var feats []float32
	var labels []int
	start := time.Now()
	defer func() {
		if n := len(labels); n > 0 {
			fmt.Fprintf(stderr, "features of %s: %d images in %.1fs\n", d.name(), n, time.Since(start).Seconds())
		}
	}()
	err := ex.Pass(c.images(d, unlabeled, spec, c.sub, batch, func() string { return "features " + d.name() }))(func(f []float32, l []int) error {
		feats = append(feats, f...)
		labels = append(labels, l...)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d.name(), err)
	}
	return feats, labels, nil
}

// writeChosenModel writes the chosen candidate's model: its detector written into a copy of
// the graph it was fitted on, or, for a logit score, that model itself.
func writeChosenModel(best *candidate, path string) error {
	var data []byte
	var err error
	if best.det != nil {
		data, err = best.base.Write(best.det)
	} else {
		data, err = os.ReadFile(best.Model)
	}
	if err != nil {
		return fmt.Errorf("write the chosen model %s: %w", best.Name, err)
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// calibrate fits the threshold of the written model under ONNX Runtime on the ID validation
// data, as the device will score it.
func (c *chooseCommand) calibrate(ctx context.Context, model string, sp score.Spec, spec preprocess.Spec, idData dataArg) (*calibrate.Calibration, error) {
	clf, pool, closePool, err := c.ort.openPool(model, nil, "", &c.batch)
	if err != nil {
		return nil, err
	}
	defer closePool()
	res, err := scoreData(ctx, pool, spec, idData, false, c.sub, batchscore.Options{Batch: c.batch, Scores: []score.Spec{sp}})
	if err != nil {
		return nil, err
	}
	th, achieved, err := calibrate.FitThreshold(res.Scores[0], c.tpr)
	if err != nil {
		return nil, fmt.Errorf("calibrate on %s: %w", idData.name(), err)
	}
	return &calibrate.Calibration{
		Format: calibrate.CalibrationFormat, Score: sp, Threshold: th, TargetTPR: c.tpr, AchievedTPR: achieved,
		ModelSHA256: clf.SHA256(), ModelFile: model, Preprocess: spec,
		Data:    []calibrate.DataRef{{Role: "id-validation", Name: idData.name(), Count: res.Len()}},
		Tool:    "oodguard " + Version,
		Created: time.Now().UTC().Truncate(time.Second),
	}, nil
}

// chooseSummary is candidates.json.
type chooseSummary struct {
	Model      string            `json:"model"`
	Rule       string            `json:"rule"`
	MaxAccDrop float64           `json:"max_acc_drop_points"`
	Accuracy   float64           `json:"id_accuracy"` // the model's, on the ID validation data
	Fit        calibrate.DataRef `json:"fit"`
	IDVal      calibrate.DataRef `json:"id_validation"`
	// IDTest is the ID data the test sets are measured against (-id-test); nil: IDVal.
	IDTest       *calibrate.DataRef  `json:"id_test,omitempty"`
	TestAccuracy float64             `json:"id_test_accuracy,omitempty"` // the model's, on IDTest
	OOD          []calibrate.DataRef `json:"ood"`                        // validation first, then the test sets
	Chosen       string              `json:"chosen"`
	Threshold    float64             `json:"threshold"`
	Candidates   []*candidate        `json:"candidates"`
}

func (c *chooseCommand) writeSummary(s *chooseSummary) error {
	for _, cd := range s.Candidates {
		for i := range cd.Sets {
			cd.Sets[i].Name = s.OOD[i].Name
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(c.out, "candidates.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(c.out, "candidates.csv"), 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"candidate", "kind", "id_accuracy", "eligible", "chosen", "ood_set", "role", "fpr95", "auroc", "aupr_in", "aupr_out", "id_set", "id_test_accuracy"})
		p := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 4, 64) }
		for _, cd := range s.Candidates {
			testAcc := ""
			if cd.TestAccuracy != nil {
				testAcc = p(*cd.TestAccuracy)
			}
			for i, set := range cd.Sets {
				idSet := s.IDVal.Name
				if i > 0 && s.IDTest != nil {
					idSet = s.IDTest.Name
				}
				cw.Write([]string{cd.Name, cd.Kind, p(cd.Accuracy), strconv.FormatBool(cd.Eligible), strconv.FormatBool(cd.Chosen),
					set.Name, set.Role, p(set.Metrics.FPR95), p(set.Metrics.AUROC), p(set.Metrics.AUPRIn), p(set.Metrics.AUPROut), idSet, testAcc})
			}
		}
		cw.Flush()
		return cw.Error()
	})
}

// writeReport writes the HTML report (eval's) of energy and the chosen candidate into report/:
// every OOD set against the ID validation data or, with -id-test, the validation family against
// it in report/ and the test sets against the ID test data in report-test/.
func (c *chooseCommand) writeReport(s *chooseSummary, energy, best *candidate, cal *calibrate.Calibration, took time.Duration) error {
	if s.IDTest == nil {
		return c.writeReportPart("report", s, s.IDVal, s.Accuracy, 0, len(s.OOD), energy, best, cal, took)
	}
	if err := c.writeReportPart("report", s, s.IDVal, s.Accuracy, 0, 1, energy, best, cal, took); err != nil {
		return err
	}
	return c.writeReportPart("report-test", s, *s.IDTest, s.TestAccuracy, 1, len(s.OOD), energy, best, cal, took)
}

// writeReportPart writes the report of OOD sets [from, to) against id into dir.
func (c *chooseCommand) writeReportPart(dir string, s *chooseSummary, id calibrate.DataRef, acc float64, from, to int, energy, best *candidate, cal *calibrate.Calibration, took time.Duration) error {
	rep := &report.Report{
		Model: filepath.Join(c.out, "model.onnx"), ModelSHA256: cal.ModelSHA256, Tool: "oodguard " + Version,
		Created: time.Now().UTC().Truncate(time.Second), ID: id, OOD: s.OOD[from:to], Accuracy: &acc, Seconds: took.Seconds(),
	}
	var raw []report.Scores
	for _, cd := range []*candidate{energy, best} {
		sr := report.ScoreResult{Score: cd.Name}
		if cd == best {
			sr.Score += " (chosen)"
			th := cal.Threshold
			sr.Threshold = &th
		}
		var all []calibrate.Metrics
		for i := from; i < to; i++ {
			sr.Sets = append(sr.Sets, report.SetResult{Name: s.OOD[i].Name, Metrics: cd.Sets[i].Metrics})
			all = append(all, cd.Sets[i].Metrics)
		}
		var err error
		if sr.Mean, err = calibrate.Mean(all); err != nil {
			return err
		}
		rep.Scores = append(rep.Scores, sr)
		raw = append(raw, report.Scores{ID: cd.idFor(from), OOD: cd.ood[from:to]})
		if cd == best && cd == energy {
			break
		}
	}
	return report.Write(filepath.Join(c.out, dir), rep, raw)
}

func printChoice(w io.Writer, s *chooseSummary, energy, best *candidate, out string) {
	fmt.Fprintf(w, "ID validation %s (%d images), accuracy %.2f%%; OOD validation %s\n", s.IDVal.Name, s.IDVal.Count, 100*s.Accuracy, s.OOD[0].Name)
	fmt.Fprintf(w, "%-28s %7s %5s", "candidate", "acc", "ok")
	for i, o := range s.OOD {
		role := "val"
		if i > 0 {
			role = "test"
		}
		fmt.Fprintf(w, " | %-24s", fmt.Sprintf("%s %s FPR/AUROC", role, shortName(o.Name)))
	}
	fmt.Fprintln(w)
	for _, cd := range s.Candidates {
		mark := " "
		if cd.Chosen {
			mark = "*"
		}
		fmt.Fprintf(w, "%s%-27s %7.2f %5v", mark, cd.Name, 100*cd.Accuracy, cd.Eligible)
		for _, set := range cd.Sets {
			fmt.Fprintf(w, " | %8.2f / %-13.2f", 100*set.Metrics.FPR95, 100*set.Metrics.AUROC)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "chosen: %s, validation FPR95 %.2f%% (energy %.2f%%); threshold %.6g\n", best.Name,
		100*best.Sets[0].Metrics.FPR95, 100*energy.Sets[0].Metrics.FPR95, s.Threshold)
	if s.IDTest != nil && len(best.Sets) > 1 {
		fmt.Fprintf(w, "test sets against ID test %s (%d images), accuracy %.2f%% (chosen %.2f%%)\n", s.IDTest.Name, s.IDTest.Count,
			100*s.TestAccuracy, 100*deref(best.TestAccuracy))
	}
	for i := 1; i < len(best.Sets); i++ {
		fmt.Fprintf(w, "  test %s (never seen by the choice): FPR95 %.2f%%, energy %.2f%%\n", s.OOD[i].Name,
			100*best.Sets[i].Metrics.FPR95, 100*energy.Sets[i].Metrics.FPR95)
	}
	reports := "report/index.html"
	if s.IDTest != nil {
		reports = "report/index.html, report-test/index.html"
	}
	fmt.Fprintf(w, "wrote %s and %s; candidates.json, candidates.csv and %s in %s\n",
		filepath.Join(out, "model.onnx"), filepath.Join(out, "calibration.json"), reports, out)
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// shortName is a dataset's folder, the family: "mnist" of "mnist/t10k-images-idx3-ubyte.gz".
func shortName(s string) string {
	if i := strings.IndexByte(s, '/'); i > 0 {
		s = s[:i]
	}
	if len(s) > 14 {
		s = s[:14]
	}
	return s
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/calibrate/batchscore"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/score"
)

// calibrateCommand fits the score threshold on ID validation data and writes calibration.json.
type calibrateCommand struct {
	ort         ortFlags
	model, data string
	preset      string
	specFile    string
	scoreKind   string
	temperature float64
	tpr         float64
	sub         subset
	batch       int
	out         string
}

func (c *calibrateCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard calibrate -model MODEL.onnx -data ID_VALIDATION [flags]

Scores in-distribution validation data with the model and fits the threshold at which the
target share of it (the true-positive rate, 95% by default) is accepted: a frame is ID when
its score >= threshold. Writes calibration.json with the threshold, the score, the model's
sha256 and the preprocessing spec, for oodguardd and for bundles.

Datasets are PATH or PATH#PREFIX: IDX files (train-images-idx3-ubyte.gz), CIFAR-10 .bin
batches, folders of JPEG/PNG, or tar archives of them (cifar10/test.tar#test).

Flags:
`)
}

func (c *calibrateCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("calibrate", c)
	c.ort.register(fs)
	c.ort.registerWorkers(fs)
	fs.StringVar(&c.model, "model", "", "ONNX image classifier (required)")
	fs.StringVar(&c.data, "data", "", "ID validation data (required)")
	fs.StringVar(&c.preset, "preset", "", "preprocessing preset: fashion-mnist or cifar10")
	fs.StringVar(&c.specFile, "preprocess", "", "preprocessing spec JSON (default: MODEL.preprocess.json)")
	fs.StringVar(&c.scoreKind, "score", "energy", "score: energy, msp, maxlogit, gen, or graph (the model's score output, e.g. a detector written by 'oodguard choose')")
	fs.Float64Var(&c.temperature, "temperature", 1, "energy temperature T")
	fs.Float64Var(&c.tpr, "tpr", 0.95, "target ID true-positive rate")
	c.sub.register(fs, "the data", true)
	fs.IntVar(&c.batch, "batch", 64, "images per ONNX Runtime run")
	fs.StringVar(&c.out, "out", "calibration.json", "where to write the calibration")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.model == "" || c.data == "" {
		return usagef("-model and -data are required")
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if !(c.tpr > 0 && c.tpr <= 1) {
		return usagef("-tpr %v must be in (0, 1]", c.tpr)
	}
	if err := checkTemperature("temperature", c.temperature); err != nil {
		return err
	}
	if err := c.sub.check("limit"); err != nil {
		return err
	}
	sp := score.Spec{Kind: score.Kind(c.scoreKind)}
	if sp.Kind == score.KindEnergy {
		sp.Temperature = c.temperature
	}
	if err := sp.Validate(); err != nil {
		return usageError{err}
	}
	data, err := parseDataArg(c.data)
	if err != nil {
		return usageError{err}
	}
	if err := checkModelFile(c.model); err != nil {
		return err
	}
	spec, _, err := loadSpec(c.preset, c.specFile, c.model)
	if err != nil {
		return err
	}
	clf, pool, closePool, err := c.ort.openPool(c.model, nil, "", &c.batch)
	if err != nil {
		return err
	}
	defer closePool()
	if sp.Kind == score.KindGraph && clf.Shape().Score != "" {
		sp.Output = clf.Shape().Score
	}
	sp.Name, sp.Detector = detectorRecord(clf)
	res, err := scoreData(ctx, pool, spec, data, false, c.sub, batchscore.Options{Batch: c.batch, Scores: []score.Spec{sp}})
	if err != nil {
		return err
	}
	th, achieved, err := calibrate.FitThreshold(res.Scores[0], c.tpr)
	if err != nil {
		return fmt.Errorf("calibrate on %s: %w", c.data, err)
	}
	cal := &calibrate.Calibration{
		Format: calibrate.CalibrationFormat, Score: sp, Threshold: th, TargetTPR: c.tpr, AchievedTPR: achieved,
		ModelSHA256: clf.SHA256(), ModelFile: c.model, Preprocess: spec,
		Data:    []calibrate.DataRef{{Role: "id-validation", Name: data.name(), Count: res.Len()}},
		Tool:    "oodguard " + Version,
		Created: time.Now().UTC().Truncate(time.Second),
	}
	if err := cal.Save(c.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s threshold %.6g accepts %.2f%% of %d ID images (target %.2f%%); wrote %s\n",
		sp, th, 100*achieved, res.Len(), 100*c.tpr, c.out)
	if acc, ok := res.Accuracy(); ok {
		fmt.Fprintf(stdout, "top-1 accuracy on %s: %.2f%%\n", data.name(), 100*acc)
	}
	return nil
}

// Keys of the model metadata where detect records the detector it wrote into a graph (the
// values of detect.MetadataName and detect.MetadataSpec, repeated so that the commands that
// only read models do not link detect).
const (
	metadataDetectorName = "oodguard.detector.name"
	metadataDetectorSpec = "oodguard.detector.spec"
)

// detectorRecord returns the name and the spec of the detector written into clf's graph, as
// detect recorded them in its metadata; empty for a model without one.
func detectorRecord(clf *ort.Classifier) (string, json.RawMessage) {
	name, _ := clf.Metadata(metadataDetectorName)
	spec, ok := clf.Metadata(metadataDetectorSpec)
	if !ok || !json.Valid([]byte(spec)) {
		return name, nil
	}
	return name, json.RawMessage(spec)
}

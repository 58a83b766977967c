package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	ort "github.com/oodguard/oodguard/runtime"
)

// inspectCommand prints a model's inputs and outputs and whether oodguard can guard it.
type inspectCommand struct {
	ort          ortFlags
	jsonOut      bool
	inferenceOut string
}

func (c *inspectCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard inspect [flags] MODEL.onnx

Prints the model's inputs and outputs (a dimension of ? is dynamic) and checks that it is an
image classifier oodguard can guard: one float32 [N,C,H,W] input, one float32 [N,K] output,
and optionally one float32 [N] score output (a detector 'oodguard choose' wrote into the graph).
Exits 1 when it is not. For a classifier, also says whether it can be unleashed and scored with
ODIN, and if not, why.

A model exported in training mode (after model.train() with TrainingMode.PRESERVE: BatchNorm
normalising each batch by its own statistics, Dropout on) is refused for inference;
-inference-out OUT.onnx writes it converted to inference mode, with the running statistics
stored in the file (oodguard unleash takes it as it is and writes an inference-mode model).

Flags:
`)
}

type inspectReport struct {
	Model      string               `json:"model"`
	ORT        string               `json:"onnxruntime"`
	Info       ort.ModelInfo        `json:"info"`
	Classifier *ort.ClassifierShape `json:"classifier,omitempty"`
	Detector   string               `json:"detector,omitempty"` // the detector detect wrote into the graph, from its metadata
	Problem    string               `json:"problem,omitempty"`
	Unleash    *unleashReport       `json:"unleash,omitempty"`
}

func (c *inspectCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("inspect", c)
	c.ort.register(fs)
	fs.BoolVar(&c.jsonOut, "json", false, "print JSON")
	fs.StringVar(&c.inferenceOut, "inference-out", "", "write a model exported in training mode, converted to inference mode, to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("inspect takes one model file, got %d arguments", fs.NArg())
	}
	path := fs.Arg(0)
	if err := checkModelFile(path); err != nil {
		return err
	}
	opts, err := c.ort.options()
	if err != nil {
		return err
	}
	info, err := ort.Inspect(path)
	if err != nil {
		return err
	}
	rep := inspectReport{Model: path, ORT: ort.Version(), Info: info}
	shape, shapeErr := info.ClassifierShape()
	if shapeErr == nil {
		rep.Classifier = &shape
		rep.Unleash = checkUnleash(path)
		if clf, err := ort.Open(path, opts); err == nil {
			rep.Detector, _ = clf.Metadata(metadataDetectorName)
			clf.Close()
		}
	} else {
		rep.Problem = shapeErr.Error()
	}
	w := stdout
	if c.jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "model: %s (ONNX Runtime %s)\n", path, rep.ORT)
		for _, t := range info.Inputs {
			fmt.Fprintf(w, "input   %s\n", t)
		}
		for _, t := range info.Outputs {
			fmt.Fprintf(w, "output  %s\n", t)
		}
		if shapeErr == nil {
			fmt.Fprintf(w, "image classifier: %d channels, %dx%d pixels, %d classes\n", shape.Channels, shape.Height, shape.Width, shape.Classes)
			if shape.Score != "" {
				fmt.Fprintf(w, "score output: %s (calibrate with -score graph)\n", shape.Score)
			}
			if rep.Detector != "" {
				fmt.Fprintf(w, "detector written into the graph: %s\n", rep.Detector)
			}
			rep.Unleash.print(w)
		}
	}
	if shapeErr != nil {
		return fmt.Errorf("model %s: %w", path, shapeErr)
	}
	if c.inferenceOut != "" {
		if err := writeInference(path, c.inferenceOut); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s: %s in inference mode (running statistics as stored in the file)\n", c.inferenceOut, path)
	}
	return nil
}

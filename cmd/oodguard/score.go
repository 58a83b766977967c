package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/score"
)

// scoreCommand runs a model on images or a raw tensor file and prints, per image, the predicted
// class, the OOD scores and, with a calibration, the decision the daemon would make.
type scoreCommand struct {
	ort         ortFlags
	model       string
	calib       string
	preset      string
	specFile    string
	temperature float64
	jsonOut     bool
}

func (c *scoreCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard score -model MODEL.onnx [flags] INPUT

INPUT is an image file, a folder of images (sorted by name), any dataset 'oodguard eval'
reads (PATH or PATH#PREFIX), or a raw little-endian float32 tensor file (.f32) of images
already preprocessed into the model's [C,H,W] layout.

Prints for each image the predicted class and its OOD scores: energy (T*logsumexp(z/T)), MSP
and MaxLogit, and, for a model with a score output (a detector written by 'oodguard choose'),
that output's value as "graph", all "higher = more in-distribution". With -calibration, also the decision
oodguardd makes for the frame on its own (debounce window 1): "ood" when the calibrated score
is below the threshold.

Flags:
`)
}

// scoredImage is one line of output.
type scoredImage struct {
	Index    int      `json:"index"`
	Name     string   `json:"name,omitempty"`
	Class    int      `json:"class"`
	Energy   float64  `json:"energy"`
	MSP      float64  `json:"msp"`
	MaxLogit float64  `json:"maxlogit"`
	Graph    *float64 `json:"graph,omitempty"`    // the model's score output, when it has one
	Decision string   `json:"decision,omitempty"` // "id" or "ood", with a calibration
}

func (c *scoreCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("score", c)
	c.ort.register(fs)
	fs.StringVar(&c.model, "model", "", "ONNX image classifier (required)")
	fs.StringVar(&c.calib, "calibration", "", "calibration.json: its preprocessing, and the decision per image")
	fs.StringVar(&c.preset, "preset", "", "preprocessing preset for images: fashion-mnist or cifar10")
	fs.StringVar(&c.specFile, "preprocess", "", "preprocessing spec JSON for images (default: MODEL.preprocess.json)")
	fs.Float64Var(&c.temperature, "temperature", 1, "energy temperature T")
	fs.BoolVar(&c.jsonOut, "json", false, "print JSON lines, one per image")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.model == "" {
		return usagef("-model is required")
	}
	if fs.NArg() != 1 {
		return usagef("score takes one input, got %d arguments", fs.NArg())
	}
	if err := checkTemperature("temperature", c.temperature); err != nil {
		return err
	}
	if err := checkModelFile(c.model); err != nil {
		return err
	}
	energy, err := score.Spec{Kind: score.KindEnergy, Temperature: c.temperature}.Func()
	if err != nil {
		return usageError{err}
	}
	var cal *calibrate.Calibration
	var decide score.SampleFunc
	if c.calib != "" {
		if cal, err = calibrate.LoadCalibration(c.calib); err != nil {
			return err
		}
		if decide, err = cal.Score.SampleFunc(); err != nil {
			return err
		}
	}
	clf, err := c.ort.open(c.model, cal, c.calib)
	if err != nil {
		return err
	}
	defer clf.Close()
	if cal != nil {
		if err := cal.Score.CheckModel(clf.Shape().Score); err != nil {
			return fmt.Errorf("model %s: %w", c.model, err)
		}
	}
	graphCol := clf.Shape().Score
	in, err := c.openInput(fs.Arg(0), clf, cal)
	if err != nil {
		return err
	}
	r, err := clf.NewRunner(1)
	if err != nil {
		return err
	}
	defer r.Close()
	enc := json.NewEncoder(stdout)
	if !c.jsonOut {
		g := ""
		if graphCol != "" {
			g = fmt.Sprintf(" %12s", graphCol)
		}
		fmt.Fprintf(stdout, "%5s %5s %12s %9s %9s%s %-8s %s\n", "image", "class", fmt.Sprintf("energy(T=%g)", c.temperature), "msp", "maxlogit", g, "decision", "name")
	}
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, err := in(r.Input())
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		z, err := r.Run()
		if err != nil {
			return err
		}
		img := scoredImage{Index: i, Name: name, Class: score.Argmax(z)}
		var out float32
		if outs := r.Scores(); outs != nil {
			out = outs[0]
		}
		if img.Energy, err = energy(z); err == nil {
			if img.MSP, err = score.MSP(z); err == nil {
				img.MaxLogit, err = score.MaxLogit(z)
			}
		}
		if err == nil && graphCol != "" {
			var g float64
			if g, err = score.Graph(z, out); err == nil {
				img.Graph = &g
			}
		}
		if err == nil && decide != nil {
			var s float64
			if s, err = decide(z, out); err == nil {
				img.Decision = "id"
				if s < cal.Threshold {
					img.Decision = "ood"
				}
			}
		}
		if err != nil {
			return fmt.Errorf("image %d (%s): %w", i, name, err)
		}
		if c.jsonOut {
			if err := enc.Encode(img); err != nil {
				return err
			}
		} else {
			g := ""
			if img.Graph != nil {
				g = fmt.Sprintf(" %12.6f", *img.Graph)
			}
			fmt.Fprintf(stdout, "%5d %5d %12.6f %9.6f %9.4f%s %-8s %s\n", img.Index, img.Class, img.Energy, img.MSP, img.MaxLogit, g, img.Decision, img.Name)
		}
	}
}

// openInput returns a function that fills one image's tensor per call, with its name, and
// io.EOF after the last.
func (c *scoreCommand) openInput(path string, clf *ort.Classifier, cal *calibrate.Calibration) (func([]float32) (string, error), error) {
	if strings.HasSuffix(path, ".f32") {
		x, err := readTensorFile(path, clf.Shape())
		if err != nil {
			return nil, err
		}
		per := clf.Shape().InputLen(1)
		next := 0
		return func(dst []float32) (string, error) {
			if next*per >= len(x) {
				return "", io.EOF
			}
			copy(dst, x[next*per:(next+1)*per])
			next++
			return fmt.Sprintf("%s[%d]", path, next-1), nil
		}, nil
	}
	var spec preprocess.Spec
	var err error
	if cal != nil {
		spec = cal.Preprocess
	} else if spec, _, err = loadSpec(c.preset, c.specFile, c.model); err != nil {
		return nil, err
	}
	if err := clf.CheckInput(spec.Channels, spec.Height, spec.Width); err != nil {
		return nil, err
	}
	pre, err := preprocess.New(spec)
	if err != nil {
		return nil, err
	}
	d, err := parseDataArg(path)
	if err != nil {
		return nil, usageError{err}
	}
	r, err := d.open(true) // an image file is a folder of one
	if err != nil {
		return nil, err
	}
	return func(dst []float32) (string, error) {
		s, err := r.Next()
		if err != nil {
			r.Close()
			return "", err
		}
		if err := pre.Process(dst, s.Image); err != nil {
			return "", fmt.Errorf("%s: %w", s.Name(), err)
		}
		return s.Name(), nil
	}, nil
}

// readTensorFile reads raw little-endian float32 values that must fill whole images of shape s.
func readTensorFile(path string, s ort.ClassifierShape) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	per := s.InputLen(1)
	if len(raw)%4 != 0 || len(raw) == 0 || (len(raw)/4)%per != 0 {
		return nil, fmt.Errorf("input %s: %d bytes is not a whole number of %dx%dx%d float32 images (%d bytes each)",
			path, len(raw), s.Channels, s.Height, s.Width, per*4)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return x, nil
}

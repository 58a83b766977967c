package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/oodguard/oodguard/guard/score"
	ort "github.com/oodguard/oodguard/runtime"
)

// scoreCommand runs a model on a raw tensor file and prints logits and OOD scores.
type scoreCommand struct {
	ort         ortFlags
	model       string
	batch       int
	temperature float64
	jsonOut     bool
}

func (c *scoreCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard score -model MODEL.onnx [flags] INPUT.f32

Runs the classifier on INPUT.f32, a raw little-endian float32 tensor of one or more images in
the model's [C,H,W] layout, already preprocessed, and prints for each image the predicted class
and its OOD scores: energy (T*logsumexp(z/T)), MSP and MaxLogit. Every score is "higher = more
in-distribution".

Flags:
`)
}

type scoredImage struct {
	Index    int       `json:"index"`
	Class    int       `json:"class"`
	Energy   float64   `json:"energy"`
	MSP      float64   `json:"msp"`
	MaxLogit float64   `json:"maxlogit"`
	Logits   []float32 `json:"logits"`
}

func (c *scoreCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("score", c)
	c.ort.register(fs)
	fs.StringVar(&c.model, "model", "", "ONNX image classifier (required)")
	fs.IntVar(&c.batch, "batch", 32, "images per ONNX Runtime run")
	fs.Float64Var(&c.temperature, "temperature", 1, "energy temperature T")
	fs.BoolVar(&c.jsonOut, "json", false, "print JSON lines, one per image")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.model == "" {
		return usagef("-model is required")
	}
	if fs.NArg() != 1 {
		return usagef("score takes one input file, got %d arguments", fs.NArg())
	}
	if c.batch <= 0 {
		return usagef("-batch %d must be positive", c.batch)
	}
	energy, err := score.Spec{Kind: score.KindEnergy, Temperature: c.temperature}.Func()
	if err != nil {
		return usageError{err}
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
	input, err := readTensorFile(fs.Arg(0), clf.Shape())
	if err != nil {
		return err
	}
	per := clf.Shape().InputLen(1)
	n := len(input) / per
	k := clf.Shape().Classes
	enc := json.NewEncoder(stdout)
	if !c.jsonOut {
		fmt.Fprintf(stdout, "%5s %5s %12s %10s %10s\n", "image", "class", "energy(T="+fmt.Sprint(c.temperature)+")", "msp", "maxlogit")
	}
	for start := 0; start < n; start += c.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := min(c.batch, n-start)
		r, err := clf.NewRunner(b)
		if err != nil {
			return err
		}
		copy(r.Input(), input[start*per:(start+b)*per])
		logits, err := r.Run()
		if err != nil {
			r.Close()
			return err
		}
		for i := 0; i < b; i++ {
			z := logits[i*k : (i+1)*k]
			img := scoredImage{Index: start + i, Class: argmax(z), Logits: append([]float32(nil), z...)}
			if img.Energy, err = energy(z); err == nil {
				if img.MSP, err = score.MSP(z); err == nil {
					img.MaxLogit, err = score.MaxLogit(z)
				}
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("image %d of %s: %w", start+i, fs.Arg(0), err)
			}
			if c.jsonOut {
				if err := enc.Encode(img); err != nil {
					r.Close()
					return err
				}
			} else {
				fmt.Fprintf(stdout, "%5d %5d %12.6f %10.6f %10.6f\n", img.Index, img.Class, img.Energy, img.MSP, img.MaxLogit)
			}
		}
		r.Close()
	}
	return nil
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

func argmax(z []float32) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}

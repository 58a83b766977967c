package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/firmware/bundle"
)

// canaryTolerance is how far a device's canary score may be from the workstation's: ONNX
// Runtime on another CPU (arm64 under test: 2e-7 relative) or provider rounds differently.
func canaryTolerance(score float64) float64 { return math.Max(1e-3, 1e-3*math.Abs(score)) }

// makeCanaries scores up to n images of dir with the model, preprocessed as cal says, and
// returns them as canaries: the device checks each score before it switches to the model.
func makeCanaries(flags *ortFlags, model string, cal *calibrate.Calibration, dir string, n int) ([]bundle.Canary, error) {
	clf, err := flags.open(model, cal, "")
	if err != nil {
		return nil, err
	}
	defer clf.Close()
	pre, err := preprocess.New(cal.Preprocess)
	if err != nil {
		return nil, err
	}
	if err := clf.CheckInput(cal.Preprocess.Channels, cal.Preprocess.Height, cal.Preprocess.Width); err != nil {
		return nil, err
	}
	f, err := cal.Score.SampleFunc()
	if err != nil {
		return nil, err
	}
	if err := cal.Score.CheckModel(clf.Shape().Score); err != nil {
		return nil, fmt.Errorf("model %s: %w", model, err)
	}
	r, err := clf.NewRunner(1)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	imgs, err := dataset.Open(dir, dataset.Options{Layout: dataset.LayoutFlat})
	if err != nil {
		return nil, err
	}
	defer imgs.Close()
	var out []bundle.Canary
	for len(out) < n {
		s, err := imgs.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := pre.Process(r.Input(), s.Image); err != nil {
			return nil, fmt.Errorf("canary %s: %w", s.Name(), err)
		}
		raw := make([]byte, 4*len(r.Input()))
		for i, v := range r.Input() {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		z, err := r.Run()
		if err != nil {
			return nil, err
		}
		var g float32
		if outs := r.Scores(); outs != nil {
			g = outs[0]
		}
		sc, err := f(z, g)
		if err != nil {
			return nil, fmt.Errorf("canary %s: %w", s.Name(), err)
		}
		name := strings.TrimSuffix(filepath.Base(s.Name()), filepath.Ext(s.Name()))
		out = append(out, bundle.Canary{Name: name, Input: raw, Expected: sc, Tolerance: canaryTolerance(sc)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("canaries: no images in %s", dir)
	}
	return out, nil
}

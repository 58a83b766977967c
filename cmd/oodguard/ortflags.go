package main

import (
	"flag"
	"fmt"

	"github.com/oodguard/oodguard/calibrate"
	ort "github.com/oodguard/oodguard/runtime"
)

// ortFlags are the ONNX Runtime flags that every model-running command shares.
type ortFlags struct {
	lib      string
	threads  int
	provider string
	fallback bool
}

func (f *ortFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.lib, "ort-lib", "", "path of libonnxruntime.so (default: $"+ort.EnvLibrary+", then the usual places)")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads (0: ONNX Runtime decides)")
	fs.StringVar(&f.provider, "provider", "cpu", "execution provider: cpu, cuda or tensorrt")
	fs.BoolVar(&f.fallback, "provider-fallback", false, "run on the CPU when the provider is not available")
}

// options loads ONNX Runtime and returns the session options the flags select.
func (f *ortFlags) options() (ort.Options, error) {
	if _, err := ort.Setup(f.lib); err != nil {
		return ort.Options{}, err
	}
	opts := ort.Options{
		IntraOpThreads: f.threads,
		Provider:       ort.ProviderOptions{Name: ort.Provider(f.provider), FallbackToCPU: f.fallback},
	}
	if err := opts.Validate(); err != nil {
		return ort.Options{}, usageError{err}
	}
	return opts, nil
}

// open loads ONNX Runtime and opens the model; with a calibration (read from calPath) it also
// checks that the calibration was made for this model.
func (f *ortFlags) open(model string, cal *calibrate.Calibration, calPath string) (*ort.Classifier, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	clf, err := ort.Open(model, opts)
	if err != nil {
		return nil, err
	}
	if cal != nil {
		if err := cal.CheckModel(clf.SHA256()); err != nil {
			clf.Close()
			return nil, fmt.Errorf("calibration %s, model %s: %w", calPath, model, err)
		}
	}
	return clf, nil
}

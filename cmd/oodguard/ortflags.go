package main

import (
	"flag"
	"fmt"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/calibrate/batchscore"
	ort "github.com/oodguard/oodguard/runtime"
)

// ortFlags are the ONNX Runtime flags that every model-running command shares.
type ortFlags struct {
	lib      string
	threads  int
	provider string
	fallback bool
	workers  int // sessions scoring at once (registerWorkers)
}

func (f *ortFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.lib, "ort-lib", "", "path of libonnxruntime.so (default: $"+ort.EnvLibrary+", then the usual places)")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads (0: ONNX Runtime decides)")
	fs.StringVar(&f.provider, "provider", "cpu", "execution provider: cpu, cuda or tensorrt")
	fs.BoolVar(&f.fallback, "provider-fallback", false, "run on the CPU when the provider is not available")
}

// registerWorkers adds -workers, for the commands that score whole datasets.
func (f *ortFlags) registerWorkers(fs *flag.FlagSet) {
	fs.IntVar(&f.workers, "workers", 1, "sessions scoring batches at once, each with -threads intra-op threads and its own copy of the model "+
		"(on a CPU, -workers N -threads 1 can beat -threads N; measure on your machine)")
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

// openPool opens -workers sessions of model (each checked against the calibration, as open
// does) and a pool that runs batches of *batch images on them. It returns the first session,
// the pool, and a function that closes them all. A model whose input fixes the batch size (an
// export without dynamic axes) runs at that size: *batch is set to it, with a note on stderr
// when it differs from what was asked.
func (f *ortFlags) openPool(model string, cal *calibrate.Calibration, calPath string, batch *int) (*ort.Classifier, *batchscore.Pool, func(), error) {
	if f.workers < 1 {
		return nil, nil, nil, usagef("-workers %d must be at least 1", f.workers)
	}
	var clfs []*ort.Classifier
	closeAll := func() {
		for _, c := range clfs {
			c.Close()
		}
	}
	for range f.workers {
		clf, err := f.open(model, cal, calPath)
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		clfs = append(clfs, clf)
	}
	if fixed := clfs[0].Shape().Batch; fixed > 0 && *batch != fixed {
		fmt.Fprintf(stderr, "%s has a fixed batch size of %d: running batches of %d instead of %d\n", model, fixed, fixed, *batch)
		*batch = fixed
	}
	pool, err := batchscore.NewPool(clfs, *batch)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return clfs[0], pool, func() { pool.Close(); closeAll() }, nil
}

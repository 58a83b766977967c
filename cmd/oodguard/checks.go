package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
)

// checkModelFile returns a clear error when the model file is not there, before anything else
// (the preprocessing spec looked up next to it, ONNX Runtime) reports its absence less plainly.
func checkModelFile(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("model %s: not found", path)
	case err != nil:
		return fmt.Errorf("model %s: %w", path, err)
	case st.IsDir():
		return fmt.Errorf("model %s: is a folder, not an ONNX file", path)
	}
	return nil
}

// checkTemperature rejects a temperature flag that is not a finite number > 0. In a score spec a
// temperature of 0 stands for the default 1, so -temperature 0 would silently mean T = 1.
func checkTemperature(flag string, t float64) error {
	if !(t > 0) || math.IsInf(t, 0) {
		return usagef("-%s %v: the temperature must be a finite number > 0", flag, t)
	}
	return nil
}

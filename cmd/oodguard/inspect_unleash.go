package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// unleashReport says whether oodguard can unleash the model (UMAP, UM) and score it with ODIN,
// which both import it into GoMLX, and if not, why: every op the importer lacks, or the first
// thing it cannot build, or BatchNorm exported in training mode. A model exported in training
// mode can still be unleashed (UnleashOnly): unleash writes it in inference mode.
type unleashReport struct {
	OK          bool   `json:"ok"`
	UnleashOnly bool   `json:"unleash_only,omitempty"`
	Problem     string `json:"problem,omitempty"`
}

func checkUnleash(path string) *unleashReport {
	m, err := onnxgraph.Load(path)
	if err == nil && m.InTrainingMode() {
		// Unleash trains it as it is and writes it converted: check the converted model builds.
		problem := m.CheckInference().Error()
		var conv *onnxgraph.Model
		data, err := m.MarshalInference(nil)
		if err == nil {
			conv, err = onnxgraph.Parse(data)
		}
		if err == nil {
			err = conv.Check()
		}
		if err != nil {
			return &unleashReport{Problem: err.Error()}
		}
		return &unleashReport{UnleashOnly: true, Problem: problem}
	}
	if err == nil {
		err = m.Check()
	}
	if err != nil {
		return &unleashReport{Problem: err.Error()}
	}
	return &unleashReport{OK: true}
}

func (r *unleashReport) print(w io.Writer) {
	switch {
	case r.OK:
		fmt.Fprintln(w, "unleash (umap, um) and odin: yes")
	case r.UnleashOnly:
		fmt.Fprintln(w, "unleash (umap, um): yes, and it writes an inference-mode model")
		fmt.Fprintf(w, "odin and inference: no: %s\n", r.Problem)
	default:
		fmt.Fprintf(w, "unleash (umap, um) and odin: no: %s\n", r.Problem)
	}
}

// writeInference writes the model at path converted to inference mode (BatchNorm normalising
// with the running statistics stored in the file, Dropout off) to out.
func writeInference(path, out string) error {
	m, err := onnxgraph.Load(path)
	if err != nil {
		return fmt.Errorf("-inference-out: %w", err)
	}
	if !m.InTrainingMode() {
		return errors.New("-inference-out: " + path + " runs in inference mode already; nothing written")
	}
	data, err := m.MarshalInference(nil)
	if err != nil {
		return fmt.Errorf("-inference-out: %w", err)
	}
	return os.WriteFile(out, data, 0o644)
}

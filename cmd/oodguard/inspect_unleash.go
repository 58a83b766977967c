package main

import (
	"fmt"
	"io"

	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// unleashReport says whether oodguard can unleash the model (UMAP, UM) and score it with ODIN,
// which both import it into GoMLX, and if not, why: every op the importer lacks, or the first
// thing it cannot build, or BatchNorm exported in training mode.
type unleashReport struct {
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

func checkUnleash(path string) *unleashReport {
	m, err := onnxgraph.Load(path)
	if err == nil {
		err = m.Check()
	}
	if err != nil {
		return &unleashReport{Problem: err.Error()}
	}
	return &unleashReport{OK: true}
}

func (r *unleashReport) print(w io.Writer) {
	if r.OK {
		fmt.Fprintln(w, "unleash (umap, um) and odin: yes")
		return
	}
	fmt.Fprintf(w, "unleash (umap, um) and odin: no: %s\n", r.Problem)
}

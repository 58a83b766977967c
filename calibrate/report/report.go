// Package report writes evaluation reports that people can read: report.json, report.csv and
// an HTML page (index.html) with PNG plots per OOD set and score: the score histograms of ID and
// OOD data with the threshold drawn, and the ROC curve.
//
// It is host-side only (it links the plotting library); the device daemon never imports it.
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/internal/atomicfile"
)

// Convention is printed in every report so that nobody has to guess.
const Convention = "ID is the positive class; scores are higher = more ID; a sample is ID when score >= threshold. " +
	"FPR95 = fraction of OOD accepted at the threshold whose ID recall is closest to 95% (the method's routine); " +
	"FPR95 (OpenOOD) = at the first threshold reaching 95% ID recall. AUPR-In = average precision with ID positive; " +
	"AUPR-Out with OOD positive. All values in percent."

// Report is one evaluation: a model on an ID test set against one or more OOD sets.
type Report struct {
	Model       string              `json:"model"`
	ModelSHA256 string              `json:"model_sha256"`
	Tool        string              `json:"tool"`
	Created     time.Time           `json:"created"`
	Convention  string              `json:"convention"`
	ID          calibrate.DataRef   `json:"id"`
	OOD         []calibrate.DataRef `json:"ood"`
	Accuracy    *float64            `json:"id_accuracy,omitempty"` // top-1, when the ID set has labels
	Scores      []ScoreResult       `json:"scores"`
	Seconds     float64             `json:"seconds"`
}

// ScoreResult holds one score's metrics per OOD set and their unweighted mean.
type ScoreResult struct {
	Score     string            `json:"score"`               // e.g. "energy(T=1)"
	Threshold *float64          `json:"threshold,omitempty"` // from the calibration, when it is for this score
	Sets      []SetResult       `json:"sets"`
	Mean      calibrate.Metrics `json:"mean"`
	plots     map[string][2]string
}

// SetResult is one OOD set's metrics for one score.
type SetResult struct {
	Name    string            `json:"name"`
	Metrics calibrate.Metrics `json:"metrics"`
	// AcceptedOOD is the fraction of this set accepted as ID at the calibrated threshold.
	AcceptedOOD *float64 `json:"accepted_ood_at_threshold,omitempty"`
	// Hist and ROC are the plot files, relative to the report folder.
	Hist string `json:"hist_png,omitempty"`
	ROC  string `json:"roc_png,omitempty"`
}

// Scores are the raw scores behind a ScoreResult, for the plots: ID scores and, per OOD set in
// the order of Sets, its scores.
type Scores struct {
	ID  []float64
	OOD [][]float64
}

// Write writes report.json, report.csv, the plots and index.html into dir (created if needed).
// scores[i] holds the raw scores of r.Scores[i].
func Write(dir string, r *Report, scores []Scores) error {
	if len(scores) != len(r.Scores) {
		return fmt.Errorf("report: %d score results but %d raw score sets", len(r.Scores), len(scores))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.Convention = Convention
	for i := range r.Scores {
		sr := &r.Scores[i]
		if len(scores[i].OOD) != len(sr.Sets) {
			return fmt.Errorf("report: score %s has %d sets but %d raw OOD score sets", sr.Score, len(sr.Sets), len(scores[i].OOD))
		}
		for j := range sr.Sets {
			set := &sr.Sets[j]
			base := fmt.Sprintf("%s_%s", fileSafe(set.Name), fileSafe(sr.Score))
			set.Hist, set.ROC = "hist_"+base+".png", "roc_"+base+".png"
			title := fmt.Sprintf("%s: %s vs %s", sr.Score, r.ID.Name, set.Name)
			if err := histogramPNG(filepath.Join(dir, set.Hist), title, sr.Score, scores[i].ID, scores[i].OOD[j], sr.Threshold); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if err := rocPNG(filepath.Join(dir, set.ROC), title, scores[i].ID, scores[i].OOD[j], set.Metrics); err != nil {
				return fmt.Errorf("report: %w", err)
			}
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "report.csv"), 0o644, func(w io.Writer) error { return writeCSV(w, r) }); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "index.html"), 0o644, func(w io.Writer) error { return writeHTML(w, r) })
}

// writeCSV writes one row per score and OOD set, plus a "mean" row per score; values in percent.
func writeCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"score", "ood_set", "n_id", "n_ood", "fpr95", "fpr95_openood", "auroc", "aupr_in", "aupr_out", "detection_error", "id_accuracy"})
	acc := ""
	if r.Accuracy != nil {
		acc = pct(*r.Accuracy)
	}
	row := func(score, set string, m calibrate.Metrics) {
		cw.Write([]string{score, set, strconv.Itoa(m.NumID), strconv.Itoa(m.NumOOD), pct(m.FPR95), pct(m.FPR95OpenOOD),
			pct(m.AUROC), pct(m.AUPRIn), pct(m.AUPROut), pct(m.DetectionError), acc})
	}
	for _, s := range r.Scores {
		for _, set := range s.Sets {
			row(s.Score, set.Name, set.Metrics)
		}
		row(s.Score, "mean", s.Mean)
	}
	cw.Flush()
	return cw.Error()
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 4, 64) }

func fileSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

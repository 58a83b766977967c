package run

import (
	"context"
	"fmt"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/score"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// DefaultMaxAccuracyDrop is how much ID validation accuracy (a fraction) an unleashed model may
// lose against its input and still be kept.
const DefaultMaxAccuracyDrop = 0.015

// GuardRecord is the validation guard's verdict: the input and the unleashed model measured on
// the same ID and OOD validation sets (energy score, T=1), and which of the two was written.
type GuardRecord struct {
	Input           ValRecord `json:"input"`
	Output          ValRecord `json:"unleashed"`
	MaxAccuracyDrop float64   `json:"max_accuracy_drop"`
	KeptInput       bool      `json:"kept_input"`
	Reason          string    `json:"reason"`
}

// ValRecord is one model on the validation sets.
type ValRecord struct {
	FPR95    float64 `json:"fpr95"`
	AUROC    float64 `json:"auroc"`
	Accuracy float64 `json:"id_val_accuracy"`
}

// guard measures the input model m and the trained t on the validation sets and decides
// whether t is better: lower FPR95, and ID accuracy at most MaxAccuracyDrop below the input's.
// A model that is not better is not returned: the input is kept (Result.KeptInput), so that
// unleashing never makes a model worse on the data the user gave to judge it.
func guard(ctx context.Context, m *onnxgraph.Model, t *unleash.Trainer, cfg *Config) (*GuardRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := unleash.DefaultOptions(unleash.UM) // dense: the input's weights as they are
	o.Backend, o.BatchNormEval, o.Seed, o.Epochs = cfg.Backend, cfg.BatchNormEval, cfg.Seed, 1
	t0, err := unleash.New(m, o)
	if err != nil {
		return nil, fmt.Errorf("validation guard: the input model: %w", err)
	}
	in, err := validate(t0, cfg)
	if err != nil {
		return nil, fmt.Errorf("validation guard: the input model: %w", err)
	}
	out, err := validate(t, cfg)
	if err != nil {
		return nil, fmt.Errorf("validation guard: the unleashed model: %w", err)
	}
	g := &GuardRecord{Input: in, Output: out, MaxAccuracyDrop: cfg.MaxAccuracyDrop}
	switch {
	case !(out.FPR95 < in.FPR95):
		g.KeptInput = true
		g.Reason = fmt.Sprintf("validation FPR95 %.2f%% is not below the input's %.2f%%", 100*out.FPR95, 100*in.FPR95)
	case out.Accuracy < in.Accuracy-cfg.MaxAccuracyDrop:
		g.KeptInput = true
		g.Reason = fmt.Sprintf("ID validation accuracy %.2f%% is more than %.1f points below the input's %.2f%%",
			100*out.Accuracy, 100*cfg.MaxAccuracyDrop, 100*in.Accuracy)
	default:
		g.Reason = fmt.Sprintf("validation FPR95 %.2f%% -> %.2f%%, ID accuracy %.2f%% -> %.2f%%",
			100*in.FPR95, 100*out.FPR95, 100*in.Accuracy, 100*out.Accuracy)
	}
	return g, nil
}

// validate returns t's energy FPR95 and AUROC of IDVal vs OODVal and its accuracy on IDVal.
func validate(t *unleash.Trainer, cfg *Config) (ValRecord, error) {
	idZ, k, err := logits(t, cfg.IDVal, cfg.Batch)
	if err != nil {
		return ValRecord{}, err
	}
	oodZ, _, err := logits(t, cfg.OODVal, cfg.Batch)
	if err != nil {
		return ValRecord{}, err
	}
	idS, err := energies(idZ, k)
	if err != nil {
		return ValRecord{}, err
	}
	oodS, err := energies(oodZ, k)
	if err != nil {
		return ValRecord{}, err
	}
	mt, err := calibrate.Evaluate(idS, oodS, calibrate.DefaultRecall)
	if err != nil {
		return ValRecord{}, err
	}
	right := 0
	for j, y := range cfg.IDVal.Labels {
		if y >= 0 && score.Argmax(idZ[j*k:(j+1)*k]) == y {
			right++
		}
	}
	return ValRecord{FPR95: mt.FPR95, AUROC: mt.AUROC, Accuracy: float64(right) / float64(cfg.IDVal.Len())}, nil
}

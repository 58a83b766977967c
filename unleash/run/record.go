package run

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// Record is the run record written next to the output model (OUT.run.json).
type Record struct {
	Tool    string    `json:"tool"`
	Created time.Time `json:"created"`
	Mode    string    `json:"mode"` // "umap" or "um"

	Input  ModelRecord `json:"input_model"`
	Output ModelRecord `json:"output_model"`

	Data       DataRecord       `json:"train_data"`
	Augment    string           `json:"augmentation"`
	Check      *DataRecord      `json:"check_data,omitempty"` // per-epoch accuracy set
	Preprocess *preprocess.Spec `json:"preprocess,omitempty"`

	Constraint ConstraintRecord `json:"constraint"`

	Keep      *float64 `json:"keep,omitempty"`       // UMAP
	ScoreInit string   `json:"score_init,omitempty"` // UMAP

	Epochs      int     `json:"epochs"`
	Batch       int     `json:"batch"`
	LR          float64 `json:"lr"`
	Schedule    string  `json:"lr_schedule"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	BatchNorm   string  `json:"batchnorm"` // "train" (batch statistics, running stats updated) or "eval"
	Backend     string  `json:"backend"`
	Seeds       Seeds   `json:"seeds"`
	Steps       int     `json:"steps"`

	EpochResults []EpochRecord `json:"epoch_results"`
	MaskedLayers []LayerRecord `json:"masked_layers,omitempty"` // UMAP

	// Guard is the validation guard's verdict (with ID and OOD validation sets).
	Guard *GuardRecord `json:"validation_guard,omitempty"`

	// Resumed lists the continuations of an interrupted run (Checkpoints).
	Resumed []ResumeRecord `json:"resumed,omitempty"`

	// ExportCheck is the largest |logit| difference between ONNX Runtime on the written file
	// and the trained GoMLX model, on the first batch of the check set.
	ExportCheck *float64 `json:"export_check_max_abs_logit_diff,omitempty"`

	TrainSeconds float64 `json:"train_seconds"` // constraint choice and training (a resumed run: all its processes)
	Seconds      float64 `json:"seconds"`       // the whole command, wall time
}

// ModelRecord names a model file.
type ModelRecord struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// DataRecord names a data set.
type DataRecord struct {
	Name   string `json:"name"`
	Images int    `json:"images"`
}

// Seeds lists every seed the run used.
type Seeds struct {
	Scores   *uint64 `json:"scores,omitempty"`   // UMAP score initialisation (kaiming)
	Estimate *uint64 `json:"estimate,omitempty"` // the estimate's random mask
	Data     uint64  `json:"data"`               // shuffling and augmentation: PCG(data, 100+epoch); the estimate's pass PCG(data, 2)
}

// ConstraintRecord says which constraint was used and how it was chosen.
type ConstraintRecord struct {
	Value           float64  `json:"value"`
	Method          string   `json:"method"` // estimate, given or grid
	Estimate        *float64 `json:"estimate,omitempty"`
	EstimateKeep    float64  `json:"estimate_keep,omitempty"`
	EstimateSeed    uint64   `json:"estimate_seed,omitempty"`
	EstimateSeconds float64  `json:"estimate_seconds,omitempty"`
	// DenseLoss is the unmasked model's mean CE over the same augmented pass (grid only).
	DenseLoss  *float64     `json:"dense_loss,omitempty"`
	GridEpochs int          `json:"grid_epochs,omitempty"`
	GridScore  string       `json:"grid_score,omitempty"`
	IDVal      *DataRecord  `json:"id_val,omitempty"`
	OODVal     *DataRecord  `json:"ood_val,omitempty"`
	Grid       []GridRecord `json:"grid,omitempty"`
	// KeptCandidate: the grid's candidates trained the full length (GridEpochs = Epochs) and
	// the winner is the result; its epochs are EpochResults. Else the final run trained again.
	KeptCandidate bool `json:"kept_candidate,omitempty"`
}

// GridRecord is one grid candidate.
type GridRecord struct {
	Value      float64 `json:"value"`
	From       string  `json:"from"` // e.g. "0.5 x estimate"
	Loss       float64 `json:"last_epoch_loss"`
	CE         float64 `json:"last_epoch_ce"`
	FPR95      float64 `json:"fpr95"`
	AUROC      float64 `json:"auroc"`
	IDAccuracy float64 `json:"id_val_accuracy"`
	Seconds    float64 `json:"seconds"`
	Chosen     bool    `json:"chosen"`
}

// EpochRecord is one training epoch.
type EpochRecord struct {
	Epoch         int      `json:"epoch"` // 1-based
	LR            float64  `json:"lr"`
	Loss          float64  `json:"loss"`           // image-weighted mean flooded loss of the steps (train mode, augmented)
	CE            float64  `json:"ce"`             // image-weighted mean batch CE of the steps
	TrainAccuracy float64  `json:"train_accuracy"` // of the steps' batches, train mode, before each update
	Images        int      `json:"images"`
	Steps         int      `json:"steps"`
	CheckAccuracy *float64 `json:"check_accuracy,omitempty"` // eval mode, after the epoch
	CheckCE       *float64 `json:"check_ce,omitempty"`
	TrainSeconds  float64  `json:"train_seconds"`
	Seconds       float64  `json:"seconds"`
}

// LayerRecord is one masked layer of UMAP.
type LayerRecord struct {
	Name    string `json:"name"`
	Weights int    `json:"weights"`
	Pruned  int    `json:"pruned"`
}

func newRecord(m *onnxgraph.Model, train *Data, cfg *Config) *Record {
	r := &Record{
		Mode: cfg.Method.String(), Data: DataRecord{Name: train.Name, Images: train.Len()},
		Augment: cfg.Augment.String(), Epochs: cfg.Epochs, Batch: cfg.Batch, LR: cfg.LR,
		Schedule: fmt.Sprintf("cosine per epoch over %d epochs: 0.5*(1+cos(pi*e/%d))*lr", cfg.Epochs, cfg.Epochs),
		Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay, BatchNorm: "train", Backend: cfg.BackendName,
		Seeds: Seeds{Data: cfg.Seed},
	}
	if cfg.BatchNormEval {
		r.BatchNorm = "eval"
	}
	if cfg.Method == unleash.UMAP {
		keep, seed := cfg.Keep, cfg.Seed
		r.Keep, r.ScoreInit = &keep, cfg.ScoreInit.String()
		r.Seeds.Scores = &seed
	}
	if cfg.Constraint != ConstraintGiven {
		s := cfg.Seed + 1
		r.Seeds.Estimate = &s
	}
	if cfg.Check != nil {
		r.Check = &DataRecord{Name: cfg.Check.Name, Images: cfg.Check.Len()}
	}
	return r
}

// Paths returns the files a run writes for the output model out: out itself, OUT.run.json and
// OUT.preprocess.json, where OUT is out without its extension (model.onnx -> model.run.json),
// the names `oodguard eval` and `calibrate` look for.
func Paths(out string) (model, record, spec string) {
	base := strings.TrimSuffix(out, filepath.Ext(out))
	return out, base + ".run.json", base + ".preprocess.json"
}

// WriteModel writes the trained model (or, with KeptInput, the input unchanged; an input
// exported in training mode converted to inference mode) to path (atomically) and records its
// and the input's sha256.
func (r *Result) WriteModel(path, input string) error {
	in, err := os.ReadFile(input)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if r.KeptInput {
		if r.Trainer.Model().InTrainingMode() {
			if err := r.Trainer.Model().WriteInference(&buf, nil); err != nil {
				return err
			}
		} else {
			buf.Write(in)
		}
	} else if err := r.Trainer.Export(&buf); err != nil {
		return err
	}
	if err := writeFile(path, buf.Bytes()); err != nil {
		return err
	}
	r.Record.Input = ModelRecord{Path: input, SHA256: sha(in)}
	r.Record.Output = ModelRecord{Path: path, SHA256: sha(buf.Bytes())}
	return nil
}

// WriteRecord writes the run record and the preprocessing spec next to the model written by
// WriteModel.
func (r *Result) WriteRecord(out string, spec preprocess.Spec) error {
	_, recPath, specPath := Paths(out)
	r.Record.Preprocess = &spec
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(specPath, append(b, '\n')); err != nil {
		return err
	}
	if r.Record.Created.IsZero() {
		r.Record.Created = time.Now().UTC().Truncate(time.Second)
	}
	if b, err = json.MarshalIndent(r.Record, "", "  "); err != nil {
		return err
	}
	return writeFile(recPath, append(b, '\n'))
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeFile writes data to path through a temporary file in the same folder and a rename.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

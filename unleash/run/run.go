// Package run drives a whole Unleashing Mask run on an ONNX classifier, the way `oodguard
// unleash` does it: training data held in memory and augmented as the official code does
// (random crop with black padding 4, horizontal flip, reshuffled every epoch, seeded), the loss
// constraint chosen (estimated, given, or picked on an OOD validation set), UMAP or UM training
// with per-step progress, and the output files: the trained ONNX model, its run record
// (OUT.run.json) and its preprocessing spec (OUT.preprocess.json).
//
// # Choosing the constraint on a validation OOD set (ConstraintGrid)
//
// The paper picks the constraint with Tiny ImageNet as the validation OOD set; the field notes
// found that on small networks the official estimate overshoots (a random 3.5% mask hurts them
// far more than the paper's DenseNet-100), so candidates must reach near and below the dense
// model's training loss. The grid is
//
//	{f * estimate} ∪ {f * dense}, f in Factors (default 0.25, 0.5, 0.75, 1)
//
// where estimate is the official estimate (EstimateConstraint, random mask keeping 0.965) and
// dense is the same mean cross-entropy of the unmasked model (eval mode, the same augmented
// training pass). Each candidate trains a fresh copy of the model for GridEpochs epochs (the
// cosine schedule over GridEpochs, the same data seed), then scores the ID and OOD validation
// sets with the energy score (T=1) and measures FPR95 (the method's routine, ID positive).
// The candidate with the lowest FPR95 wins; ties go to the higher AUROC, then the smaller
// constraint. Every candidate's numbers go into the run record. When GridEpochs equals Epochs,
// the winning candidate is the result: it was trained exactly as the final run would be (same
// schedule, same data order), so it is kept rather than trained again, and the model written
// is the one whose validation FPR95 chose it. With fewer grid epochs, the final run trains from
// the original model with the chosen value for the full number of epochs; a short candidate
// may then rank differently from its full-length run.
//
// # Resuming
//
// With Config.Checkpoints a run writes a state file after every epoch and phase, and a run
// with Checkpoints.Resume continues from the newest one: the estimate and the grid's finished
// candidates are not redone, a candidate or the final run goes on from its last complete epoch.
// The result equals an uninterrupted run's to the bit (TestResumeBitIdentical); see
// Checkpoints.
package run

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/compute"
	"github.com/oodguard/oodguard/score"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// ConstraintMode says how the constraint is chosen.
type ConstraintMode string

const (
	ConstraintEstimate ConstraintMode = "estimate" // the official estimate (random mask keeping 0.965)
	ConstraintGiven    ConstraintMode = "given"    // a value given by the user
	ConstraintGrid     ConstraintMode = "grid"     // the best of a grid on an OOD validation set
)

// DefaultFactors are the grid's multipliers of the estimate and of the dense loss.
var DefaultFactors = []float64{0.25, 0.5, 0.75, 1}

// Config configures Run. DefaultConfig gives the official settings.
type Config struct {
	Method    unleash.Method
	Keep      float64   // UMAP: fraction of each layer kept
	ScoreInit mask.Init // UMAP: score initialisation

	Constraint   ConstraintMode
	Value        float64   // ConstraintGiven: the value
	EstimateKeep float64   // keep ratio of the estimate's random mask (0.965)
	Factors      []float64 // ConstraintGrid: multipliers (DefaultFactors when nil)
	GridEpochs   int       // ConstraintGrid: epochs per candidate; = Epochs keeps the winner
	IDVal        *Data     // ConstraintGrid: labelled ID validation set
	OODVal       *Data     // ConstraintGrid: OOD validation set

	LR                    float64
	Epochs, Batch         int
	Momentum, WeightDecay float64
	BatchNormEval         bool
	Augment               Augment

	// Seed seeds everything: the UMAP scores (Seed), the estimate's random mask (Seed+1), the
	// shuffling and augmentation of epoch e (PCG(Seed, 100+e)) and of the estimate's pass
	// (PCG(Seed, 2)).
	Seed uint64

	Backend     compute.Backend
	BackendName string // for the run record

	// Check is the set whose eval-mode accuracy and cross-entropy are measured after each
	// epoch (an ID validation set, or a slice of the training set).
	Check *Data

	// Guard, with IDVal and OODVal, measures the input and the unleashed model on them and
	// keeps the input when the unleashed one is not better (see GuardRecord); MaxAccuracyDrop
	// is the accuracy (a fraction) it may lose. DefaultConfig turns it on.
	Guard           bool
	MaxAccuracyDrop float64

	// Progress, when set, is called after every training step and at every phase change.
	Progress func(Event)

	// Checkpoints, when set, makes the run resumable (see Checkpoints).
	Checkpoints *Checkpoints
}

// DefaultConfig returns the official settings for method: keep 0.8, kaiming scores, estimated
// constraint (keep 0.965), lr 0.1 cosine over 100 epochs, batch 256, momentum 0.9, weight
// decay 1e-4, BatchNorm in train mode, random crop (padding 4) + flip.
func DefaultConfig(method unleash.Method) Config {
	o := unleash.DefaultOptions(method)
	return Config{
		Method: method, Keep: o.Keep, ScoreInit: o.ScoreInit,
		Constraint: ConstraintEstimate, EstimateKeep: unleash.DefaultEstimateKeep, GridEpochs: 1,
		LR: o.LR, Epochs: o.Epochs, Batch: 256, Momentum: o.Momentum, WeightDecay: o.WeightDecay,
		Augment: Augment{Pad: 4, Flip: true}, Seed: 1,
		Guard: true, MaxAccuracyDrop: DefaultMaxAccuracyDrop,
	}
}

// Validate reports whether the config is usable; errors name the setting.
func (c *Config) Validate() error {
	if c.Method == unleash.UMAP {
		if err := mask.CheckKeep(c.Keep); err != nil {
			return fmt.Errorf("keep: %w", err)
		}
	}
	if err := mask.CheckKeep(c.EstimateKeep); err != nil {
		return fmt.Errorf("estimate keep: %w", err)
	}
	switch c.Constraint {
	case ConstraintEstimate:
	case ConstraintGiven:
		if !(c.Value >= 0) || math.IsInf(c.Value, 0) {
			return fmt.Errorf("constraint %v must be finite and >= 0", c.Value)
		}
	case ConstraintGrid:
		if c.IDVal == nil || c.OODVal == nil {
			return errors.New("the grid constraint needs an ID and an OOD validation set")
		}
		if c.GridEpochs < 1 {
			return fmt.Errorf("grid epochs %d must be >= 1", c.GridEpochs)
		}
		for _, f := range c.Factors {
			if !(f > 0) || math.IsInf(f, 0) {
				return fmt.Errorf("grid factor %v must be finite and > 0", f)
			}
		}
	default:
		return fmt.Errorf("unknown constraint mode %q", c.Constraint)
	}
	if c.Epochs < 1 {
		return fmt.Errorf("epochs %d must be >= 1", c.Epochs)
	}
	if c.Batch < 1 {
		return fmt.Errorf("batch %d must be >= 1", c.Batch)
	}
	if !(c.MaxAccuracyDrop >= 0) || c.MaxAccuracyDrop > 1 {
		return fmt.Errorf("max accuracy drop %v must be between 0 and 1", c.MaxAccuracyDrop)
	}
	if c.Augment.Pad < 0 {
		return fmt.Errorf("padding %d must be >= 0", c.Augment.Pad)
	}
	o := c.options(0, c.Epochs)
	return o.Validate()
}

func (c *Config) options(constraint float64, epochs int) unleash.Options {
	o := unleash.DefaultOptions(c.Method)
	o.Keep, o.ScoreInit, o.Seed = c.Keep, c.ScoreInit, c.Seed
	o.Constraint, o.LR, o.Epochs = constraint, c.LR, epochs
	o.Momentum, o.WeightDecay, o.BatchNormEval, o.Backend = c.Momentum, c.WeightDecay, c.BatchNormEval, c.Backend
	return o
}

// Event is a progress report.
type Event struct {
	Phase      string // "estimate", "dense", "grid", "train"
	Candidate  int    // grid: 1-based candidate number, with Candidates
	Candidates int
	Epoch      int // 1-based, with Epochs
	Epochs     int
	Step       int // 1-based, with Steps; 0 at the start of an epoch or phase
	Steps      int
	Loss, CE   float64 // running image-weighted means over the epoch so far
	Constraint float64
	Done       *EpochRecord // set once an epoch is over
	Resumed    string       // phase "resume": the state file the run continues from
}

// Result is a finished run: the trainer (for Export) and its record. KeptInput says that the
// validation guard found the unleashed model no better than the input: WriteModel then writes
// the input unchanged.
type Result struct {
	Trainer   *unleash.Trainer
	Record    *Record
	KeptInput bool

	states *checkpointer
}

// Run runs UM or UMAP on m with the training data train.
func Run(ctx context.Context, m *onnxgraph.Model, train *Data, cfg Config) (*Result, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := train.CheckLabels(m.Classes); err != nil {
		return nil, err
	}
	if cfg.IDVal != nil {
		if err := cfg.IDVal.CheckLabels(m.Classes); err != nil {
			return nil, err
		}
	}
	if train.Len() < cfg.Batch {
		return nil, fmt.Errorf("%s has %d images, fewer than one batch of %d", train.Name, train.Len(), cfg.Batch)
	}
	rec := newRecord(m, train, &cfg)
	r := &runner{ctx: ctx, m: m, train: train, cfg: &cfg, rec: rec, ck: newCheckpointer(cfg.Checkpoints)}
	t, epochs, err := r.run()
	if err != nil {
		return nil, err
	}
	rec.EpochResults = epochs
	if cfg.Method == unleash.UMAP {
		for _, name := range t.Masked() {
			mk, err := t.Mask(name)
			if err != nil {
				return nil, err
			}
			zeros := 0
			for _, v := range mk {
				if v == 0 {
					zeros++
				}
			}
			rec.MaskedLayers = append(rec.MaskedLayers, LayerRecord{Name: name, Weights: len(mk), Pruned: zeros})
		}
	}
	rec.Steps = t.Steps()
	res := &Result{Trainer: t, Record: rec, states: r.ck}
	if cfg.Guard && cfg.IDVal != nil && cfg.OODVal != nil {
		if cfg.Progress != nil {
			cfg.Progress(Event{Phase: "guard"})
		}
		g, err := guard(ctx, m, t, &cfg)
		if err != nil {
			return nil, err
		}
		rec.Guard, res.KeptInput = g, g.KeptInput
	}
	rec.TrainSeconds = time.Since(start).Seconds()
	if r.ck != nil {
		rec.TrainSeconds = r.ck.seconds() // over every process, when resumed
	}
	return res, nil
}

// progress emits events of one training phase.
type progress struct {
	cfg              *Config
	phase            string
	cand, candidates int
	c                float64
}

func (p progress) emit(ev Event) {
	if p.cfg.Progress == nil {
		return
	}
	ev.Phase, ev.Candidate, ev.Candidates, ev.Constraint = p.phase, p.cand, p.candidates, p.c
	p.cfg.Progress(ev)
}

// trainEpoch runs epoch e (0-based) of epochs and measures the check set.
func trainEpoch(ctx context.Context, t *unleash.Trainer, train *Data, cfg *Config, e, epochs int, p progress) (*EpochRecord, error) {
	start := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 100+uint64(e)))
	steps := train.Len() / cfg.Batch
	lr := t.LR(e)
	r := &EpochRecord{Epoch: e + 1, LR: lr}
	correct := 0
	p.emit(Event{Epoch: e + 1, Epochs: epochs, Steps: steps})
	for b, err := range train.Epoch(ctx, rng, cfg.Batch, cfg.Augment) {
		if err != nil {
			return nil, err
		}
		s, err := t.Step(b.X, b.Labels, lr)
		if err != nil {
			return nil, err
		}
		n := float64(len(b.Labels))
		r.Loss += s.Loss * n
		r.CE += s.CE * n
		correct += s.Correct
		r.Images += len(b.Labels)
		r.Steps++
		p.emit(Event{Epoch: e + 1, Epochs: epochs, Step: r.Steps, Steps: steps,
			Loss: r.Loss / float64(r.Images), CE: r.CE / float64(r.Images)})
	}
	r.Loss /= float64(r.Images)
	r.CE /= float64(r.Images)
	r.TrainAccuracy = float64(correct) / float64(r.Images)
	r.TrainSeconds = time.Since(start).Seconds()
	if cfg.Check != nil {
		acc, ce, err := evaluate(t, cfg.Check, cfg.Batch)
		if err != nil {
			return nil, err
		}
		r.CheckAccuracy, r.CheckCE = &acc, &ce
	}
	r.Seconds = time.Since(start).Seconds()
	p.emit(Event{Epoch: e + 1, Epochs: epochs, Step: r.Steps, Steps: steps, Loss: r.Loss, CE: r.CE, Done: r})
	return r, nil
}

// logits returns the eval-mode logits of every image of d, [n,K] flat.
func logits(t *unleash.Trainer, d *Data, batch int) ([]float32, int, error) {
	var out []float32
	k := 0
	for b, err := range d.Batches(batch) {
		if err != nil {
			return nil, 0, err
		}
		z, err := t.Logits(b.X)
		if err != nil {
			return nil, 0, err
		}
		k = len(z) / batch
		out = append(out, z[:len(b.Labels)*k]...)
	}
	return out, k, nil
}

// evaluate returns the top-1 accuracy and mean cross-entropy of t on d (eval mode).
func evaluate(t *unleash.Trainer, d *Data, batch int) (acc, ce float64, err error) {
	z, k, err := logits(t, d, batch)
	if err != nil {
		return 0, 0, err
	}
	right := 0
	for i, y := range d.Labels {
		row := z[i*k : (i+1)*k]
		if score.Argmax(row) == y {
			right++
		}
		ce += crossEntropy(row, y)
	}
	n := float64(d.Len())
	return float64(right) / n, ce / n, nil
}

func crossEntropy(z []float32, y int) float64 {
	top := float64(z[score.Argmax(z)])
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - top)
	}
	return math.Log(s) + top - float64(z[y])
}

// runner runs the phases of a run (the constraint's choice, the training) from where a state
// file left them, or from the start.
type runner struct {
	ctx   context.Context
	m     *onnxgraph.Model
	train *Data
	cfg   *Config
	rec   *Record
	ck    *checkpointer
	st    *runState
	file  *unleash.StateFile // the state file resumed from, or nil
}

// trainer returns a fresh trainer with constraint c over epochs epochs, restored from the state
// stored under key when resuming with one.
func (r *runner) trainer(c float64, epochs int, key string) (*unleash.Trainer, error) {
	t, err := unleash.New(r.m, r.cfg.options(c, epochs))
	if err != nil {
		return nil, err
	}
	if r.file == nil {
		return t, nil
	}
	if s := r.file.Trainer(key); s != nil {
		if err := t.Restore(s); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
	}
	return t, nil
}

// run returns the trained model and its epochs.
func (r *runner) run() (*unleash.Trainer, []EpochRecord, error) {
	cfg := r.cfg
	input := ""
	if cfg.Checkpoints != nil {
		input = cfg.Checkpoints.Input
	}
	settings := runSettings(cfg, r.train, input)
	st, f, path, err := r.ck.open(cfg.Checkpoints != nil && cfg.Checkpoints.Resume, settings)
	if err != nil {
		return nil, nil, err
	}
	if st == nil {
		st = &runState{Version: stateVersion, Settings: settings, Best: -1}
	} else {
		r.rec.Resumed = append(r.rec.Resumed, ResumeRecord{State: filepath.Base(path), Phase: st.Phase, At: time.Now().UTC().Truncate(time.Second)})
		if cfg.Progress != nil {
			cfg.Progress(Event{Phase: "resume", Resumed: filepath.Base(path)})
		}
	}
	r.st, r.file = st, f
	if st.Phase == phaseStart {
		if err := r.chooseStart(); err != nil {
			return nil, nil, err
		}
	}
	var t *unleash.Trainer
	if st.Phase == phaseGrid {
		if t, err = r.grid(); err != nil {
			return nil, nil, err
		}
	}
	r.rec.Constraint = st.Constraint
	// Resumed runs carry the earlier records; a fresh copy keeps the record's from aliasing them.
	r.rec.Constraint.Grid = slices.Clone(st.Constraint.Grid)
	switch st.Phase {
	case phaseTrained:
		if t == nil {
			if t, err = r.trainer(st.Constraint.Value, cfg.Epochs, keyCurrent); err != nil {
				return nil, nil, err
			}
		}
		return t, st.Epochs, nil
	case phaseTrain:
		if t, err = r.trainer(st.Constraint.Value, cfg.Epochs, keyCurrent); err != nil {
			return nil, nil, err
		}
		ep := progress{cfg: cfg, phase: "train", c: st.Constraint.Value}
		for e := len(st.Epochs); e < cfg.Epochs; e++ {
			rec, err := trainEpoch(r.ctx, t, r.train, cfg, e, cfg.Epochs, ep)
			if err != nil {
				return nil, nil, err
			}
			st.Epochs = append(st.Epochs, *rec)
			if err := r.ck.save(st, t, nil); err != nil {
				return nil, nil, err
			}
		}
		return t, st.Epochs, nil
	}
	return nil, nil, fmt.Errorf("run: phase %q after the constraint's choice", st.Phase)
}

// chooseStart starts the constraint's choice: the value given, the estimate, or the estimate
// and the dense loss the grid is made of.
func (r *runner) chooseStart() error {
	cfg, st := r.cfg, r.st
	cr := &st.Constraint
	cr.Method = string(cfg.Constraint)
	if cfg.Constraint == ConstraintGiven {
		cr.Value, st.Phase = cfg.Value, phaseTrain
		return nil
	}
	cr.EstimateKeep, cr.EstimateSeed = cfg.EstimateKeep, cfg.Seed+1
	if cfg.Progress != nil {
		cfg.Progress(Event{Phase: "estimate"})
	}
	start := time.Now()
	est, err := meanCE(r.ctx, r.m, r.train, cfg, cfg.EstimateKeep)
	if err != nil {
		return fmt.Errorf("estimate the constraint: %w", err)
	}
	cr.Estimate, cr.EstimateSeconds = &est, time.Since(start).Seconds()
	if cfg.Constraint == ConstraintEstimate {
		cr.Value, st.Phase = est, phaseTrain
		return r.ck.save(st, nil, nil)
	}
	if cfg.Progress != nil {
		cfg.Progress(Event{Phase: "dense"})
	}
	dense, err := meanCE(r.ctx, r.m, r.train, cfg, 1)
	if err != nil {
		return fmt.Errorf("dense training loss: %w", err)
	}
	cr.DenseLoss = &dense
	cr.GridEpochs, cr.GridScore = cfg.GridEpochs, score.Spec{Kind: score.KindEnergy, Temperature: 1}.String()
	cr.IDVal, cr.OODVal = &DataRecord{Name: cfg.IDVal.Name, Images: cfg.IDVal.Len()}, &DataRecord{Name: cfg.OODVal.Name, Images: cfg.OODVal.Len()}
	st.Phase, st.Best = phaseGrid, -1
	return r.ck.save(st, nil, nil)
}

// grid trains and measures the grid's candidates from st.Candidate on and chooses the
// constraint. With GridEpochs = Epochs it returns the winner, trained (phase trained); else
// nil (phase train).
func (r *runner) grid() (*unleash.Trainer, error) {
	cfg, st := r.cfg, r.st
	cr := &st.Constraint
	factors := cfg.Factors
	if len(factors) == 0 {
		factors = DefaultFactors
	}
	cands := gridCandidates(*cr.Estimate, *cr.DenseLoss, factors)
	if st.Candidate > len(cands) {
		return nil, fmt.Errorf("resume: %w: %d grid candidates done of %d", unleash.ErrStateCorrupt, st.Candidate, len(cands))
	}
	keep := cfg.GridEpochs == cfg.Epochs
	var kept *unleash.Trainer
	if keep && st.Best >= 0 {
		var err error
		if kept, err = r.trainer(cands[st.Best].value, cfg.GridEpochs, keyKept); err != nil {
			return nil, err
		}
	}
	for i := st.Candidate; i < len(cands); i++ {
		cand := cands[i]
		t, err := r.trainer(cand.value, cfg.GridEpochs, keyCurrent)
		if err != nil {
			return nil, err
		}
		if len(st.Epochs) == 0 && r.file != nil && r.file.Trainer(keyCurrent) != nil {
			return nil, fmt.Errorf("resume: %w: a trainer state with no epochs", unleash.ErrStateCorrupt)
		}
		g, err := r.candidate(t, cand, i+1, len(cands), kept)
		if err != nil {
			return nil, fmt.Errorf("grid candidate %s = %.4g: %w", cand.from, cand.value, err)
		}
		r.file = nil // restored: later trainers start fresh
		cr.Grid = append(cr.Grid, *g)
		if st.Best < 0 || g.FPR95 < cr.Grid[st.Best].FPR95 || (g.FPR95 == cr.Grid[st.Best].FPR95 && g.AUROC > cr.Grid[st.Best].AUROC) {
			st.Best = i
			if keep {
				kept, st.KeptEpochs = t, st.Epochs // the earlier best is dropped: one trained copy at a time
			}
		}
		st.Candidate, st.Epochs = i+1, nil
		if err := r.ck.save(st, nil, kept); err != nil {
			return nil, err
		}
	}
	cr.Grid[st.Best].Chosen = true
	cr.Value = cr.Grid[st.Best].Value
	if !keep {
		st.Phase = phaseTrain
		return nil, r.ck.save(st, nil, nil)
	}
	cr.KeptCandidate = true
	st.Phase, st.Epochs, st.KeptEpochs = phaseTrained, st.KeptEpochs, nil
	return kept, r.ck.save(st, kept, nil)
}

// candidate trains t (restored with len(st.Epochs) epochs done) to GridEpochs epochs, saving the
// state after each, and measures energy-score FPR95 of the ID vs the OOD validation set.
func (r *runner) candidate(t *unleash.Trainer, cand candidate, i, n int, kept *unleash.Trainer) (*GridRecord, error) {
	cfg, st := r.cfg, r.st
	start := time.Now()
	p := progress{cfg: cfg, phase: "grid", cand: i, candidates: n, c: cand.value}
	g := &GridRecord{Value: cand.value, From: cand.from}
	ecfg := &Config{Seed: cfg.Seed, Batch: cfg.Batch, Augment: cfg.Augment}
	if cfg.GridEpochs == cfg.Epochs {
		// The candidate may be kept as the result: measure the check set as the final run would.
		ecfg.Check = cfg.Check
	}
	for e := len(st.Epochs); e < cfg.GridEpochs; e++ {
		rec, err := trainEpoch(r.ctx, t, r.train, ecfg, e, cfg.GridEpochs, p)
		if err != nil {
			return nil, err
		}
		st.Epochs = append(st.Epochs, *rec)
		if err := r.ck.save(st, t, kept); err != nil {
			return nil, err
		}
	}
	last := st.Epochs[len(st.Epochs)-1]
	g.Loss, g.CE = last.Loss, last.CE
	v, err := validate(t, cfg)
	if err != nil {
		return nil, err
	}
	g.FPR95, g.AUROC, g.IDAccuracy = v.FPR95, v.AUROC, v.Accuracy
	g.Seconds = time.Since(start).Seconds()
	return g, nil
}

// meanCE is the official estimate with a random mask keeping keep (1: the dense model), on one
// augmented pass over the training set in eval mode.
func meanCE(ctx context.Context, m *onnxgraph.Model, train *Data, cfg *Config, keep float64) (float64, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 2))
	batches := train.epoch(ctx, rng, cfg.Batch, cfg.Augment, true)
	return unleash.EstimateConstraint(m, batches, unleash.EstimateOptions{Keep: keep, Seed: cfg.Seed + 1, Backend: cfg.Backend})
}

type candidate struct {
	value float64
	from  string
}

// gridCandidates returns f*estimate and f*dense for every factor, without duplicates
// (values within 1e-9 relative), in ascending order.
func gridCandidates(est, dense float64, factors []float64) []candidate {
	var out []candidate
	add := func(v float64, from string) {
		if !(v > 0) {
			return
		}
		for _, c := range out {
			if math.Abs(c.value-v) <= 1e-9*v {
				return
			}
		}
		out = append(out, candidate{v, from})
	}
	for _, f := range factors {
		add(f*est, fmt.Sprintf("%g x estimate", f))
	}
	for _, f := range factors {
		add(f*dense, fmt.Sprintf("%g x dense loss", f))
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	return out
}

func energies(z []float32, k int) ([]float64, error) {
	out := make([]float64, len(z)/k)
	if err := score.Batch(func(l []float32) (float64, error) { return score.Energy(l, 1) }, z, k, out); err != nil {
		return nil, err
	}
	return out, nil
}

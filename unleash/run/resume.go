package run

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/oodguard/oodguard/unleash"
)

// Checkpoints makes a run resumable. After every training epoch (the grid candidates' too) and
// after each phase (the estimate, each finished grid candidate) Run writes the state file
// Base.resume-NNNN.state (unleash.WriteStateFile, atomically): the trainer's whole state
// (trained values, SGD momentum, BatchNorm running statistics, step count), in grid runs that
// of the best candidate so far when it may be the result, and the run's progress (runState):
// the constraint record so far, the phase, the finished epochs. Only the two newest are kept.
// The data order needs nothing more: epoch e's shuffle and augmentation come from
// PCG(Seed, 100+e). The output model is still written only at the end (by the caller), after
// the validation guard; Result.RemoveStates then removes the state files.
type Checkpoints struct {
	// Base is the path prefix of the state files: the output model's path without its extension.
	Base string
	// Resume continues from the newest state file when there is one (a fresh run otherwise).
	// Without Resume, state files of Base are an error (ErrUnfinished).
	Resume bool
	// Input identifies the input model (e.g. its sha256): a resumed run must have the same.
	Input string
}

// ErrUnfinished is returned by a run that is not resuming when state files of an unfinished run
// with the same output are there.
var ErrUnfinished = errors.New("state files of an unfinished run are there")

// ErrSettings is returned when a run would resume one with other settings.
var ErrSettings = errors.New("the run to resume has other settings")

// ResumeRecord is one continuation of the run, in the run record.
type ResumeRecord struct {
	State string    `json:"state"` // the state file's name
	Phase string    `json:"phase"` // what came next: grid, train or trained
	At    time.Time `json:"at"`
}

const (
	stateSuffix  = ".state"
	stateVersion = 1
	keepStates   = 2
	// trainer keys in the state file
	keyCurrent = "current" // the trainer being trained (grid candidate or final run), or the result
	keyKept    = "kept"    // grid with GridEpochs = Epochs: the best candidate so far
)

// Phases of a run, in order.
const (
	phaseStart   = ""        // nothing done
	phaseGrid    = "grid"    // the grid's candidates from Candidate on
	phaseTrain   = "train"   // the final run, from epoch len(Epochs)+1
	phaseTrained = "trained" // the result is the trainer stored as current, its epochs Epochs
)

// runState is the progress a state file stores as its metadata.
type runState struct {
	Version    int               `json:"version"`
	Seq        int               `json:"seq"`
	Settings   map[string]string `json:"settings"`
	Constraint ConstraintRecord  `json:"constraint"`
	Phase      string            `json:"phase"`
	// Grid: the candidates finished (their records are in Constraint.Grid), the index of the
	// best of them (-1: none), and with GridEpochs = Epochs the best one's epochs.
	Candidate  int           `json:"candidate"`
	Best       int           `json:"best"`
	KeptEpochs []EpochRecord `json:"kept_epochs,omitempty"`
	// Epochs are the finished epochs of the trainer stored as current.
	Epochs []EpochRecord `json:"epochs,omitempty"`
	// Seconds is the wall time spent on the run (the constraint's choice and training) up to
	// this state, over every process that worked on it.
	Seconds float64 `json:"seconds"`
}

// checkpointer writes and reads the state files of a run; a nil one does nothing.
type checkpointer struct {
	dir, prefix string
	start       time.Time // when this process started on the run
	before      float64   // the seconds of the processes before it
}

func newCheckpointer(c *Checkpoints) *checkpointer {
	if c == nil {
		return nil
	}
	return &checkpointer{dir: filepath.Dir(c.Base), prefix: filepath.Base(c.Base) + ".resume-", start: time.Now()}
}

// save writes st with the trainers (nil ones left out) and removes older state files.
func (c *checkpointer) save(st *runState, current, kept *unleash.Trainer) error {
	if c == nil {
		return nil
	}
	st.Seq++
	st.Seconds = c.seconds()
	meta, err := json.Marshal(st)
	if err != nil {
		return err
	}
	f := &unleash.StateFile{Meta: meta}
	for _, t := range []struct {
		key string
		tr  *unleash.Trainer
	}{{keyCurrent, current}, {keyKept, kept}} {
		if t.tr == nil {
			continue
		}
		s, err := t.tr.State()
		if err != nil {
			return err
		}
		f.Trainers = append(f.Trainers, unleash.NamedState{Key: t.key, TrainerState: *s})
	}
	path := filepath.Join(c.dir, fmt.Sprintf("%s%04d%s", c.prefix, st.Seq, stateSuffix))
	if err := unleash.WriteStateFile(path, f); err != nil {
		return fmt.Errorf("save the run's state: %w", err)
	}
	return unleash.RemoveNumberedFiles(c.dir, c.prefix, stateSuffix, st.Seq-keepStates)
}

// open returns the state to continue from (nil: start afresh) and the state file it was read
// from, checking that it was written with these settings; without resume, state files are an
// error.
func (c *checkpointer) open(resume bool, settings map[string]string) (*runState, *unleash.StateFile, string, error) {
	if c == nil {
		return nil, nil, "", nil
	}
	path, hint, err := unleash.NewestState(c.dir, c.prefix, stateSuffix)
	if err != nil || path == "" {
		return nil, nil, "", err
	}
	if !resume {
		return nil, nil, "", fmt.Errorf("%w (%s): resume the run (-resume) or remove them", ErrUnfinished, path)
	}
	f, err := unleash.ReadStateFile(path)
	if err != nil {
		return nil, nil, "", fmt.Errorf("resume: %w%s", err, hint)
	}
	st := &runState{}
	if err := json.Unmarshal(f.Meta, st); err != nil {
		return nil, nil, "", fmt.Errorf("resume: state file %s: %w: no run metadata%s", path, unleash.ErrStateCorrupt, hint)
	}
	if st.Version != stateVersion {
		return nil, nil, "", fmt.Errorf("resume: state file %s has version %d, this oodguard reads %d", path, st.Version, stateVersion)
	}
	if d := unleash.SettingsDiff(st.Settings, settings); len(d) > 0 {
		return nil, nil, "", fmt.Errorf("resume from %s: %w: %s", path, ErrSettings, strings.Join(d, "; "))
	}
	bad := func(what string) error {
		return fmt.Errorf("resume: state file %s: %w: %s", path, unleash.ErrStateCorrupt, what)
	}
	switch st.Phase {
	case phaseGrid:
		if st.Candidate < 0 || st.Candidate != len(st.Constraint.Grid) || st.Best >= st.Candidate || st.Best < -1 || (st.Candidate > 0 && st.Best < 0) ||
			st.Constraint.Estimate == nil || st.Constraint.DenseLoss == nil {
			return nil, nil, "", bad("inconsistent grid progress")
		}
		if st.Best >= 0 && len(st.KeptEpochs) > 0 && f.Trainer(keyKept) == nil {
			return nil, nil, "", bad("no state of the best candidate")
		}
	case phaseTrain:
	case phaseTrained:
		if f.Trainer(keyCurrent) == nil {
			return nil, nil, "", bad("trained, but no trainer state")
		}
	default:
		return nil, nil, "", bad(fmt.Sprintf("unknown phase %q", st.Phase))
	}
	if len(st.Epochs) > 0 && f.Trainer(keyCurrent) == nil {
		return nil, nil, "", bad("epochs done but no trainer state")
	}
	if len(st.Epochs) > max(settingsInt(settings, "epochs"), settingsInt(settings, "grid epochs")) {
		return nil, nil, "", bad(fmt.Sprintf("%d epochs done", len(st.Epochs)))
	}
	c.before = st.Seconds
	return st, f, path, nil
}

// seconds returns the wall time spent on the run so far, over every process.
func (c *checkpointer) seconds() float64 {
	return c.before + time.Since(c.start).Seconds()
}

func settingsInt(m map[string]string, key string) int {
	n, _ := strconv.Atoi(m[key])
	return n
}

// removeAll removes every state file of the run.
func (c *checkpointer) removeAll() error {
	if c == nil {
		return nil
	}
	return unleash.RemoveNumberedFiles(c.dir, c.prefix, stateSuffix, math.MaxInt)
}

// RemoveStates removes the run's state files: call it once the output is written.
func (r *Result) RemoveStates() error { return r.states.removeAll() }

// runSettings are the settings a resumed run must share with the one it continues: whatever
// changes what the next epoch computes or what the record means. The validation guard's
// settings may change.
func runSettings(cfg *Config, train *Data, input string) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	m := map[string]string{
		"mode":          cfg.Method.String(),
		"constraint":    string(cfg.Constraint),
		"lr":            f(cfg.LR),
		"epochs":        strconv.Itoa(cfg.Epochs),
		"batch":         strconv.Itoa(cfg.Batch),
		"momentum":      f(cfg.Momentum),
		"weight decay":  f(cfg.WeightDecay),
		"bn-eval":       strconv.FormatBool(cfg.BatchNormEval),
		"augmentation":  cfg.Augment.String(),
		"seed":          strconv.FormatUint(cfg.Seed, 10),
		"backend":       cfg.BackendName,
		"input model":   input,
		"training data": dataDigest(train),
		"check data":    dataDigest(cfg.Check),
	}
	if cfg.Method == unleash.UMAP {
		m["keep"], m["score init"] = f(cfg.Keep), cfg.ScoreInit.String()
	}
	switch cfg.Constraint {
	case ConstraintGiven:
		m["constraint value"] = f(cfg.Value)
	case ConstraintEstimate:
		m["estimate keep"] = f(cfg.EstimateKeep)
	case ConstraintGrid:
		m["estimate keep"] = f(cfg.EstimateKeep)
		factors := cfg.Factors
		if len(factors) == 0 {
			factors = DefaultFactors
		}
		var s []string
		for _, v := range factors {
			s = append(s, f(v))
		}
		m["grid factors"] = strings.Join(s, ",")
		m["grid epochs"] = strconv.Itoa(cfg.GridEpochs)
		m["id validation"] = dataDigest(cfg.IDVal)
		m["ood validation"] = dataDigest(cfg.OODVal)
	}
	return m
}

// dataDigest names a data set by its size and the sha256 of its images and labels.
func dataDigest(d *Data) string {
	if d == nil {
		return "none"
	}
	h := sha256.New()
	b := make([]byte, 0, 1<<16)
	for i, v := range d.X {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		if len(b) == cap(b) || i == len(d.X)-1 {
			h.Write(b)
			b = b[:0]
		}
	}
	for _, l := range d.Labels {
		b = binary.LittleEndian.AppendUint64(b, uint64(int64(l)))
	}
	h.Write(b)
	return fmt.Sprintf("%d images %dx%dx%d, sha256 %s", d.Len(), d.C, d.H, d.W, hex.EncodeToString(h.Sum(nil))[:16])
}

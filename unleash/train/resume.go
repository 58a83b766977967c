package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
)

// After every epoch Run writes OUT/epoch-NNN.state (unleash.WriteStateFile, atomically): the
// trainer's whole state (every trained parameter, the BatchNorm running statistics, the SGD
// momentum buffers, the step count) and, as metadata, trainState: the epochs done, the settings
// the run must keep, and the log so far. The data order needs nothing more: epoch e's shuffle
// and augmentation come from the PCG stream (seed, e), so a resumed run draws what the
// uninterrupted one would have. Only the two newest state files are kept.

const (
	statePrefix  = "epoch-"
	stateSuffix  = ".state"
	stateVersion = 1
	stateKey     = "model"
	keepStates   = 2
)

// trainState is the metadata of a state file.
type trainState struct {
	Version  int               `json:"version"`
	Epoch    int               `json:"epoch"` // epochs complete
	Settings map[string]string `json:"settings"`
	Log      *Log              `json:"log"`
}

// resumePoint is a state file read back.
type resumePoint struct {
	path    string
	state   *trainState
	trainer *unleash.TrainerState
}

func statePath(dir string, epoch int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%03d%s", statePrefix, epoch, stateSuffix))
}

// writeState writes the state of the epoch st.Epoch and removes all but the newest keepStates.
func writeState(dir string, tr *unleash.Trainer, st *trainState) error {
	ts, err := tr.State()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	meta, err := json.Marshal(st)
	if err != nil {
		return err
	}
	f := &unleash.StateFile{Meta: meta, Trainers: []unleash.NamedState{{Key: stateKey, TrainerState: *ts}}}
	if err := unleash.WriteStateFile(statePath(dir, st.Epoch), f); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := unleash.RemoveNumberedFiles(dir, statePrefix, stateSuffix, st.Epoch-keepStates); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// findResume reads the newest state file of dir and checks that it continues a run with these
// settings; nil when dir holds no state file.
func findResume(dir string, settings map[string]string) (*resumePoint, error) {
	path, hint, err := unleash.NewestState(dir, statePrefix, stateSuffix)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if path == "" {
		return nil, nil
	}
	f, err := unleash.ReadStateFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: resume: %w%s", err, hint)
	}
	st := &trainState{}
	if err := json.Unmarshal(f.Meta, st); err != nil || st.Log == nil {
		return nil, fmt.Errorf("train: resume: state file %s: %w: no run metadata%s", path, unleash.ErrStateCorrupt, hint)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("train: resume: state file %s has version %d, this oodguard reads %d", path, st.Version, stateVersion)
	}
	if d := unleash.SettingsDiff(st.Settings, settings); len(d) > 0 {
		return nil, fmt.Errorf("train: resume %s: %w: %s", dir, ErrSettings, strings.Join(d, "; "))
	}
	if st.Epoch < 1 || len(st.Log.Runs) != st.Epoch {
		return nil, fmt.Errorf("train: resume: state file %s: %w: epoch %d with %d epochs logged", path, unleash.ErrStateCorrupt, st.Epoch, len(st.Log.Runs))
	}
	ts := f.Trainer(stateKey)
	if ts == nil {
		return nil, fmt.Errorf("train: resume: state file %s: %w: no trainer state", path, unleash.ErrStateCorrupt)
	}
	return &resumePoint{path: path, state: st, trainer: ts}, nil
}

// runSettings are the settings a resumed run must share with the one it continues: everything
// that changes what the next epoch computes or what the log means.
func runSettings(cfg Config, ac arch.Config, model []byte, set *Images, val Validation) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	backend, _, _ := strings.Cut(cfg.Backend, ":")
	spec, _ := json.Marshal(cfg.Spec)
	m := map[string]string{
		"arch":          ac.String(),
		"initial model": digest(model),
		"epochs":        strconv.Itoa(cfg.Epochs),
		"batch":         strconv.Itoa(cfg.Batch),
		"lr":            f(cfg.LR),
		"momentum":      f(cfg.Momentum),
		"weight decay":  f(cfg.WeightDecay),
		"crop":          strconv.Itoa(cfg.Augment.Crop),
		"flip":          strconv.FormatBool(cfg.Augment.Flip),
		"seed":          strconv.FormatUint(cfg.Seed, 10),
		"backend":       backend,
		"preprocess":    string(spec),
		"training data": fmt.Sprintf("%d images %v, sha256 %s", set.Len(), set.Shape, setDigest(set)),
		"temperature":   f(val.Temperature),
		"val limit":     strconv.Itoa(val.Limit),
	}
	if val.ID != nil {
		m["id validation"] = val.ID.Name
	}
	if val.OOD != nil {
		m["ood validation"] = val.OOD.Name
	}
	for k, v := range cfg.Settings {
		m[k] = v
	}
	return m
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func setDigest(s *Images) string {
	h := sha256.New()
	h.Write(s.Pix)
	b := make([]byte, 0, 4*len(s.Labels))
	for _, l := range s.Labels {
		b = append(b, byte(l), byte(l>>8), byte(l>>16), byte(l>>24))
	}
	h.Write(b)
	h.Write([]byte(strings.Join(s.Classes, "\x00")))
	return hex.EncodeToString(h.Sum(nil))
}

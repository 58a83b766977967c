package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/firmware/ota"
	ort "github.com/oodguard/oodguard/runtime"
	"go.uber.org/zap"
)

// ErrRestart is returned by Run after an update was installed: the daemon exits with
// ota.ExitRestart and systemd starts it again on the new model, on trial.
//
// Models are swapped by a restart, not in process: firmware/ota measured that creating and
// destroying ONNX Runtime sessions grows resident memory (glibc heap fragmentation), and a
// restart makes a crash while loading the new model one more counted attempt of the trial.
var ErrRestart = errors.New("model update installed; restart to run it")

// UpdateCommand is the JSON an operator publishes on <prefix>/<device>/ota/update.
type UpdateCommand struct {
	URL            string `json:"url"`             // where the bundle is (HTTP or HTTPS; Range requests resume downloads)
	SHA256         string `json:"sha256"`          // sha256 of the bundle file, lowercase hex
	Version        string `json:"version"`         // informational; the signed manifest's version is what counts
	AllowDowngrade bool   `json:"allow_downgrade"` // accept an older bundle, if the device's ota.allow_downgrade allows it
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseUpdateCommand decodes and checks an update command.
func ParseUpdateCommand(b []byte) (UpdateCommand, error) {
	var c UpdateCommand
	if len(b) > 64<<10 {
		return c, fmt.Errorf("update command: %d bytes is too long", len(b))
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("update command: %w", err)
	}
	if c.URL == "" {
		return c, errors.New("update command: no url")
	}
	if !sha256Hex.MatchString(c.SHA256) {
		return c, fmt.Errorf("update command: sha256 %q is not 64 lowercase hex digits", c.SHA256)
	}
	return c, nil
}

// openOTA opens the slot store, recovers it, and activates the current slot: the check loads
// the slot's model and calibration and runs the bundle's canaries, and on success the daemon
// runs that model. With no slot installed it falls back to the configured factory model.
func (d *Daemon) openOTA(ctx context.Context) error {
	c := d.cfg.OTA
	kr, err := bundle.LoadKeyring(c.Keyring)
	if err != nil {
		return fmt.Errorf("ota.keyring: %w", err)
	}
	// Bundles name the oldest daemon and ONNX Runtime that may run them. A development build
	// ("dev", not a version) skips the daemon check.
	daemonVersion, _ := bundle.ParseVersion(d.version0)
	ortVersion, err := bundle.ParseVersion(ort.Version())
	if err != nil {
		return fmt.Errorf("ONNX Runtime version %q: %w", ort.Version(), err)
	}
	d.store, err = ota.Open(ota.Config{
		Dir: c.Dir, Keyring: kr, DeviceClass: c.DeviceClass, MaxAttempts: c.MaxAttempts,
		Daemon: daemonVersion, ORT: ortVersion,
		Downloader: &ota.Downloader{Client: d.urlPolicy().Client(), MaxSize: c.MaxBundleBytes, Timeout: c.DownloadTimeout},
		OnState:    d.publishOTAState, Logger: d.log.Named("ota"),
	})
	if err != nil {
		return err
	}
	if _, err := d.store.Recover(); err != nil {
		return err
	}
	slot, err := d.store.Activate(ctx, func(ctx context.Context, s ota.Slot) error {
		clf, cal, err := d.loadModel(s.ModelPath(), s.CalibrationPath())
		if err != nil {
			return err
		}
		if err := checkSlot(clf, cal, s); err != nil {
			clf.Close()
			return err
		}
		d.clf, d.cal = clf, cal
		return nil
	})
	switch {
	case errors.Is(err, ota.ErrNoSlot) && d.cfg.Model.Path != "":
		d.log.Info("no model installed by an update yet; running the factory model", zap.String("model", d.cfg.Model.Path))
		d.clf, d.cal, err = d.loadModel(d.cfg.Model.Path, d.cfg.Model.Calibration)
		d.version = d.cfg.Model.Version
		return err
	case err != nil:
		return err
	}
	d.version = slot.Version().String()
	d.log.Info("running the model of slot", zap.String("slot", slot.Name), zap.String("phase", string(d.store.State().Phase)))
	return nil
}

// checkSlot holds the model against its manifest: same preprocessing and score as the
// calibration, an input of the right shape, and every canary scoring as expected.
func checkSlot(clf *ort.Classifier, cal *calibrate.Calibration, s ota.Slot) error {
	m := s.Manifest
	if err := clf.CheckInput(m.Preprocess.Channels, m.Preprocess.Height, m.Preprocess.Width); err != nil {
		return fmt.Errorf("manifest preprocessing: %w", err)
	}
	if !m.Score.Equal(cal.Score) || m.Threshold != cal.Threshold {
		return fmt.Errorf("manifest score %s threshold %v disagree with the calibration's %s %v", m.Score, m.Threshold, cal.Score, cal.Threshold)
	}
	if len(m.Canaries) == 0 {
		return nil
	}
	f, err := m.Score.SampleFunc()
	if err != nil {
		return err
	}
	if err := m.Score.CheckModel(clf.Shape().Score); err != nil {
		return err
	}
	r, err := clf.NewRunner(1)
	if err != nil {
		return err
	}
	defer r.Close()
	for i, c := range m.Canaries {
		x, err := s.CanaryInput(i)
		if err != nil {
			return err
		}
		if err := r.SetInput(x); err != nil {
			return fmt.Errorf("canary %s: %w", c.Name, err)
		}
		z, err := r.Run()
		if err != nil {
			return fmt.Errorf("canary %s: %w", c.Name, err)
		}
		var out float32
		if outs := r.Scores(); outs != nil {
			out = outs[0]
		}
		got, err := f(z, out)
		if err != nil {
			return fmt.Errorf("canary %s: %w", c.Name, err)
		}
		if math.Abs(got-c.Expected) > c.Tolerance {
			return fmt.Errorf("canary %s scores %.6g, the manifest expects %.6g ± %g", c.Name, got, c.Expected, c.Tolerance)
		}
	}
	return nil
}

// publishOTAState queues the update state, with the last command's result, retained, on
// <prefix>/<device>/ota/state.
func (d *Daemon) publishOTAState(s ota.State) {
	msg := stateMessage{State: s}
	if d.cmds != nil {
		msg.Command = d.cmds.Last()
	}
	b, err := json.Marshal(msg)
	if err == nil {
		err = d.pub.Queue(d.pub.Topics().OTAState(), b, true)
	}
	if err != nil {
		d.log.Warn("update state not queued", zap.Error(err))
	}
}

// publishCommandResult publishes the current state with the last command's result.
func (d *Daemon) publishCommandResult() {
	if d.store != nil {
		d.publishOTAState(d.store.State())
	}
}

// updates handles update commands one at a time until ctx ends. A successful install stops
// the daemon with ErrRestart.
func (d *Daemon) updates(ctx context.Context, stop context.CancelCauseFunc) {
	for {
		cmd, cctx, ok := d.cmds.next(ctx)
		if !ok {
			return
		}
		if d.update(cctx, cmd) {
			d.cmds.done()
			stop(ErrRestart)
			return
		}
		d.cmds.done()
	}
}

// update handles one command and reports whether a bundle was installed.
func (d *Daemon) update(ctx context.Context, cmd UpdateCommand) bool {
	c := d.cfg.OTA
	if e, ok := d.cmds.handled(cmd.SHA256); ok {
		d.cmds.result(cmd, CommandIgnored, "this bundle was handled before ("+e.Status+" at "+e.Time.Format(time.RFC3339)+")")
		return false
	}
	if err := d.urlPolicy().CheckURL(cmd.URL); err != nil {
		d.cmds.result(cmd, CommandRefused, err.Error())
		d.cmds.markHandled(cmd.SHA256, CommandRefused, err.Error())
		return false
	}
	opts := ota.InstallOptions{AllowDowngrade: c.AllowDowngrade && cmd.AllowDowngrade}
	if cmd.AllowDowngrade && !c.AllowDowngrade {
		d.log.Warn("the update command asks to allow a downgrade; the device's policy (ota.allow_downgrade: false) does not")
	}
	d.cmds.result(cmd, CommandRunning, "")
	slot, err := d.store.Update(ctx, cmd.URL, cmd.SHA256, opts)
	switch {
	case err == nil:
		d.cmds.markHandled(cmd.SHA256, CommandInstalled, "slot "+slot.Name)
		d.cmds.result(cmd, CommandInstalled, "slot "+slot.Name+"; restarting to run it on trial")
		return true
	case errors.Is(context.Cause(ctx), errSuperseded):
		d.cmds.result(cmd, CommandSuperseded, "a newer update command arrived; this download was stopped (it resumes if asked again)")
	case errors.Is(err, bundle.ErrDowngrade) && cmd.AllowDowngrade && !c.AllowDowngrade:
		reason := err.Error() + " (the command allows a downgrade; the device's ota.allow_downgrade: false does not)"
		d.cmds.markHandled(cmd.SHA256, CommandRefused, reason)
		d.cmds.result(cmd, CommandRefused, reason)
	case errors.Is(err, ota.ErrRefused):
		d.cmds.markHandled(cmd.SHA256, CommandRefused, err.Error())
		d.cmds.result(cmd, CommandRefused, err.Error())
	case permanent(err):
		d.cmds.markHandled(cmd.SHA256, CommandFailed, err.Error())
		d.cmds.result(cmd, CommandFailed, err.Error())
	default:
		d.cmds.result(cmd, CommandFailed, err.Error()+" (the same command may be sent again to retry)")
	}
	return false
}

// urlPolicy is where update commands may fetch bundles from.
func (d *Daemon) urlPolicy() ota.URLPolicy {
	return ota.URLPolicy{AllowLocal: d.cfg.OTA.AllowLocalURLs, Prefixes: d.cfg.OTA.URLPrefixes}
}

// commitWhenHealthy commits a model on trial once the loop has scored commit_after frames.
func (d *Daemon) commitWhenHealthy(ctx context.Context, tick <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		if d.store.State().Phase != ota.PhaseTrial {
			return
		}
		if d.pipe.Snapshot().Frames >= uint64(d.cfg.OTA.CommitAfter) {
			if _, err := d.store.Commit(); err != nil {
				d.log.Warn("commit failed", zap.Error(err))
			} else {
				d.log.Info("model committed", zap.Int("healthy_frames", d.cfg.OTA.CommitAfter))
			}
			return
		}
	}
}

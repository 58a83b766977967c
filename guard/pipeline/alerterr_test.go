package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"syscall"
	"testing"

	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/outbox"
	"github.com/oodguard/oodguard/score"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// failingAlerter fails every alert with err.
type failingAlerter struct {
	err   error
	calls int
}

func (a *failingAlerter) Alert(event.Event, []byte) error { a.calls++; return a.err }

// An alert the outbox could not write to disk is neither a bad frame nor a lost alert: it is
// held in memory, and said so at ERROR. An alert that could not be queued at all is a lost
// alert, counted as such, not a "skipped frame".
func TestAlertErrorsAreNotBadFrames(t *testing.T) {
	clf := openCNN(t)
	var imgs []image.Image
	for i := 1; i <= 5; i++ {
		imgs = append(imgs, grayFrame(i))
	}
	for _, tc := range []struct {
		name      string
		err       error
		alertErrs uint64
		logged    string
	}{
		{"disk full, held in memory", fmt.Errorf("mqtt: alert x: %w", fmt.Errorf("%w: %w", outbox.ErrInMemory, syscall.ENOSPC)), 0, "alert not stored on disk"},
		{"not queued", errors.New("mqtt: alert x: outbox: closed"), 5, "alert lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every frame is flagged (threshold above any energy).
			m, err := NewModel(clf, preprocess.FashionMNIST(), score.Spec{Kind: score.KindEnergy}, 1e30, 1, "test")
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			core, logs := observer.New(zap.InfoLevel)
			a := &failingAlerter{err: tc.err}
			p := New(Config{Device: "cam", RunID: "run1"}, &listSource{imgs: imgs}, m, a, zap.New(core))
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			s := p.Snapshot()
			if a.calls != 5 || s.Frames != 5 || s.Flagged != 5 || s.BadFrames != 0 || s.AlertErrors != tc.alertErrs {
				t.Errorf("calls %d, snapshot %+v; want 5 frames flagged, 0 bad, %d alert errors", a.calls, s, tc.alertErrs)
			}
			got := logs.FilterMessageSnippet(tc.logged).All()
			if len(got) == 0 || got[0].Level != zap.ErrorLevel {
				t.Errorf("no ERROR %q in the log: %v", tc.logged, logs.All())
			}
			if n := logs.FilterMessageSnippet("skipping").Len(); n != 0 {
				t.Errorf("%d alerts logged as skipped frames", n)
			}
		})
	}
}

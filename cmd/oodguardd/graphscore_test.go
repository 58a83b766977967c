package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/calibrate"
	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/detect/detecttest"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// TestDaemonGraphScore runs the oodguardd binary on cnn28 with KNN written into its graph and a
// calibration of the graph score (frame -> runner -> graph score -> decision): it alerts exactly
// on the sample frames whose host-side reference score (detect, float64, on features that ONNX
// Runtime extracted) is below the threshold, and each alert's score is that reference within
// 1e-5 relative to max(1, |score|).
func TestDaemonGraphScore(t *testing.T) {
	runtimetest.Setup(t)
	root := runtimetest.RepoRoot(t)
	w := detecttest.Write(t, "knn")
	base, err := calibrate.LoadCalibration(filepath.Join(root, "testdata/models/cnn28.calibration.json"))
	if err != nil {
		t.Fatal(err)
	}
	pre, err := preprocess.New(base.Preprocess)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := dataset.OpenFolder(filepath.Join(root, "testdata/frames"), dataset.Options{Layout: dataset.LayoutFlat})
	if err != nil {
		t.Fatal(err)
	}
	var x []float32
	var names []string
	for {
		s, err := frames.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]float32, pre.Len())
		if err := pre.Process(buf, s.Image); err != nil {
			t.Fatal(err)
		}
		x = append(x, buf...)
		names = append(names, filepath.Base(s.Name()))
	}
	frames.Close()
	want := w.Reference(t, x, len(names))
	// The threshold halfway between two neighbouring reference scores near the median.
	sorted := slices.Sorted(slices.Values(want))
	n := len(sorted)
	th := (sorted[n/2-1] + sorted[n/2]) / 2
	if sorted[n/2]-sorted[n/2-1] < 1e-3 {
		t.Fatalf("reference scores %v and %v too close to split", sorted[n/2-1], sorted[n/2])
	}
	var flagged []string
	ref := map[string]float64{}
	for i, s := range want {
		ref[names[i]] = s
		if s < th {
			flagged = append(flagged, names[i])
		}
	}

	data, err := os.ReadFile(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	cal := *base
	cal.Score, cal.Threshold, cal.ModelSHA256, cal.ModelFile = w.Score, th, hex.EncodeToString(sum[:]), w.Path
	calPath := filepath.Join(t.TempDir(), "calibration.json")
	if err := cal.Save(calPath); err != nil {
		t.Fatal(err)
	}
	mq := mqtttest.StartMosquitto(t)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubscribeOptions{}, "oodguard/cam1/#")
	cfg, _ := daemonConfig(t, mq.URL(), false, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), filepath.Join(root, "testdata/models/cnn28.onnx"), w.Path, 1)
	text = strings.Replace(text, filepath.Join(root, "testdata/models/cnn28.calibration.json"), calPath, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ := startDaemon(t, cfg)
	evs := events(t, sub, len(flagged), 30*time.Second)
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var got []string
	for _, ev := range evs {
		name := filepath.Base(ev.Source)
		got = append(got, name)
		if ev.ScoreKind != "graph" || ev.Threshold != th {
			t.Errorf("event %+v", ev)
		}
		if r := ref[name]; math.Abs(ev.Score-r) > detecttest.Tolerance(r) {
			t.Errorf("%s: the daemon's graph score %.9g, host reference %.9g", name, ev.Score, r)
		}
	}
	if !slices.Equal(got, flagged) {
		t.Errorf("alerts for %v, the reference flags %v", got, flagged)
	}
}

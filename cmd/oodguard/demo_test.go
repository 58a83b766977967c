package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// make demo's comparison: the committed detector (testdata/demo/cnn28-mds.*, made by
// scripts/make-demo-detector.sh) loads with its calibration and, on the sample frames, flags
// more of the OOD frames than the plain energy score at the same 95% ID TPR, and no ID frame.
func TestDemoDetectorFlagsMoreThanEnergy(t *testing.T) {
	runtimetest.Setup(t)
	root := runtimetest.RepoRoot(t)
	frames := filepath.Join(root, "testdata/frames")
	flagged := func(model, cal string) (id, ood int) {
		t.Helper()
		code, out, errOut := runCLI(t, "score", "-model", filepath.Join(root, model), "-calibration", filepath.Join(root, cal), frames)
		if code != 0 {
			t.Fatalf("score %s: exit %d\n%s", model, code, errOut)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 2 || f[len(f)-2] != "ood" {
				continue
			}
			if strings.HasPrefix(filepath.Base(f[len(f)-1]), "id-") {
				id++
			} else {
				ood++
			}
		}
		return id, ood
	}
	eID, eOOD := flagged("testdata/models/cnn28.onnx", "testdata/models/cnn28.calibration.json")
	dID, dOOD := flagged("testdata/demo/cnn28-mds.onnx", "testdata/demo/cnn28-mds.calibration.json")
	t.Logf("energy flags %d OOD and %d ID frames; the detector %d and %d", eOOD, eID, dOOD, dID)
	if dOOD <= eOOD || dID != 0 {
		t.Errorf("the demo detector flags %d of 10 OOD frames and %d ID frames; plain energy %d OOD", dOOD, dID, eOOD)
	}
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// inspect says whether a classifier can be unleashed and ODIN-scored, and if not, why: every op
// the importer lacks with its count, or (training-mode BatchNorm) that only unleash takes it, and how
// to export or convert the model.
func TestInspectUnleash(t *testing.T) {
	zoo := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	data, err := os.ReadFile(filepath.Join(zoo, "efficientnetb0.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// Softmax, a valid op that ONNX Runtime runs and the importer does not know, for Sigmoid.
	n := bytes.Count(data, []byte("\x22\x07Sigmoid"))
	softmax := filepath.Join(t.TempDir(), "softmax.onnx")
	if err := os.WriteFile(softmax, bytes.ReplaceAll(data, []byte("\x22\x07Sigmoid"), []byte("\x22\x07Softmax")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model string
		want  []string
	}{
		{filepath.Join(zoo, "mobilenetv2.onnx"), []string{"unleash (umap, um) and odin: yes"}},
		{filepath.Join(zoo, "resnet18.trainbn.onnx"), []string{"unleash (umap, um): yes, and it writes an inference-mode model", "odin and inference: no: ", "training mode", "model.eval()", "-inference-out"}},
		{softmax, []string{"unleash (umap, um) and odin: no: ", "1 unsupported op", fmt.Sprintf("Softmax x%d (first node ", n)}},
	} {
		code, out, errOut := runCLI(t, "inspect", c.model)
		if code != 0 {
			t.Errorf("%s: exit %d, stderr %s", c.model, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", filepath.Base(c.model), w, out)
			}
		}
	}
}

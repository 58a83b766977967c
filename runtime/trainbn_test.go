package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// A model exported with training-mode BatchNorm (opset 13: running-statistics outputs; opset 17:
// training_mode=1) is refused for inference with an error that says how to export it; the same
// architecture exported in eval mode opens.
func TestTrainingBatchNormRefused(t *testing.T) {
	runtimetest.Setup(t)
	zoo := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	for _, name := range []string{"resnet18.trainbn.onnx", "mobilenetv2.trainbn.onnx", "mobilenetv3.trainbn.onnx", "efficientnetb0.trainbn.onnx", "shufflenetv2.trainbn.onnx", "densenetbc.trainbn.onnx", "densenet.trainbn.op17.onnx"} {
		p := filepath.Join(zoo, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		_, err := ort.Open(p, ort.Options{IntraOpThreads: 1})
		if !errors.Is(err, ort.ErrTrainingBatchNorm) || !strings.Contains(err.Error(), "model.eval()") {
			t.Errorf("%s: %v, want ErrTrainingBatchNorm with the export hint", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "-inference-out") {
			t.Errorf("%s: %v does not name the conversion", name, err)
		}
	}
	// SqueezeNet has no BatchNorm: its training-mode export is refused for its Dropout.
	if _, err := ort.Open(filepath.Join(zoo, "squeezenet.trainbn.onnx"), ort.Options{IntraOpThreads: 1}); !errors.Is(err, ort.ErrTrainingDropout) {
		t.Errorf("squeezenet.trainbn.onnx: %v, want ErrTrainingDropout", err)
	}
	for _, name := range []string{"resnet18.onnx", "densenet.onnx", "resnet18.folded.onnx"} {
		clf, err := ort.Open(filepath.Join(zoo, name), ort.Options{IntraOpThreads: 1})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		clf.Close()
	}
}

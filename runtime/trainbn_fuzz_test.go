package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzTrainingBatchNorms: arbitrary bytes through the BatchNorm reader that Open runs on every
// model file: a list or an error, never a panic.
func FuzzTrainingBatchNorms(f *testing.F) {
	for _, p := range []string{"../testdata/zoo/resnet18.trainbn.onnx", "../testdata/zoo/densenet.trainbn.op17.onnx", "../testdata/models/cnn28.onnx"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0x3a, 0x05, 0x0a, 0x03, 0x22, 0x01, 0x42})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, _ := trainingBatchNorms(b)
		if 2*len(nodes) > len(b) { // each node takes a tag and a length byte at least
			t.Fatalf("%d nodes from %d bytes", len(nodes), len(b))
		}
		_ = checkInferenceBatchNorm(b)
	})
}

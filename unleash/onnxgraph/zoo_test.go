package onnxgraph_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// zooFamilies are the reduced-width torchvision families of testdata/zoo (testdata/make_zoo.py).
var zooFamilies = []string{
	"resnet18", "mobilenetv2", "mobilenetv3", "efficientnetb0", "densenet", "densenetbc", "squeezenet", "shufflenetv2", "convnext",
}

// zooInput reads testdata/zoo/zoo.input.f32, the batch every zoo reference uses: [8,3,32,32].
func zooInput(t testing.TB) ([]float32, int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", "zoo.input.f32"))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return x, len(x) / (3 * 32 * 32)
}

// TestZooLogitsMatchORT imports every zoo family, in both export forms (BatchNorm kept, and
// folded by the exporter) and at opset 17 where the fixtures have it, and checks GoMLX's logits against ONNX Runtime's on the same file, on
// the pure-Go backend and on the ONNX Runtime backend.
func TestZooLogitsMatchORT(t *testing.T) {
	backends := bothBackends(t)
	x, n := zooInput(t)
	for _, fam := range zooFamilies {
		for _, form := range []string{".onnx", ".folded.onnx", ".op17.onnx"} {
			name := fam + form
			path := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", name)
			if _, err := os.Stat(path); err != nil && form == ".op17.onnx" {
				continue // only some families are exported at opset 17 too
			}
			t.Run(name, func(t *testing.T) {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				m, err := onnxgraph.Parse(data)
				if err != nil {
					t.Fatal(err)
				}
				want := ortLogits(t, data, x, n)
				for _, b := range backends {
					got := gomlxLogits(t, b.be, m, x, n)
					if len(got) != len(want) {
						t.Fatalf("%s: %d logits, ORT %d", b.name, len(got), len(want))
					}
					e := maxRelErr(got, want)
					t.Logf("%s backend: max error relative to the largest |logit|: %.2g", b.name, e)
					if e > 1e-4 {
						t.Errorf("%s backend: GoMLX and ORT logits differ by %.3g relative", b.name, e)
					}
				}
			})
		}
	}
}

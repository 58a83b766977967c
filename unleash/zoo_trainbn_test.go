package unleash_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/mask"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// zooTrainingMode lists the zoo's models exported after model.train() with
// TrainingMode.PRESERVE, and the family each was exported from (the same weights; only the
// BatchNorm running statistics differ, moved by the exporter's trace).
var zooTrainingMode = []struct {
	file, family string
	dropoutOnly  bool // no BatchNorm: only a Dropout runs in training mode
}{
	{"resnet18.trainbn.onnx", "resnet18", false},       // opset 13: BatchNorm with 5 outputs
	{"mobilenetv2.trainbn.onnx", "mobilenetv2", false}, // and a Dropout with training_mode=true
	{"densenetbc.trainbn.onnx", "densenetbc", false},   // the paper's DenseNet-BC, non-affine BatchNorm
	{"densenet.trainbn.op17.onnx", "densenet", false},  // opset 17: training_mode=1, 3 outputs
	{"mobilenetv3.trainbn.onnx", "mobilenetv3", false},
	{"efficientnetb0.trainbn.onnx", "efficientnetb0", false},
	{"squeezenet.trainbn.onnx", "squeezenet", true},
	{"shufflenetv2.trainbn.onnx", "shufflenetv2", false},
	// convnext (LayerNorm, no Dropout) exports no training-mode node: make_zoo.py writes none.
}

// TestZooTrainingModeUnleash unleashes (one UMAP and one UM step, ONNX Runtime backend) each
// model exported in training mode and checks what is written: a model runtime accepts (its
// BatchNorm and Dropout in inference mode), whose ONNX Runtime logits equal GoMLX's within 1e-4,
// whose BatchNorm running statistics are those training updated, and whose bytes are the input
// converted by MarshalInference with the trained values in place. The step itself equals the step
// on the family's eval-mode export (training mode uses batch statistics either way, and Dropout
// is passed through as in the eval-mode export, which has none).
func TestZooTrainingModeUnleash(t *testing.T) {
	b := zooONNXBackend(t)
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	for _, z := range zooTrainingMode {
		for _, method := range []unleash.Method{unleash.UMAP, unleash.UM} {
			t.Run(z.file+"/"+method.String(), func(t *testing.T) {
				ref, em, x := loadZoo(t, z.family)
				path := filepath.Join(dir, z.file)
				tm, err := onnxgraph.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				wantGraph, wantRuntime := onnxgraph.ErrTrainingBatchNorm, runtime.ErrTrainingBatchNorm
				if z.dropoutOnly {
					wantGraph, wantRuntime = onnxgraph.ErrTrainingDropout, runtime.ErrTrainingDropout
				}
				if !tm.InTrainingMode() || !errors.Is(tm.CheckInference(), wantGraph) {
					t.Fatalf("%s: not seen as a training-mode model (CheckInference %v)", z.file, tm.CheckInference())
				}
				if _, err := runtime.Open(path, runtime.Options{}); !errors.Is(err, wantRuntime) {
					t.Fatalf("runtime opens the training-mode input: %v", err)
				}
				opts := unleash.DefaultOptions(method)
				opts.Backend, opts.ScoreInit, opts.Constraint = b, mask.Magnitude, ref.UMAP.Constraint
				lr := 0.05
				if method == unleash.UMAP {
					lr = 0.5
				}
				step := func(m *onnxgraph.Model) (*unleash.Trainer, unleash.StepResult, map[string][]float32) {
					tr, err := unleash.New(m, opts)
					if err != nil {
						t.Fatal(err)
					}
					res, err := tr.Step(x, ref.Y, lr)
					if err != nil {
						t.Fatal(err)
					}
					repl, err := tr.Replacements()
					if err != nil {
						t.Fatal(err)
					}
					return tr, res, repl
				}
				tr, res, repl := step(tm)
				_, eres, erepl := step(em)
				if res.Loss != eres.Loss || res.CE != eres.CE {
					t.Errorf("loss %v ce %v, on the eval-mode export %v %v", res.Loss, res.CE, eres.Loss, eres.CE)
				}
				stats := 0
				for name, v := range repl {
					p := tm.Param(name)
					if p.Role == onnxgraph.RoleBNMean || p.Role == onnxgraph.RoleBNVar {
						stats++
						if bytes.Equal(f32bytes(v), f32bytes(p.Data)) {
							t.Errorf("%s: running statistic not updated by training", name)
						}
						continue
					}
					if e := relErr(v, erepl[name]); e > 1e-6 {
						t.Errorf("%s: %.3g from the value trained on the eval-mode export", name, e)
					}
				}
				if stats == 0 && !z.dropoutOnly {
					t.Errorf("no BatchNorm running statistic written")
				}

				var buf bytes.Buffer
				if err := tr.Export(&buf); err != nil {
					t.Fatal(err)
				}
				written := buf.Bytes()
				wm, err := onnxgraph.Parse(written)
				if err != nil {
					t.Fatal(err)
				}
				if wm.InTrainingMode() || wm.CheckInference() != nil {
					t.Fatalf("the written model is still in training mode: %v %v", wm.TrainingBatchNorm, wm.TrainingDropout)
				}
				for name, v := range repl {
					if !bytes.Equal(f32bytes(wm.Param(name).Data), f32bytes(v)) {
						t.Errorf("%s: the written value is not the trained one", name)
					}
				}
				// Byte for byte: the converted input with the trained values in place.
				conv, err := tm.MarshalInference(nil)
				if err != nil {
					t.Fatal(err)
				}
				if back := originalsPutBack(t, tm, wm, repl); !bytes.Equal(back, conv) {
					t.Errorf("the written model with the original values put back differs from the converted input")
				}
				// runtime accepts it (runtimetest.Logits opens it with runtime.Open), and ONNX
				// Runtime computes what GoMLX does in inference mode.
				got := runtimetest.Logits(t, written, x, len(ref.Y))
				want, err := tr.Logits(x)
				if err != nil {
					t.Fatal(err)
				}
				e := relErr(got, want)
				t.Logf("ONNX Runtime on the written model vs GoMLX: %.2g relative", e)
				if e > tol {
					t.Errorf("ONNX Runtime on the written model differs from GoMLX by %.3g relative", e)
				}
				// Batch independence: the first image alone gives its row of the batch's logits.
				one := runtimetest.Logits(t, written, x[:len(x)/len(ref.Y)], 1)
				if e := relErr(one, got[:len(one)]); e > tol {
					t.Errorf("ONNX Runtime on one image differs from the batch's row by %.3g: still batch statistics?", e)
				}
			})
		}
	}
}

// TestZooTrainingModeConverted checks the conversion alone (what `oodguard inspect
// -inference-out` writes): ONNX Runtime on MarshalInference(nil) of each training-mode model
// gives GoMLX's inference-mode logits with the running statistics stored in the file.
func TestZooTrainingModeConverted(t *testing.T) {
	b := zooONNXBackend(t)
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	for _, z := range zooTrainingMode {
		t.Run(z.file, func(t *testing.T) {
			ref, _, x := loadZoo(t, z.family)
			tm, err := onnxgraph.Load(filepath.Join(dir, z.file))
			if err != nil {
				t.Fatal(err)
			}
			conv, err := tm.MarshalInference(nil)
			if err != nil {
				t.Fatal(err)
			}
			opts := unleash.DefaultOptions(unleash.UM)
			opts.Backend = b
			tr, err := unleash.New(tm, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tr.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			got := runtimetest.Logits(t, conv, x, len(ref.Y))
			if e := relErr(got, want); e > tol {
				t.Errorf("ONNX Runtime on the converted model differs from GoMLX by %.3g relative", e)
			}
			raw, err := os.ReadFile(filepath.Join(dir, z.file))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(raw, conv) {
				t.Errorf("conversion changed nothing")
			}
		})
	}
}

func f32bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return out
}

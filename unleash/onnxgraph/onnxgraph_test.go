package onnxgraph_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

func backend(t testing.TB) compute.Backend {
	t.Helper()
	b, err := gobackend.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// namedBackend is a backend and its name, for messages.
type namedBackend struct {
	name string
	be   compute.Backend
}

// bothBackends returns the pure-Go backend and the ONNX Runtime one (set up for the test), the
// two that the explicit-gradient tests compare.
func bothBackends(t *testing.T) []namedBackend {
	t.Helper()
	runtimetest.Setup(t)
	ort, err := unleash.NewBackend("onnx")
	if err != nil {
		t.Fatal(err)
	}
	return []namedBackend{{"go", backend(t)}, {"onnx", ort}}
}

func modelPath(t testing.TB, name string) string {
	root := runtimetest.RepoRoot(t)
	if strings.HasPrefix(name, "unleash/") {
		return filepath.Join(root, "testdata", name)
	}
	return filepath.Join(root, "testdata", "models", name)
}

// gomlxLogits runs the imported model in inference mode.
func gomlxLogits(t testing.TB, b compute.Backend, m *onnxgraph.Model, x []float32, n int) []float32 {
	t.Helper()
	exec, err := graph.NewExec(b, func(x *graph.Node) *graph.Node {
		logits, _ := m.Build(x, nil, onnxgraph.Inference)
		return logits
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, m.Channels, m.Height, m.Width))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

// ortLogits runs a serialized model under ONNX Runtime through the project's runtime package.
func ortLogits(t testing.TB, data []byte, x []float32, n int) []float32 {
	t.Helper()
	return runtimetest.Logits(t, data, x, n)
}

// maxRelErr returns max |a-b| / max(max|b|, tiny): the error relative to the tensor's scale.
func maxRelErr(a, b []float32) float64 {
	scale := 1e-30
	for _, v := range b {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i]))/scale)
	}
	return worst
}

func randomInput(n, size int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0))
	x := make([]float32, n*size)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func TestImportedLogitsMatchORT(t *testing.T) {
	b := backend(t)
	for _, name := range []string{"cnn28.onnx", "resnet32.onnx", "unleash/tinybn.onnx", "unleash/opszoo.onnx", "unleash/poolzoo.onnx"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			path := modelPath(t, name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnxgraph.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			n := 5
			x := randomInput(n, m.Channels*m.Height*m.Width, 1)
			got := gomlxLogits(t, b, m, x, n)
			want := ortLogits(t, data, x, n)
			if len(got) != len(want) {
				t.Fatalf("%d logits, ORT %d", len(got), len(want))
			}
			e := maxRelErr(got, want)
			t.Logf("%s: max error relative to the largest |logit|: %.2g", name, e)
			if e > 1e-4 {
				t.Errorf("GoMLX and ORT logits differ by %.3g relative", e)
			}
		})
	}
}

func TestMarshalUnchangedIsIdentical(t *testing.T) {
	for _, name := range []string{"cnn28.onnx", "unleash/opszoo.onnx"} {
		data, err := os.ReadFile(modelPath(t, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := onnxgraph.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Errorf("%s: re-marshalled model differs from the file (%d vs %d bytes)", name, len(out), len(data))
		}
	}
}

func TestParamsFound(t *testing.T) {
	m, err := onnxgraph.Load(modelPath(t, "unleash/opszoo.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range m.Params {
		got[p.Name] = p.Role.String()
	}
	want := map[string]string{
		"conv1.weight": "weight", "conv1.bias": "bias", "bn1.weight": "bn-scale", "bn1.bias": "bn-bias",
		"bn1.running_mean": "bn-running-mean", "bn1.running_var": "bn-running-var",
		"conv2.weight": "weight", "bn2.running_mean": "bn-running-mean", "bn2.running_var": "bn-running-var",
		"short.weight": "weight", "w": "weight", "b": "bias",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: role %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("params %v, want %v", got, want)
	}
	fans := map[string]int{"conv1.weight": 27, "conv2.weight": 36, "short.weight": 4, "w": 32}
	for _, p := range m.Maskable() {
		if p.FanIn != fans[p.Name] {
			t.Errorf("%s: fan-in %d, want %d", p.Name, p.FanIn, fans[p.Name])
		}
	}
}

// renameOps renames every op type from to the same-length to in a serialized model (the op type
// is a length-prefixed string in each node, so the file stays valid), and returns the count.
func renameOps(t *testing.T, data []byte, from, to string) ([]byte, int) {
	t.Helper()
	if len(from) != len(to) || len(from) > 127 {
		t.Fatalf("rename %q to %q: lengths differ", from, to)
	}
	pat := append([]byte{0x22, byte(len(from))}, from...)
	n := bytes.Count(data, pat)
	return bytes.ReplaceAll(data, pat, append([]byte{0x22, byte(len(to))}, to...)), n
}

func TestUnsupportedOpNamesOpAndNode(t *testing.T) {
	data, err := os.ReadFile(modelPath(t, "cnn28.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// Rename the op type "Relu" of the first Relu node to "Selu".
	i := bytes.Index(data, []byte("\x22\x04Relu"))
	if i < 0 {
		t.Fatal("no Relu op type in cnn28.onnx")
	}
	bad := append([]byte(nil), data...)
	copy(bad[i+2:], "Selu")
	_, err = onnxgraph.Parse(bad)
	var ue *onnxgraph.UnsupportedError
	if !errors.As(err, &ue) || len(ue.Ops) != 1 || ue.Ops[0].Op != "Selu" || ue.Ops[0].Count != 1 || ue.Ops[0].FirstNode == "" {
		t.Fatalf("error %v, want one UnsupportedError naming op Selu once and its node", err)
	}
	if !strings.Contains(err.Error(), "Selu x1 (node \"") {
		t.Errorf("error %q does not name the op and the node", err)
	}
	t.Log(err)
}

// TestUnsupportedOpsAllListed checks that a model with several unsupported ops gets one error
// that lists each of them with its count and first node, in graph order.
func TestUnsupportedOpsAllListed(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", "mobilenetv3.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	bad, nHS := renameOps(t, data, "HardSigmoid", "HardSigmoiX")
	bad, nMul := renameOps(t, bad, "Mul", "Muu")
	if nHS < 2 || nMul < 2 {
		t.Fatalf("mobilenetv3.onnx has %d HardSigmoid and %d Mul nodes, want several", nHS, nMul)
	}
	_, err = onnxgraph.Parse(bad)
	var ue *onnxgraph.UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want an UnsupportedError", err)
	}
	t.Log(err)
	got := map[string]onnxgraph.UnsupportedOp{}
	for _, o := range ue.Ops {
		got[o.Op] = o
	}
	if len(ue.Ops) != 2 || got["HardSigmoiX"].Count != nHS || got["Muu"].Count != nMul {
		t.Fatalf("ops %+v, want HardSigmoiX x%d and Muu x%d", ue.Ops, nHS, nMul)
	}
	for _, o := range ue.Ops {
		if o.FirstNode == "" || !strings.Contains(err.Error(), fmt.Sprintf("%s x%d (first node %q)", o.Op, o.Count, o.FirstNode)) {
			t.Errorf("error does not list %s with its count and first node", o.Op)
		}
	}
}

// TestComputedShapeRefused checks that a shape input computed from data, not from constants and
// Shape, is named as the reason.
func TestComputedShapeRefused(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo", "shufflenetv2.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// With Shape renamed, the Gathers read an unsupported op's output: only Shapf is listed.
	bad, n := renameOps(t, data, "Shape", "Shapf")
	_, err = onnxgraph.Parse(bad)
	var ue *onnxgraph.UnsupportedError
	if !errors.As(err, &ue) || len(ue.Ops) != 1 || ue.Ops[0].Op != "Shapf" || ue.Ops[0].Count != n {
		t.Fatalf("error %v, want one naming Shapf x%d only", err, n)
	}
	// With Shape renamed to Split (one output: a copy of the data), the Gathers read data.
	bad, _ = renameOps(t, data, "Shape", "Split")
	_, err = onnxgraph.Parse(bad)
	if !errors.As(err, &ue) || len(ue.Ops) != 1 || ue.Ops[0].Op != "Gather" || !strings.Contains(err.Error(), "Gather of a computed tensor") {
		t.Fatalf("error %v, want one naming Gathers of computed tensors only", err)
	}
	t.Log(err)
}

func TestWrittenWeightsRead(t *testing.T) {
	m, err := onnxgraph.Load(modelPath(t, "unleash/tinybn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	p := m.Param("fc.weight")
	vals := make([]float32, p.Size())
	for i := range vals {
		vals[i] = float32(i)
	}
	data, err := m.Marshal(map[string][]float32{"fc.weight": vals})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range m2.Param("fc.weight").Data {
		if v != vals[i] {
			t.Fatalf("value %d: %v, want %v", i, v, vals[i])
		}
	}
	if _, err := m.Marshal(map[string][]float32{"fc.weight": vals[:3]}); err == nil {
		t.Error("wrong size: no error")
	}
	if _, err := m.Marshal(map[string][]float32{"nope": vals}); err == nil {
		t.Error("unknown initializer: no error")
	}
	// Only the replaced values' bytes change.
	orig, err := os.ReadFile(modelPath(t, "unleash/tinybn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) != len(data) {
		t.Fatalf("written model has %d bytes, input %d", len(data), len(orig))
	}
	diff := 0
	for i := range orig {
		if orig[i] != data[i] {
			diff++
		}
	}
	if diff == 0 || diff > 4*len(vals) {
		t.Errorf("%d bytes changed for %d replaced floats", diff, len(vals))
	}
}

package arch_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

var cases = []struct {
	name   string
	cfg    arch.Config
	params int // trainable parameters: conv and fc weights and biases, BN scale and bias
}{
	// SmallCNN: 1*16*9 + 16*32*9 + 32*64*9 + 64*10 + 10 conv/fc, 2*(16+32+64) BN.
	{"cnn28", arch.Config{Arch: arch.CNN28, Classes: 10, Input: [3]int{1, 28, 28}, Seed: 1}, 144 + 4608 + 18432 + 650 + 224},
	// SmallResNet width 8 (testdata's resnet32.onnx).
	{"resnet-w8", arch.Config{Arch: arch.ResNet, Classes: 10, Input: [3]int{3, 32, 32}, Width: 8, Seed: 1}, 0},
	{"resnet-w4-2,1,2", arch.Config{Arch: arch.ResNet, Classes: 3, Input: [3]int{3, 16, 16}, Width: 4, Blocks: []int{2, 1, 2}, Seed: 7}, 0},
	// DenseNet-BC depth 16, growth 6: convolutions 3*12*9; per bottleneck c*24 + 24*6*9 at
	// c = 12, 18 | 12, 18 | 12, 18; transitions 24*12, 24*12; fc 24*10 + 10; no BN parameters.
	{"densenet-16-k6", arch.Config{Arch: arch.DenseNet, Classes: 10, Input: [3]int{3, 32, 32}, Width: 6, Depth: 16, Seed: 2},
		324 + 3*(12*24+1296+18*24+1296) + 2*288 + 250},
	// DenseNet-BC-100 (k = 12): the method doc's 745,174 parameters (at 8x8 pixels, to keep the
	// test short; the count does not depend on the image size).
	{"densenet-bc-100", arch.Config{Arch: arch.DenseNet, Classes: 10, Input: [3]int{3, 8, 8}, Seed: 1}, 745174},
}

// TestDenseNetMatchesPyTorch checks the DenseNet architecture against the PyTorch DenseNet3 of
// testdata/make_zoo.py (the official code's, as the method doc describes it) at depth 16,
// growth 6: with the zoo file's weights and running statistics put in, in graph order, the
// built model's logits equal PyTorch's on the zoo batch.
func TestDenseNetMatchesPyTorch(t *testing.T) {
	data, err := arch.Build(arch.Config{Arch: arch.DenseNet, Classes: 10, Input: [3]int{3, 32, 32}, Width: 6, Depth: 16, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(runtimetest.RepoRoot(t), "testdata", "zoo")
	zoo, err := onnxgraph.Load(filepath.Join(dir, "densenetbc.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Params) != len(zoo.Params) {
		t.Fatalf("%d parameters, PyTorch's DenseNet3 has %d", len(m.Params), len(zoo.Params))
	}
	values := map[string][]float32{}
	for i, p := range m.Params {
		q := zoo.Params[i]
		if p.Role != q.Role || fmt.Sprint(p.Dims) != fmt.Sprint(q.Dims) {
			t.Fatalf("parameter %d: %s %s %v, PyTorch's %s %s %v", i, p.Name, p.Role, p.Dims, q.Name, q.Role, q.Dims)
		}
		values[p.Name] = q.Data
	}
	withZoo, err := m.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = onnxgraph.Parse(withZoo); err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Logits []float32 `json:"logits_eval"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "densenetbc.ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "zoo.input.f32"))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	be, err := gobackend.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	exec, err := graph.NewExec(be, func(x *graph.Node) *graph.Node {
		z, _ := m.Build(x, nil, onnxgraph.Inference)
		return z
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, len(x)/(3*32*32), 3, 32, 32))
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out[0])
	scale, worst := 0.0, 0.0
	for i := range ref.Logits {
		scale = math.Max(scale, math.Abs(float64(ref.Logits[i])))
	}
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-ref.Logits[i]))/scale)
	}
	t.Logf("logits within %.2g of PyTorch's DenseNet3 (relative to the largest)", worst)
	if len(got) != len(ref.Logits) || worst > 1e-5 {
		t.Errorf("logits differ from PyTorch's DenseNet3 by %.3g relative", worst)
	}
}

// TestLogitsMatchORT builds each architecture, imports it into GoMLX and checks that ONNX
// Runtime accepts the file as an image classifier and computes the same logits.
func TestLogitsMatchORT(t *testing.T) {
	runtimetest.Setup(t)
	b, err := gobackend.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := arch.Build(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnxgraph.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg.WithDefaults()
			if m.Channels != cfg.Input[0] || m.Height != cfg.Input[1] || m.Width != cfg.Input[2] || m.Classes != cfg.Classes {
				t.Fatalf("imported %dx%dx%d -> %d, want %v -> %d", m.Channels, m.Height, m.Width, m.Classes, cfg.Input, cfg.Classes)
			}
			trainable := 0
			for _, p := range m.Params {
				if p.Role != onnxgraph.RoleBNMean && p.Role != onnxgraph.RoleBNVar {
					trainable += p.Size()
				}
			}
			if tc.params != 0 && trainable != tc.params {
				t.Errorf("%d trainable parameters, want %d", trainable, tc.params)
			}

			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			clf, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer clf.Close()
			const n = 5
			x := make([]float32, n*m.Channels*m.Height*m.Width)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			run, err := clf.NewRunner(n)
			if err != nil {
				t.Fatal(err)
			}
			defer run.Close()
			if err := run.SetInput(x); err != nil {
				t.Fatal(err)
			}
			want, err := run.Run()
			if err != nil {
				t.Fatal(err)
			}

			exec, err := graph.NewExec(b, func(x *graph.Node) *graph.Node {
				z, _ := m.Build(x, nil, onnxgraph.Inference)
				return z
			})
			if err != nil {
				t.Fatal(err)
			}
			defer exec.Finalize()
			out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, m.Channels, m.Height, m.Width))
			if err != nil {
				t.Fatal(err)
			}
			got := tensors.MustCopyFlatData[float32](out[0])
			if len(got) != len(want) || len(got) != n*cfg.Classes {
				t.Fatalf("%d GoMLX logits, %d ORT, want %d", len(got), len(want), n*cfg.Classes)
			}
			worst := 0.0
			for i := range got {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("max |GoMLX - ORT| = %.2g", worst)
			if worst > 1e-4 {
				t.Errorf("GoMLX and ORT logits differ by %.3g", worst)
			}
		})
	}
}

func TestInit(t *testing.T) {
	data, err := arch.Build(cases[0].cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := arch.Build(cases[0].cfg)
	if !bytes.Equal(data, again) {
		t.Error("the same config built different files")
	}
	other := cases[0].cfg
	other.Seed++
	if o, _ := arch.Build(other); bytes.Equal(data, o) {
		t.Error("another seed built the same file")
	}
	m, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params {
		var mean, sq float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range p.Data {
			mean += float64(v)
			sq += float64(v) * float64(v)
			lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
		}
		n := float64(len(p.Data))
		mean /= n
		std := math.Sqrt(sq/n - mean*mean)
		switch {
		case p.Op == "Conv" && p.Role == onnxgraph.RoleWeight:
			want := math.Sqrt(2 / float64(p.FanIn))
			if math.Abs(std/want-1) > 0.15 || math.Abs(mean) > 0.3*want {
				t.Errorf("%s: mean %.3g std %.3g, want kaiming-normal std %.3g", p.Name, mean, std, want)
			}
		case p.Op == "Gemm":
			bound := 1 / math.Sqrt(64)
			if lo < -bound || hi > bound || hi-lo < bound {
				t.Errorf("%s: values in [%.3g, %.3g], want U(-%.3g, %.3g)", p.Name, lo, hi, bound, bound)
			}
		case p.Role == onnxgraph.RoleBNScale || p.Role == onnxgraph.RoleBNVar:
			if lo != 1 || hi != 1 {
				t.Errorf("%s: want all ones", p.Name)
			}
		case p.Role == onnxgraph.RoleBNBias || p.Role == onnxgraph.RoleBNMean:
			if lo != 0 || hi != 0 {
				t.Errorf("%s: want all zeros", p.Name)
			}
		}
	}
}

func TestBadConfig(t *testing.T) {
	ok := arch.Config{Arch: arch.ResNet, Classes: 10, Input: [3]int{3, 32, 32}}
	for _, tc := range []struct {
		name string
		edit func(*arch.Config)
	}{
		{"unknown arch", func(c *arch.Config) { c.Arch = "vgg" }},
		{"one class", func(c *arch.Config) { c.Classes = 1 }},
		{"two channels", func(c *arch.Config) { c.Input[0] = 2 }},
		{"tiny input", func(c *arch.Config) { c.Input[1] = 4 }},
		{"negative width", func(c *arch.Config) { c.Width = -1 }},
		{"two stages", func(c *arch.Config) { c.Blocks = []int{1, 1} }},
		{"empty stage", func(c *arch.Config) { c.Blocks = []int{1, 0, 1} }},
	} {
		c := ok
		tc.edit(&c)
		if _, err := arch.Build(c); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	_, err := arch.Build(arch.Config{Arch: "vgg", Classes: 10, Input: [3]int{3, 32, 32}})
	if !errors.Is(err, arch.ErrArch) {
		t.Errorf("unknown arch: %v, want ErrArch", err)
	}
}

package runtime_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

// reference is a NAME.ref.json written by testdata/make_models.py.
type reference struct {
	Model       string      `json:"model"`
	InputFile   string      `json:"input_file"`
	InputShape  []int       `json:"input_shape"`
	Logits      [][]float64 `json:"logits"`
	EnergyT1    []float64   `json:"energy_t1"`
	EnergyT1000 []float64   `json:"energy_t1000"`
	MSP         []float64   `json:"msp"`
	MaxLogit    []float64   `json:"maxlogit"`
	Input       []float32   `json:"-"`
}

func loadReference(t *testing.T, name string) reference {
	t.Helper()
	var ref reference
	b, err := os.ReadFile(runtimetest.Model(t, name+".ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(runtimetest.Model(t, ref.InputFile))
	if err != nil {
		t.Fatal(err)
	}
	ref.Input = make([]float32, len(raw)/4)
	for i := range ref.Input {
		ref.Input[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	n := 1
	for _, d := range ref.InputShape {
		n *= d
	}
	if n != len(ref.Input) {
		t.Fatalf("%s: %d input values for shape %v", name, len(ref.Input), ref.InputShape)
	}
	return ref
}

// relTol is the agreement the references must reach: 1e-5 relative. For logits the scale is the
// largest |logit| of the row (a logit near zero has no meaningful relative error of its own).
const relTol = 1e-5

func closeRel(got, want, scale float64) bool {
	return math.Abs(got-want) <= relTol*math.Max(math.Abs(want), scale)
}

func TestLogitsAndScoresMatchPyTorch(t *testing.T) {
	runtimetest.Setup(t)
	for _, name := range []string{"cnn28", "resnet32"} {
		t.Run(name, func(t *testing.T) {
			ref := loadReference(t, name)
			c, err := ort.Open(runtimetest.Model(t, ref.Model), ort.Options{IntraOpThreads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := c.Shape()
			if s.Batch != -1 || s.Channels != ref.InputShape[1] || s.Height != ref.InputShape[2] || s.Width != ref.InputShape[3] {
				t.Fatalf("shape %v, reference input %v", s, ref.InputShape)
			}
			n := ref.InputShape[0]
			per := s.InputLen(1)
			// The whole batch at once, and then one image at a time: the batch axis is dynamic.
			for _, batch := range []int{n, 1} {
				r, err := c.NewRunner(batch)
				if err != nil {
					t.Fatal(err)
				}
				for start := 0; start < n; start += batch {
					if err := r.SetInput(ref.Input[start*per : (start+batch)*per]); err != nil {
						t.Fatal(err)
					}
					logits, err := r.Run()
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < batch; i++ {
						checkRow(t, ref, start+i, logits[i*s.Classes:(i+1)*s.Classes])
					}
				}
				r.Close()
			}
		})
	}
}

func checkRow(t *testing.T, ref reference, i int, z []float32) {
	t.Helper()
	want := ref.Logits[i]
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	for k := range want {
		if !closeRel(float64(z[k]), want[k], scale) {
			t.Errorf("image %d logit %d: ORT %.9g, PyTorch %.9g", i, k, z[k], want[k])
		}
	}
	for _, c := range []struct {
		spec score.Spec
		want float64
	}{
		{score.Spec{Kind: score.KindEnergy, Temperature: 1}, ref.EnergyT1[i]},
		{score.Spec{Kind: score.KindEnergy, Temperature: 1000}, ref.EnergyT1000[i]},
		{score.Spec{Kind: score.KindMSP}, ref.MSP[i]},
		{score.Spec{Kind: score.KindMaxLogit}, ref.MaxLogit[i]},
	} {
		f, err := c.spec.Func()
		if err != nil {
			t.Fatal(err)
		}
		got, err := f(z)
		if err != nil {
			t.Fatal(err)
		}
		if !closeRel(got, c.want, 0) {
			t.Errorf("image %d %s: ORT logits give %.9g, PyTorch %.9g", i, c.spec, got, c.want)
		}
	}
}

func TestRunnerMakesNoAllocations(t *testing.T) {
	runtimetest.Setup(t)
	c, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.NewRunner(4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := r.Run(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Run allocates %v times per call, want 0", allocs)
	}
}

func TestFindLibrary(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libonnxruntime.so")
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("flag wins", func(t *testing.T) {
		t.Setenv(ort.EnvLibrary, "/nonexistent/env.so")
		got, err := ort.FindLibrary(lib)
		if err != nil || got != lib {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv(ort.EnvLibrary, lib)
		got, err := ort.FindLibrary("")
		if err != nil || got != lib {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("missing flag path is an error listing it", func(t *testing.T) {
		missing := filepath.Join(dir, "nope.so")
		_, err := ort.FindLibrary(missing)
		if !errors.Is(err, ort.ErrLibraryNotFound) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "no such file") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing env path is not replaced by another library", func(t *testing.T) {
		t.Setenv(ort.EnvLibrary, filepath.Join(dir, "gone.so"))
		_, err := ort.FindLibrary("")
		if !errors.Is(err, ort.ErrLibraryNotFound) || !strings.Contains(err.Error(), "$ONNXRUNTIME_LIB") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestInitRejectsNonLibrary loads a file that is not a library. ONNX Runtime is process-wide,
// so the check runs in a fresh copy of the test binary where nothing is loaded yet.
func TestInitRejectsNonLibrary(t *testing.T) {
	if bad := os.Getenv("OODGUARD_TEST_BAD_LIB"); bad != "" {
		err := ort.Init(bad)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), ort.ORTVersion) {
			t.Fatalf("got %v", err)
		}
		return
	}
	bad := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := os.WriteFile(bad, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitRejectsNonLibrary$", "-test.v")
	cmd.Env = append(os.Environ(), "OODGUARD_TEST_BAD_LIB="+bad)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInitRejectsNonLibrary") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestOpenRejectsBadModels(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.onnx")
	good, err := os.ReadFile(runtimetest.Model(t, "cnn28.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corrupt, good[:len(good)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("this is not a protobuf"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		is         error
		says       string
	}{
		{"missing file", filepath.Join(dir, "missing.onnx"), os.ErrNotExist, "missing.onnx"},
		{"truncated model", corrupt, nil, "not a valid ONNX model"},
		{"garbage model", garbage, nil, "not a valid ONNX model"},
		{"flat input", runtimetest.Model(t, "mlp_flat.onnx"), ort.ErrNotClassifier, "want float32[N,C,H,W]"},
		{"two outputs", runtimetest.Model(t, "two_heads.onnx"), ort.ErrNotClassifier, "2 outputs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ort.Open(c.path, ort.Options{})
			if err == nil {
				t.Fatal("opened")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), filepath.Base(c.path)) {
				t.Errorf("error %q should name the file and say %q", err, c.says)
			}
		})
	}
}

func TestWrongInputShape(t *testing.T) {
	runtimetest.Setup(t)
	c, err := ort.Open(runtimetest.Model(t, "cnn28.onnx"), ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CheckInput(3, 32, 32); err == nil || !strings.Contains(err.Error(), "1x28x28") {
		t.Errorf("CheckInput(3,32,32): %v", err)
	}
	if err := c.CheckInput(1, 28, 28); err != nil {
		t.Errorf("CheckInput(1,28,28): %v", err)
	}
	r, err := c.NewRunner(2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetInput(make([]float32, 3*32*32)); err == nil || !strings.Contains(err.Error(), "wants 1568") {
		t.Errorf("SetInput of a 3x32x32 image: %v", err)
	}
	if _, err := c.NewRunner(0); err == nil {
		t.Error("NewRunner(0) worked")
	}
}

func TestExecutionProviders(t *testing.T) {
	runtimetest.Setup(t)
	model := runtimetest.Model(t, "cnn28.onnx")
	t.Run("unknown", func(t *testing.T) {
		_, err := ort.Open(model, ort.Options{Provider: ort.ProviderOptions{Name: "rocm"}})
		if err == nil || !strings.Contains(err.Error(), `unknown execution provider "rocm"`) {
			t.Fatalf("got %v", err)
		}
	})
	for _, p := range []ort.Provider{ort.ProviderCUDA, ort.ProviderTensorRT} {
		t.Run(string(p)+" missing", func(t *testing.T) {
			c, err := ort.Open(model, ort.Options{Provider: ort.ProviderOptions{Name: p}})
			if err == nil {
				c.Close()
				t.Skipf("this ONNX Runtime library has %s", p)
			}
			if !errors.Is(err, ort.ErrProviderUnavailable) {
				t.Fatalf("got %v, want ErrProviderUnavailable", err)
			}
		})
		t.Run(string(p)+" fallback", func(t *testing.T) {
			c, err := ort.Open(model, ort.Options{Provider: ort.ProviderOptions{Name: p, FallbackToCPU: true}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Provider() != ort.ProviderCPU && c.Provider() != p {
				t.Fatalf("provider %s", c.Provider())
			}
		})
	}
	t.Run("cpu with options", func(t *testing.T) {
		_, err := ort.Open(model, ort.Options{Provider: ort.ProviderOptions{Name: ort.ProviderCPU, Options: map[string]string{"a": "b"}}})
		if err == nil {
			t.Fatal("accepted options for cpu")
		}
	})
}

package crossbuild_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/score"
)

const (
	sysroot = "/usr/aarch64-linux-gnu" // Debian's libc6-dev-arm64-cross: qemu-aarch64 -L
	crossCC = "aarch64-linux-gnu-gcc"
	version = "crossbuild-test"
	// relTol is the agreement asked of arm64 and the host: 1e-5 relative, as against PyTorch.
	relTol = 1e-5
)

// helperEnv makes the test binary a helper process that prints logits (see TestHelperLogits).
const (
	helperEnv    = "OODGUARD_CROSSBUILD_HELPER"
	helperModels = "OODGUARD_CROSSBUILD_MODELS"
	helperOut    = "OODGUARD_CROSSBUILD_OUT"
)

// testModels are the classifiers with PyTorch references in testdata/models.
var testModels = []string{"cnn28", "resnet32"}

// toolchain is what TestARM64 runs with.
type toolchain struct {
	goBin  string
	cc     string
	qemu   []string // the prefix that runs an arm64 binary; empty on an arm64 host
	root   string   // the repository
	ortLib string   // the arm64 libonnxruntime.so
}

// missing skips the test, or fails it where the environment says everything must be there.
func missing(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if runtimetest.Required() {
		t.Fatalf("%s (required here: CI=true or OODGUARD_REQUIRE_ORT=1; 'make debs' installs it)", msg)
	}
	t.Skipf("skipping: %s ('make debs' installs it; CI=true makes this a failure)", msg)
}

func findToolchain(t *testing.T) toolchain {
	t.Helper()
	if goruntime.GOOS != "linux" || (goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64") {
		t.Skipf("the firmware is built on linux/amd64 or linux/arm64, not %s/%s", goruntime.GOOS, goruntime.GOARCH)
	}
	tc := toolchain{root: runtimetest.RepoRoot(t)}
	var err error
	if tc.goBin, err = exec.LookPath("go"); err != nil {
		if tc.goBin, err = exec.LookPath(filepath.Join(goruntime.GOROOT(), "bin", "go")); err != nil {
			missing(t, "no go command")
		}
	}
	if goruntime.GOARCH == "arm64" {
		tc.cc = "gcc"
		if c := os.Getenv("CC"); c != "" {
			tc.cc = c
		}
	} else {
		tc.cc = crossCC
		q, err := exec.LookPath("qemu-aarch64")
		if err != nil {
			missing(t, "qemu-aarch64 not found (Debian: qemu-user)")
		}
		if _, err := os.Stat(filepath.Join(sysroot, "lib", "ld-linux-aarch64.so.1")); err != nil {
			missing(t, "no arm64 sysroot at %s (Debian: libc6-dev-arm64-cross)", sysroot)
		}
		if _, err := os.Stat(filepath.Join(sysroot, "lib", "libstdc++.so.6")); err != nil {
			missing(t, "no arm64 libstdc++ in %s, which libonnxruntime.so needs (Debian: libstdc++6-arm64-cross)", sysroot)
		}
		tc.qemu = []string{q, "-L", sysroot}
	}
	if _, err := exec.LookPath(tc.cc); err != nil {
		missing(t, "C compiler %s for linux/arm64 not found (Debian: gcc-aarch64-linux-gnu)", tc.cc)
	}
	tc.ortLib = filepath.Join(tc.root, ort.CacheDir("arm64"), "libonnxruntime.so")
	if _, err := os.Stat(tc.ortLib); err != nil {
		// The fetch script does nothing when the library is there and verified.
		out, err := tc.command(context.Background(), tc.root, nil, filepath.Join(tc.root, "scripts", "fetch-onnxruntime.sh"), "arm64").CombinedOutput()
		if err != nil {
			missing(t, "the arm64 ONNX Runtime library: scripts/fetch-onnxruntime.sh arm64: %v\n%s", err, out)
		}
	}
	return tc
}

// command makes a command with the test's environment changed by env: "K=V" sets, "K=" unsets.
func (tc toolchain) command(ctx context.Context, dir string, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = withEnv(os.Environ(), env...)
	return cmd
}

func withEnv(base []string, env ...string) []string {
	out := make([]string, 0, len(base)+len(env))
	drop := map[string]bool{}
	for _, kv := range env {
		drop[kv[:strings.IndexByte(kv, '=')+1]] = true
	}
	for _, kv := range base {
		if i := strings.IndexByte(kv, '='); i < 0 || !drop[kv[:i+1]] {
			out = append(out, kv)
		}
	}
	for _, kv := range env {
		if !strings.HasSuffix(kv, "=") {
			out = append(out, kv)
		}
	}
	return out
}

// crossEnv is the environment of a cgo build for linux/arm64.
func (tc toolchain) crossEnv() []string {
	return []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=1", "CC=" + tc.cc}
}

// arm64 runs an arm64 binary: under qemu-aarch64 on another host.
func (tc toolchain) arm64(ctx context.Context, dir string, env []string, bin string, args ...string) *exec.Cmd {
	if len(tc.qemu) == 0 {
		return tc.command(ctx, dir, env, bin, args...)
	}
	return tc.command(ctx, dir, env, tc.qemu[0], append(append(tc.qemu[1:len(tc.qemu):len(tc.qemu)], bin), args...)...)
}

// run runs cmd and returns its combined output, failing the test when it fails.
func run(t *testing.T, what string, cmd *exec.Cmd) string {
	t.Helper()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %.1fs", what, time.Since(start).Seconds())
	if err != nil {
		t.Fatalf("%s: %v\n$ %s\n%s", what, err, strings.Join(cmd.Args, " "), out)
	}
	return string(out)
}

func checkELF(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("%s is for %v, not arm64", path, f.Machine)
	}
}

// TestARM64 builds the firmware for linux/arm64 and runs it under qemu-aarch64:
//   - the runtime package's tests that compare ONNX Runtime logits and scores to PyTorch within
//     1e-5, on the arm64 library;
//   - the firmware tarball (scripts/cross-arm64.sh): its layout, oodguardd -version, and
//     -check-config on the example configuration;
//   - this package's own test binary, from inside the unpacked tarball so that it finds ONNX
//     Runtime the way the daemon does, printing the arm64 logits and scores of the test models,
//     which must equal the host's within 1e-5 relative.
func TestARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the arm64 cross-build under -short")
	}
	tc := findToolchain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	start := time.Now()
	defer func() { t.Logf("TestARM64 took %.1fs in all", time.Since(start).Seconds()) }()

	t.Run("runtime", func(t *testing.T) {
		bin := filepath.Join(tmp, "runtime.test")
		run(t, "cross-compile ./runtime tests for arm64",
			tc.command(ctx, tc.root, tc.crossEnv(), tc.goBin, "test", "-c", "-trimpath", "-o", bin, "./runtime"))
		checkELF(t, bin)
		// The tests' working directory is their package folder, as under go test; the library
		// is named explicitly, and a missing one is a failure, not a skip.
		out := run(t, "runtime tests under qemu-aarch64",
			tc.arm64(ctx, filepath.Join(tc.root, "runtime"), []string{"ONNXRUNTIME_LIB=" + tc.ortLib, "OODGUARD_REQUIRE_ORT=1"},
				bin, "-test.v", "-test.count=1", "-test.run", "^(TestLogitsAndScoresMatchPyTorch|TestOpenRejectsBadModels)$"))
		for _, name := range []string{"TestLogitsAndScoresMatchPyTorch", "TestOpenRejectsBadModels"} {
			if !strings.Contains(out, "--- PASS: "+name+" ") {
				t.Errorf("%s did not pass on arm64:\n%s", name, out)
			}
		}
		if strings.Contains(out, "--- SKIP") {
			t.Errorf("arm64 runtime tests skipped:\n%s", out)
		}
	})

	fw := filepath.Join(tmp, "rootfs")
	t.Run("firmware", func(t *testing.T) {
		dist := filepath.Join(tmp, "dist")
		run(t, "scripts/cross-arm64.sh arm64",
			tc.command(ctx, tc.root, []string{"VERSION=" + version, "DIST=" + dist, "GO=" + tc.goBin, "CC_ARM64=" + tc.cc},
				filepath.Join(tc.root, "scripts", "cross-arm64.sh"), "arm64"))
		tarball := filepath.Join(dist, "oodguardd-"+version+"-linux-arm64.tar.gz")
		checkTarball(t, tarball)
		if err := os.MkdirAll(fw, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "unpack", tc.command(ctx, tmp, nil, "tar", "-xzf", tarball, "-C", fw))
		daemon := filepath.Join(fw, "usr", "bin", "oodguardd") // the link, as the unit runs it
		checkELF(t, daemon)
		checkELF(t, filepath.Join(fw, "opt", "oodguard", "lib", "libonnxruntime.so"))

		out := run(t, "oodguardd -version under qemu-aarch64", tc.arm64(ctx, tmp, nil, daemon, "-version"))
		if want := "oodguardd " + version + "\n"; out != want {
			t.Errorf("oodguardd -version printed %q, want %q", out, want)
		}
		usage, _ := tc.arm64(ctx, tmp, nil, daemon, "-h").CombinedOutput()
		if !bytes.Contains(usage, []byte("-check-config")) {
			t.Logf("this oodguardd has no -check-config yet; not checking the example configuration with it")
			return
		}
		// -check-config opens the model the configuration names: point the example's factory
		// model at the test model (the rest is checked as it ships).
		shipped, err := os.ReadFile(filepath.Join(fw, "etc", "oodguard", "oodguardd.example.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		models := filepath.Join(tc.root, "testdata", "models")
		example := filepath.Join(tmp, "oodguardd.example.yaml")
		edited := strings.NewReplacer(
			"/var/lib/oodguard/model/model.onnx", filepath.Join(models, "cnn28.onnx"),
			"/var/lib/oodguard/model/calibration.json", filepath.Join(models, "cnn28.calibration.json"),
		).Replace(string(shipped))
		if err := os.WriteFile(example, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		out = run(t, "oodguardd -check-config on the example configuration",
			tc.arm64(ctx, tmp, []string{"OODGUARDD_CONFIG=", ort.EnvLibrary + "="}, daemon, "-check-config", "-config", example))
		if !strings.Contains(out, "is valid") {
			t.Errorf("oodguardd -check-config: %s", out)
		}
	})

	t.Run("logits", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(fw, "opt", "oodguard", "lib", "libonnxruntime.so")); err != nil {
			t.Skip("no unpacked firmware (see the firmware subtest)")
		}
		hostLib, err := ort.FindLibrary("")
		if err != nil {
			missing(t, "the host's ONNX Runtime, to compare with: %v", err)
		}
		// This package's tests, for arm64, placed in the firmware tree next to the daemon.
		bin := filepath.Join(fw, "opt", "oodguard", "crossbuild.test")
		run(t, "cross-compile ./firmware/crossbuild tests for arm64",
			tc.command(ctx, tc.root, tc.crossEnv(), tc.goBin, "test", "-c", "-trimpath", "-o", bin, "./firmware/crossbuild"))
		link := filepath.Join(fw, "usr", "bin", "crossbuild.test")
		if err := os.Symlink("../../opt/oodguard/crossbuild.test", link); err != nil {
			t.Fatal(err)
		}
		models := filepath.Join(tc.root, "testdata", "models")
		helperArgs := []string{"-test.run", "^TestHelperLogits$", "-test.count=1"}

		// arm64: no ONNXRUNTIME_LIB, and a working directory outside the repository, so the
		// library can only come from the executable's folder: <exe dir>/lib/libonnxruntime.so.
		armOut := filepath.Join(tmp, "arm64.json")
		run(t, "arm64 logits under qemu-aarch64",
			tc.arm64(ctx, tmp, []string{"ONNXRUNTIME_LIB=", helperEnv + "=1", helperModels + "=" + models, helperOut + "=" + armOut}, link, helperArgs...))
		hostOut := filepath.Join(tmp, "host.json")
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		run(t, "host logits", tc.command(ctx, tmp, []string{"ONNXRUNTIME_LIB=" + hostLib, helperEnv + "=1", helperModels + "=" + models, helperOut + "=" + hostOut}, self, helperArgs...))

		arm, host := readLogits(t, armOut), readLogits(t, hostOut)
		wantLib, _ := filepath.EvalSymlinks(filepath.Join(fw, "opt", "oodguard", "lib", "libonnxruntime.so"))
		if gotLib, _ := filepath.EvalSymlinks(arm.Library); gotLib != wantLib {
			t.Errorf("arm64 daemon tree loaded ONNX Runtime from %s, want %s (<exe dir>/lib)", arm.Library, wantLib)
		}
		if arm.GOARCH != "arm64" || arm.ORT != ort.ORTVersion {
			t.Errorf("arm64 helper ran as %s with ONNX Runtime %s", arm.GOARCH, arm.ORT)
		}
		t.Logf("arm64: ONNX Runtime %s from %s; host (%s): %s from %s", arm.ORT, arm.Library, host.GOARCH, host.ORT, host.Library)
		compareLogits(t, arm, host)
	})
}

// checkTarball checks the firmware tarball's entries, modes and link.
func checkTarball(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("tar", "-tvzf", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -t %s: %v\n%s", path, err, out)
	}
	want := map[string]string{ // name: mode prefix
		"opt/oodguard/oodguardd":                   "-rwxr-xr-x",
		"opt/oodguard/lib/libonnxruntime.so":       "-rw-r--r--",
		"usr/bin/oodguardd":                        "lrwxrwxrwx",
		"usr/lib/systemd/system/oodguardd.service": "-rw-r--r--",
		"etc/oodguard/oodguardd.example.yaml":      "-rw-r--r--",
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("tar -tv line %q", line)
		}
		name := f[5]
		if mode, ok := want[name]; ok {
			if f[0] != mode {
				t.Errorf("%s: mode %s, want %s", name, f[0], mode)
			}
			if f[1] != "0/0" {
				t.Errorf("%s: owner %s, want 0/0", name, f[1])
			}
			if name == "usr/bin/oodguardd" && (len(f) < 8 || f[7] != "../../opt/oodguard/oodguardd") {
				t.Errorf("usr/bin/oodguardd: %q, want a link to ../../opt/oodguard/oodguardd", line)
			}
			delete(want, name)
		} else if !strings.HasSuffix(name, "/") {
			t.Errorf("unexpected entry %s", name)
		}
	}
	for name := range want {
		t.Errorf("firmware tarball lacks %s", name)
	}
}

// helperResult is what TestHelperLogits writes.
type helperResult struct {
	GOARCH  string                  `json:"goarch"`
	ORT     string                  `json:"ort"`
	Library string                  `json:"library"`
	Models  map[string]helperLogits `json:"models"`
}

type helperLogits struct {
	Classes int         `json:"classes"`
	Logits  [][]float32 `json:"logits"`
	Energy  []float64   `json:"energy"` // T = 1, computed on the helper's architecture
}

func readLogits(t *testing.T, path string) helperResult {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r helperResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

// compareLogits asks arm64 and the host to agree within relTol: logits relative to the row's
// largest |logit| (as the runtime tests do against PyTorch), energies relative to themselves.
func compareLogits(t *testing.T, arm, host helperResult) {
	t.Helper()
	for _, name := range testModels {
		a, h := arm.Models[name], host.Models[name]
		if len(a.Logits) == 0 || len(a.Logits) != len(h.Logits) || len(a.Energy) != len(h.Energy) {
			t.Errorf("%s: arm64 gave %d rows, host %d", name, len(a.Logits), len(h.Logits))
			continue
		}
		var maxAbs, maxRel, maxErel float64
		for i := range a.Logits {
			scale := 0.0
			for _, v := range h.Logits[i] {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
			for k := range h.Logits[i] {
				d := math.Abs(float64(a.Logits[i][k]) - float64(h.Logits[i][k]))
				maxAbs = math.Max(maxAbs, d)
				maxRel = math.Max(maxRel, d/scale)
				if d > relTol*scale {
					t.Errorf("%s image %d logit %d: arm64 %.9g, %s %.9g", name, i, k, a.Logits[i][k], host.GOARCH, h.Logits[i][k])
				}
			}
			de := math.Abs(a.Energy[i] - h.Energy[i])
			rel := de / math.Max(math.Abs(h.Energy[i]), math.SmallestNonzeroFloat64)
			maxErel = math.Max(maxErel, rel)
			if rel > relTol {
				t.Errorf("%s image %d energy: arm64 %.9g, %s %.9g", name, i, a.Energy[i], host.GOARCH, h.Energy[i])
			}
		}
		t.Logf("%s: %d images x %d logits; arm64 vs %s: max |diff| %.3g, max rel (to row max) %.3g; energy max rel %.3g",
			name, len(a.Logits), a.Classes, host.GOARCH, maxAbs, maxRel, maxErel)
		for i := 0; i < len(a.Logits) && i < 3; i++ {
			t.Logf("  image %d: energy arm64 %.9g  %s %.9g; logit[0] arm64 %.9g  %s %.9g",
				i, a.Energy[i], host.GOARCH, h.Energy[i], a.Logits[i][0], host.GOARCH, h.Logits[i][0])
		}
	}
}

// TestHelperLogits is not a test: TestARM64 runs this package's test binary with
// OODGUARD_CROSSBUILD_HELPER=1 (for arm64 under qemu, and for the host) to have it write the
// test models' logits and energies, as JSON, to $OODGUARD_CROSSBUILD_OUT.
func TestHelperLogits(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestARM64")
	}
	lib, err := ort.Setup("")
	if err != nil {
		t.Fatal(err)
	}
	res := helperResult{GOARCH: goruntime.GOARCH, ORT: ort.Version(), Library: lib, Models: map[string]helperLogits{}}
	dir := os.Getenv(helperModels)
	for _, name := range testModels {
		c, err := ort.Open(filepath.Join(dir, name+".onnx"), ort.Options{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, name+".input.f32"))
		if err != nil {
			t.Fatal(err)
		}
		s := c.Shape()
		per := s.InputLen(1)
		if len(raw) == 0 || len(raw)%(4*per) != 0 {
			t.Fatalf("%s.input.f32: %d bytes is not a whole number of %d-value images", name, len(raw), per)
		}
		in := make([]float32, len(raw)/4)
		for i := range in {
			in[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		n := len(in) / per
		r, err := c.NewRunner(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetInput(in); err != nil {
			t.Fatal(err)
		}
		z, err := r.Run()
		if err != nil {
			t.Fatal(err)
		}
		m := helperLogits{Classes: s.Classes}
		for i := 0; i < n; i++ {
			row := append([]float32(nil), z[i*s.Classes:(i+1)*s.Classes]...)
			e, err := score.Energy(row, 1)
			if err != nil {
				t.Fatal(err)
			}
			m.Logits = append(m.Logits, row)
			m.Energy = append(m.Energy, e)
		}
		r.Close()
		c.Close()
		res.Models[name] = m
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(helperOut), b, 0o644); err != nil {
		t.Fatalf("$%s: %v", helperOut, err)
	}
}

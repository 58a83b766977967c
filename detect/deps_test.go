package detect

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies checks that the package links neither the training stack nor any other
// oodguard package: the ONNX protobuf types come from compute-onnx's protos package, which
// needs only google.golang.org/protobuf.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave an implausible list: %v", deps)
	}
	for _, d := range deps {
		switch {
		case d == "github.com/gomlx/compute-onnx/support/protos", d == "github.com/oodguard/oodguard/detect":
		case strings.HasPrefix(d, "github.com/gomlx/"), strings.HasPrefix(d, "github.com/oodguard/oodguard/"):
			t.Errorf("detect links %s", d)
		case strings.Contains(d, "."): // third-party
			if !strings.HasPrefix(d, "google.golang.org/protobuf/") {
				t.Errorf("detect links %s", d)
			}
		}
	}
}

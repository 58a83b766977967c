package detect

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies checks that the package links neither the training stack (GoMLX,
// unleash) nor the layers that will use it (calibrate, guard, firmware): the ONNX protobuf types
// come from compute-onnx's protos package, which needs only google.golang.org/protobuf, and ONNX
// Runtime through the runtime package.
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
		case d == "github.com/gomlx/compute-onnx/support/protos":
		case strings.HasPrefix(d, "github.com/gomlx/"), // the training stack
			strings.HasPrefix(d, "github.com/oodguard/oodguard/unleash"),
			strings.HasPrefix(d, "github.com/oodguard/oodguard/calibrate"),
			strings.HasPrefix(d, "github.com/oodguard/oodguard/guard"),
			strings.HasPrefix(d, "github.com/oodguard/oodguard/firmware"),
			strings.HasPrefix(d, "gonum.org/"):
			t.Errorf("detect links %s", d)
		}
	}
}

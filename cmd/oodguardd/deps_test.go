package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEdgeBinaryDependencies checks that the device daemon links none of the host-side
// training, plotting or reporting code.
func TestEdgeBinaryDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !contains(deps, "github.com/oodguard/oodguard/runtime") {
		t.Fatalf("go list -deps gave an implausible list: %v", deps)
	}
	banned := []string{
		"github.com/gomlx/",                    // training stack
		"gonum.org/v1/plot",                    // report plots
		"github.com/oodguard/oodguard/unleash", // Unleashing Mask training
		"github.com/oodguard/oodguard/calibrate/report",
		"github.com/oodguard/oodguard/detect", // fitting detectors: the daemon only reads their graph output
		"github.com/schollz/progressbar",      // workstation progress bars
	}
	for _, d := range deps {
		for _, b := range banned {
			if strings.HasPrefix(d, b) {
				t.Errorf("oodguardd links %s", d)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

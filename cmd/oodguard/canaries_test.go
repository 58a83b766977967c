package main

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/firmware/bundle"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

func TestBundleCanaries(t *testing.T) {
	runtimetest.Setup(t)
	keys := keygen(t, "oodguard")
	out := makeBundle(t, keys, "1.0.0", "-canaries", filepath.Join(runtimetest.RepoRoot(t), "testdata", "frames"), "-canary-count", "3")
	kr, err := bundle.LoadKeyring(filepath.Join(keys, "oodguard.pub"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(out, kr, bundle.Options{StagingDir: filepath.Join(t.TempDir(), "slot")})
	if err != nil {
		t.Fatal(err)
	}
	cs := b.Manifest.Canaries
	if len(cs) != 3 || cs[0].Name != "id-fashion-000" {
		t.Fatalf("canaries %+v", cs)
	}
	// The first sample frame is the first reference image of cnn28 (Fashion-MNIST test image
	// 0): its energy is 8.3789 (oodguard score on testdata/frames).
	if math.Abs(cs[0].Expected-8.378873) > 1e-4 || cs[0].Tolerance < 1e-3 {
		t.Errorf("canary 0 expects %v ± %v", cs[0].Expected, cs[0].Tolerance)
	}
	x, err := b.CanaryInput(0)
	if err != nil || len(x) != 28*28 {
		t.Fatalf("canary input: %d values, %v", len(x), err)
	}
}

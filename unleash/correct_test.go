package unleash_test

import (
	"testing"

	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
)

// TestStepCorrect checks StepResult.Correct against the argmax of the logits the step saw: with
// BatchNorm in inference mode, the training forward pass computes the same logits as Logits.
func TestStepCorrect(t *testing.T) {
	data, err := arch.Build(arch.Config{Arch: arch.CNN28, Classes: 4, Input: [3]int{1, 12, 12}, Width: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	opts := unleash.DefaultOptions(unleash.UM)
	opts.BatchNormEval = true
	tr, err := unleash.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	x, _ := randomBatch(m, n, 4, 5)
	z, err := tr.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	// Label half the images with their predicted class, the other half with another one.
	y := make([]int, n)
	for i := range n {
		best := 0
		for k := range 4 {
			if z[i*4+k] > z[i*4+best] {
				best = k
			}
		}
		y[i] = best
		if i%2 == 1 {
			y[i] = (best + 1) % 4
		}
	}
	r, err := tr.Step(x, y, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if r.Correct != n/2 {
		t.Errorf("Correct = %d, want %d", r.Correct, n/2)
	}
	ep, err := tr.TrainEpoch(unleash.Slices(x, y, 8), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Correct < 0 || ep.Correct > n || ep.Images != n {
		t.Errorf("epoch: %d correct of %d images", ep.Correct, ep.Images)
	}
}

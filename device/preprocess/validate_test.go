package preprocess

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := func() Spec {
		return Spec{Width: 4, Height: 2, Channels: 3, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.2, 0.2, 0.2}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Spec)
	}{
		{"width", func(s *Spec) { s.Width = 0 }},
		{"width", func(s *Spec) { s.Width = MaxSide + 1 }},
		{"height", func(s *Spec) { s.Height = -3 }},
		{"channels", func(s *Spec) { s.Channels = 2 }},
		{"mean", func(s *Spec) { s.Mean = s.Mean[:1] }},
		{"std", func(s *Spec) { s.Std = nil }},
		{"std[1]", func(s *Spec) { s.Std[1] = 0 }},
		{"std[2]", func(s *Spec) { s.Std[2] = float32(math.NaN()) }},
		{"std[0]", func(s *Spec) { s.Std[0] = float32(math.Inf(1)) }},
		{"mean[0]", func(s *Spec) { s.Mean[0] = float32(math.Inf(-1)) }},
		{"layout", func(s *Spec) { s.Layout = "NHWC" }},
		{"resize", func(s *Spec) { s.Resize = "fit" }},
	} {
		s := good()
		tc.edit(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("spec %+v: Validate = %v, want an error naming %s", s, err, tc.field)
		}
	}
	s := good()
	s.Layout, s.Resize = LayoutNCHW, ResizeCenterCrop
	if err := s.Validate(); err != nil {
		t.Errorf("explicit layout and resize: %v", err)
	}
}

func TestPresets(t *testing.T) {
	for name, s := range map[string]Spec{"FashionMNIST": FashionMNIST(), "CIFAR10": CIFAR10()} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := FashionMNIST().InputShape(); got != [3]int{1, 28, 28} {
		t.Errorf("FashionMNIST shape %v", got)
	}
	c := CIFAR10()
	if got := c.InputShape(); got != [3]int{3, 32, 32} {
		t.Errorf("CIFAR10 shape %v", got)
	}
	if c.Mean[0] != float32(125.3/255) || c.Std[2] != float32(66.7/255) {
		t.Errorf("CIFAR10 mean %v std %v", c.Mean, c.Std)
	}
	// Presets are fresh values: editing one does not change the next.
	c.Mean[0] = 9
	if CIFAR10().Mean[0] == 9 {
		t.Error("CIFAR10 shares its Mean slice between calls")
	}
	// The JSON names stay those of spec.go.
	b, err := json.Marshal(FashionMNIST())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"width":28`, `"height":28`, `"channels":1`, `"resize":"stretch"`, `"mean":[0.286]`, `"std":[0.353]`, `"layout":"NCHW"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
}

package detect

import (
	"errors"
	"fmt"
	"strings"
)

// Chain applies shaping detectors one after the other: the feature steps (ReAct, ASH) in the
// given order, then the final layer with DICE's masked weight if a DICE step is there (DICE +
// ReAct is the DICE paper's best combination). Like its steps, it changes the logits.
type Chain struct {
	Steps []Shaper
	head  *Head
}

// NewChain chains shaping detectors of the same model. At most one DICE step is allowed.
func NewChain(steps ...Shaper) (*Chain, error) {
	if len(steps) < 2 {
		return nil, errors.New("detect: a chain needs at least two shaping detectors")
	}
	c := &Chain{Steps: steps, head: steps[0].headOf()}
	dice := 0
	for _, s := range steps {
		if s == nil {
			return nil, errors.New("detect: chain: a nil step")
		}
		if s.headOf() != c.head {
			return nil, fmt.Errorf("detect: chain: %s belongs to another model", s.Name())
		}
		switch s.(type) {
		case *DICE:
			dice++
		case *Chain:
			return nil, errors.New("detect: chain: a chain inside a chain")
		}
	}
	if dice > 1 {
		return nil, errors.New("detect: chain: more than one DICE step")
	}
	return c, nil
}

func (c *Chain) Name() string {
	names := make([]string, len(c.Steps))
	for i, s := range c.Steps {
		names[i] = s.Name()
	}
	return strings.Join(names, "+")
}

func (c *Chain) Shaping() bool { return true }

func (c *Chain) Spec() Spec {
	s := Spec{Method: "chain", Output: c.head.Logits}
	for _, st := range c.Steps {
		s.Steps = append(s.Steps, st.Spec())
	}
	return s
}

func (c *Chain) Score(feats []float32, n int) ([]float64, error)  { return shapedEnergy(c, feats, n) }
func (c *Chain) Logits(feats []float32, n int) ([]float64, error) { return shapedLogits(c, feats, n) }
func (c *Chain) headOf() *Head                                    { return c.head }

func (c *Chain) shapeFeatures(x []float64, n int) {
	for _, s := range c.Steps {
		s.shapeFeatures(x, n)
	}
}

func (c *Chain) shapeWeight(w []float64) []float64 {
	for _, s := range c.Steps {
		w = s.shapeWeight(w)
	}
	return w
}

func (c *Chain) write(e *editor) error {
	for _, s := range c.Steps {
		if err := s.write(e); err != nil {
			return err
		}
	}
	return nil
}

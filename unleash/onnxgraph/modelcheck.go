package onnxgraph

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph-building code reads as math
	"github.com/gomlx/gomlx/support/exceptions"
)

// Check builds, without running them, the graphs that unleash and ODIN build from the model: the
// training graph (batch statistics, explicit gradients as on the ONNX Runtime backend) with the
// gradients of every parameter, and the inference graph with the gradient of the input. Parse
// checks op types and which inputs must be constants; Check finds what only building shows
// (attributes the builder does not support, shapes that do not fit) and returns the first such
// error, naming the node. A model whose BatchNorm runs in training mode fails (CheckInference).
func (m *Model) Check() error {
	if err := m.CheckInference(); err != nil {
		return fmt.Errorf("onnxgraph: %w", err)
	}
	be, err := gobackend.New("ops_sequential")
	if err != nil {
		return fmt.Errorf("onnxgraph: %w", err)
	}
	defer be.Finalize()
	batch := 2
	if m.Batch > 0 {
		batch = m.Batch
	}
	for _, mode := range []Mode{Training, Inference} {
		err := exceptions.TryCatch[error](func() {
			g := NewGraph(be, "check")
			defer g.Finalize()
			x := Parameter(g, "x", shapes.Make(dtypes.Float32, batch, m.Channels, m.Height, m.Width))
			values := map[string]*Node{}
			var wrt []*Node
			for _, p := range m.Params {
				values[p.Name] = Parameter(g, p.Name, shapes.Make(dtypes.Float32, p.Dims...))
				if mode == Training && p.Role != RoleBNMean && p.Role != RoleBNVar {
					wrt = append(wrt, values[p.Name])
				}
			}
			if mode == Inference {
				wrt = append(wrt, x)
			}
			logits, _ := m.BuildWith(x, values, Options{Mode: mode, SubsampleStrided: true, ExplicitConvGradients: true,
				ExplicitMaxPoolGradients: true, ExplicitBatchNormGradients: true})
			if len(wrt) > 0 {
				Gradient(ReduceAllSum(logits), wrt...)
			}
		})
		if err != nil {
			if m.Batch > 0 {
				return fmt.Errorf("%w (the model's batch size is fixed at %d: export it with a dynamic batch axis)", err, m.Batch)
			}
			return err
		}
	}
	return nil
}

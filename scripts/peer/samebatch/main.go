// Command samebatch runs oodguard's unleash.Trainer (UM, the ONNX Runtime backend, as `oodguard
// unleash` runs it) for a number of SGD steps over the training images in their stored order
// (batch i = images i*B..(i+1)*B, no shuffling), at a constant learning rate, printing the loss
// and cross-entropy of every step, and writes the model. scripts/peer/samebatch.py does the same
// steps with the PyTorch peer, so that the two can be compared step by step with the data order
// taken out (docs/peer.md).
// Usage: go run ./scripts/peer/samebatch -model M.onnx -data TRAIN.gz -steps 78 -lr 0.1 -constraint C -out OUT.onnx
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	urun "github.com/oodguard/oodguard/unleash/run"
)

func main() {
	model := flag.String("model", "", "start ONNX model")
	data := flag.String("data", "", "training images")
	steps := flag.Int("steps", 78, "SGD steps")
	batch := flag.Int("batch", 128, "batch size")
	lr := flag.Float64("lr", 0.1, "constant learning rate")
	c := flag.Float64("constraint", 0, "flooding level")
	out := flag.String("out", "", "output ONNX model")
	grads := flag.String("grads", "", "write the gradients of the first batch (before any step) as JSON here")
	flag.Parse()
	if err := run(*model, *data, *steps, *batch, *lr, *c, *out, *grads); err != nil {
		fmt.Fprintln(os.Stderr, "samebatch:", err)
		os.Exit(1)
	}
}

func run(model, data string, steps, batch int, lr, c float64, out, grads string) error {
	b, err := os.ReadFile(strings.TrimSuffix(model, ".onnx") + ".preprocess.json")
	if err != nil {
		return err
	}
	var spec preprocess.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	r, err := dataset.Open(data, dataset.Options{Layout: dataset.LayoutAuto})
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := urun.Load(context.Background(), data, r, spec, 0, true)
	if err != nil {
		return err
	}
	m, err := onnxgraph.Load(model)
	if err != nil {
		return err
	}
	if _, err := ort.Setup(""); err != nil {
		return err
	}
	be, err := unleash.NewBackend("onnx")
	if err != nil {
		return err
	}
	o := unleash.DefaultOptions(unleash.UM)
	o.Constraint, o.LR, o.Epochs, o.Backend = c, lr, steps, be
	t, err := unleash.New(m, o)
	if err != nil {
		return err
	}
	per := d.C * d.H * d.W
	if grads != "" {
		g, err := t.Gradients(d.X[:batch*per], d.Labels[:batch])
		if err != nil {
			return err
		}
		b, err := json.Marshal(map[string]any{"loss": g.Loss, "ce": g.CE, "grads": g.Trained})
		if err != nil {
			return err
		}
		if err := os.WriteFile(grads, b, 0o644); err != nil {
			return err
		}
	}
	for s := range steps {
		i := (s * batch) % (d.Len() - batch + 1)
		res, err := t.Step(d.X[i*per:(i+batch)*per], d.Labels[i:i+batch], lr)
		if err != nil {
			return err
		}
		fmt.Printf("step %d loss %.7g ce %.7g\n", s+1, res.Loss, res.CE)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := t.Export(f); err != nil {
		return err
	}
	return f.Close()
}

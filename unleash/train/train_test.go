package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/dataset/datasettest"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/runtime/runtimetest"
	"github.com/oodguard/oodguard/unleash"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/onnxgraph"
	"github.com/oodguard/oodguard/unleash/train"
	"github.com/oodguard/oodguard/unleash/train/traintest"
)

const size = 12

func spec12() preprocess.Spec {
	return preprocess.Spec{Width: size, Height: size, Channels: 1, Mean: []float32{0.3}, Std: []float32{0.3}}
}

// TestBatcher checks the augmented batches against a direct implementation of torchvision's
// pad-crop-flip and preprocess's normalisation.
func TestBatcher(t *testing.T) {
	set := traintest.Squares(10, 4, size, 1)
	sp := spec12()
	pp, err := preprocess.New(sp)
	if err != nil {
		t.Fatal(err)
	}
	for _, aug := range []train.Augment{{}, {Crop: 3}, {Flip: true}, {Crop: 2, Flip: true}} {
		b, err := train.NewBatcher(set, sp, 4, aug, 9)
		if err != nil {
			t.Fatal(err)
		}
		if b.Steps() != 2 {
			t.Fatalf("%d steps, want 2 (10 images, batch 4, last partial batch dropped)", b.Steps())
		}
		seen := map[int]bool{}
		for batch, err := range b.Epoch(0) {
			if err != nil {
				t.Fatal(err)
			}
			for j, label := range batch.Labels {
				got := batch.X[j*size*size : (j+1)*size*size]
				// Find the source image and shift that explain got.
				found := false
				for i := range set.Len() {
					if set.Labels[i] != label || seen[i] {
						continue
					}
					if matchAugmented(t, pp, set, i, got, aug) {
						seen[i], found = true, true
						break
					}
				}
				if !found {
					t.Fatalf("%+v: image %d of a batch is no crop/flip of a training image of its label", aug, j)
				}
			}
		}
		if len(seen) != 8 {
			t.Errorf("%+v: an epoch used %d distinct images, want 8", aug, len(seen))
		}
	}
	// Same seed and epoch, same batches; another epoch, another order.
	b, _ := train.NewBatcher(set, sp, 4, train.Augment{Crop: 2, Flip: true}, 9)
	first := func(epoch int) ([]float32, []int) {
		for batch := range b.Epoch(epoch) {
			return slices.Clone(batch.X), slices.Clone(batch.Labels)
		}
		return nil, nil
	}
	x0, y0 := first(0)
	x1, _ := first(0)
	x2, y2 := first(1)
	if !slices.Equal(x0, x1) {
		t.Error("epoch 0 twice gave different batches")
	}
	if slices.Equal(x0, x2) && slices.Equal(y0, y2) {
		t.Error("epochs 0 and 1 gave the same first batch")
	}
}

// matchAugmented reports whether got is image i of set padded with black, cropped at some offset
// and maybe flipped, normalised as pp does.
func matchAugmented(t *testing.T, pp *preprocess.Preprocessor, set *train.Images, i int, got []float32, aug train.Augment) bool {
	src := set.Pix[i*size*size : (i+1)*size*size]
	for dy := -aug.Crop; dy <= aug.Crop; dy++ {
		for dx := -aug.Crop; dx <= aug.Crop; dx++ {
			for _, flip := range []bool{false, true} {
				if flip && !aug.Flip {
					continue
				}
				g := image.NewGray(image.Rect(0, 0, size, size))
				for y := range size {
					for x := range size {
						wx := x
						if flip {
							wx = size - 1 - x
						}
						sy, sx := y+dy, wx+dx
						if sy >= 0 && sy < size && sx >= 0 && sx < size {
							g.Pix[y*size+x] = src[sy*size+sx]
						}
					}
				}
				want := make([]float32, size*size)
				if err := pp.Process(want, g); err != nil {
					t.Fatal(err)
				}
				if slices.Equal(got, want) {
					return true
				}
			}
		}
	}
	return false
}

// TestLoad reads an IDX set back into memory with its exact pixels.
func TestLoad(t *testing.T) {
	set := traintest.Squares(20, 4, size, 2)
	path := traintest.WriteIDX(t, t.TempDir(), "sq", set)
	r, err := dataset.Open(path, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := train.Load(context.Background(), r, spec12(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Pix, set.Pix) || !slices.Equal(got.Labels, set.Labels) || got.Shape != set.Shape {
		t.Error("loaded set differs from the written one")
	}
	if got.NumClasses() != 4 {
		t.Errorf("%d classes, want 4", got.NumClasses())
	}
	sub := got.Subset(7, 1)
	if sub.Len() != 7 || len(sub.Pix) != 7*size*size {
		t.Errorf("subset of %d images, %d pixels", sub.Len(), len(sub.Pix))
	}
}

// squaresValidation is the validation of the tests' runs: the labelled IDX set idVal as "val"
// and the unlabelled oodVal as "ood", scored with one ONNX Runtime thread.
func squaresValidation(idVal, oodVal string) train.Validation {
	open := func(path string, unlabeled bool) func() (dataset.Reader, error) {
		return func() (dataset.Reader, error) { return dataset.Open(path, dataset.Options{Unlabeled: unlabeled}) }
	}
	return train.Validation{
		ID:  &train.Source{Name: "val", Open: open(idVal, false)},
		OOD: &train.Source{Name: "ood", Open: open(oodVal, true)},
		ORT: ort.Options{IntraOpThreads: 1},
	}
}

// TestRun trains the small CNN for a few tiny epochs on the ONNX Runtime backend and checks the
// loss falls, the checkpoints run in ONNX Runtime as GoMLX computes them, and train.json and
// the plot are written.
func TestRun(t *testing.T) {
	runtimetest.Setup(t)
	dir := t.TempDir()
	set := traintest.Squares(384, 4, size, 3)
	idVal := traintest.WriteIDX(t, dir, "val", traintest.Squares(64, 4, size, 4))
	oodVal, _ := datasettest.WriteIDX(t, dir, "ood", 50, size, size)
	cfg := train.DefaultConfig()
	cfg.Arch = arch.Config{Arch: arch.CNN28, Width: 8}
	cfg.Spec = spec12()
	cfg.Epochs, cfg.Batch, cfg.LR = 3, 32, 0.05
	cfg.Augment = train.Augment{Crop: 1}
	cfg.Out = filepath.Join(dir, "out")
	val := squaresValidation(idVal, oodVal)
	var steps, epochs int
	hooks := train.Hooks{
		Step:  func(epoch, done, total int) { steps++ },
		Epoch: func(e train.Epoch) { epochs++ },
	}
	log, err := train.Run(context.Background(), cfg, set, "squares", val, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if steps != 3*12 || epochs != 3 {
		t.Errorf("hooks saw %d steps and %d epochs, want 36 and 3", steps, epochs)
	}
	for _, e := range log.Runs {
		t.Logf("epoch %d: lr %.4f loss %.4f train %.3f val %.3f fpr95 %.3f auroc %.3f (%.2fs + %.2fs)",
			e.Epoch, e.LR, e.Loss, e.TrainAcc, *e.ValAcc, *e.FPR95, *e.AUROC, e.TrainSec, e.EvalSec)
	}
	first, last := log.Runs[0], log.Runs[len(log.Runs)-1]
	if !(last.Loss < first.Loss) || !(last.Loss < 0.8*math.Log(4)) {
		t.Errorf("loss %.4f -> %.4f: did not fall below 0.8 ln 4", first.Loss, last.Loss)
	}
	if *last.ValAcc < 0.8 {
		t.Errorf("validation accuracy %.3f, want >= 0.8 on this easy set", *last.ValAcc)
	}
	for _, name := range []string{"train.json", "train.png", "epoch-001.onnx", "epoch-003.onnx", "epoch-003.preprocess.json"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, name)); err != nil {
			t.Error(err)
		}
	}
	var back train.Log
	b, err := os.ReadFile(filepath.Join(cfg.Out, "train.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 3 || back.Arch != "cnn28 w8" || back.Classes != 4 || back.OODVal == nil || back.OODVal.Count != 50 {
		t.Errorf("train.json: %d epochs, arch %q, %d classes, ood %+v", len(back.Runs), back.Arch, back.Classes, back.OODVal)
	}

	if last.TrainAcc < 0.6 {
		t.Errorf("train accuracy %.3f, want >= 0.6", last.TrainAcc)
	}
	// The checkpoint, BatchNorm statistics included, runs the same in ONNX Runtime and GoMLX.
	ckpt := filepath.Join(cfg.Out, "epoch-003.onnx")
	checkORT(t, ckpt, set, cfg.Spec)
	m, err := onnxgraph.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params {
		if p.Role == onnxgraph.RoleBNVar && slices.Equal(p.Data, slices.Repeat([]float32{1}, len(p.Data))) {
			t.Errorf("%s: running variance still all ones: training did not update it", p.Name)
		}
	}
	// The checkpoint records the augmentation it was trained with (unleash's default).
	crop, okc := m.Metadata(train.MetadataCrop)
	flip, okf := m.Metadata(train.MetadataFlip)
	if crop != "1" || flip != "false" || !okc || !okf {
		t.Errorf("checkpoint metadata crop %q (%v), flip %q (%v); want \"1\" and \"false\"", crop, okc, flip, okf)
	}
	if arch, _ := m.Metadata("oodguard.arch"); arch != "cnn28 w8" {
		t.Errorf("checkpoint metadata oodguard.arch %q, want the arch's own entry kept", arch)
	}

	// A second run into the same folder is refused.
	if _, err := train.Run(context.Background(), cfg, set, "squares", train.Validation{}, train.Hooks{}); !errors.Is(err, train.ErrExists) {
		t.Errorf("second run into %s: %v, want ErrExists", cfg.Out, err)
	}
}

func TestRunErrors(t *testing.T) {
	set := traintest.Squares(40, 4, size, 3)
	base := train.DefaultConfig()
	base.Arch = arch.Config{Arch: arch.CNN28, Width: 4}
	base.Spec = spec12()
	base.Epochs, base.Batch = 1, 8
	base.Backend = "go"
	for _, tc := range []struct {
		name string
		edit func(*train.Config, *train.Validation)
		is   error
	}{
		{"unknown arch", func(c *train.Config, _ *train.Validation) { c.Arch.Arch = "vgg" }, arch.ErrArch},
		{"labels beyond classes", func(c *train.Config, _ *train.Validation) { c.Arch.Classes = 3 }, unleash.ErrLabel},
		{"batch larger than the set", func(c *train.Config, _ *train.Validation) { c.Batch = 64 }, nil},
		{"no epochs", func(c *train.Config, _ *train.Validation) { c.Epochs = 0 }, nil},
		{"negative lr", func(c *train.Config, _ *train.Validation) { c.LR = -1 }, nil},
		{"spec of another size", func(c *train.Config, _ *train.Validation) { c.Spec.Width = 28 }, nil},
		{"crop as large as the image", func(c *train.Config, _ *train.Validation) { c.Augment.Crop = size }, nil},
		{"unknown backend", func(c *train.Config, _ *train.Validation) { c.Backend = "tpu" }, nil},
		{"ood without id", func(_ *train.Config, v *train.Validation) {
			v.OOD = &train.Source{Name: "x", Open: func() (dataset.Reader, error) { return nil, errors.New("unused") }}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, val := base, train.Validation{}
			cfg.Out = filepath.Join(t.TempDir(), "out")
			tc.edit(&cfg, &val)
			_, err := train.Run(context.Background(), cfg, set, "squares", val, train.Hooks{})
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestRunResNet trains the ResNet (strided convolutions, projection shortcuts) for one epoch on
// each backend.
func TestRunResNet(t *testing.T) {
	runtimetest.Setup(t)
	set := traintest.Squares(64, 4, size, 5)
	for _, backend := range []string{"onnx", "go"} {
		t.Run(backend, func(t *testing.T) {
			cfg := train.DefaultConfig()
			cfg.Arch = arch.Config{Arch: arch.ResNet, Width: 4}
			cfg.Spec = spec12()
			cfg.Epochs, cfg.Batch, cfg.Backend = 1, 16, backend
			cfg.Out = filepath.Join(t.TempDir(), "out")
			log, err := train.Run(context.Background(), cfg, set, "squares", train.Validation{}, train.Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if e := log.Runs[0]; math.IsNaN(e.Loss) || e.Images != 64 || log.Arch != "resnet w4 blocks 1,1,1" {
				t.Errorf("log %+v, epoch %+v", log, e)
			}
			checkORT(t, filepath.Join(cfg.Out, "epoch-001.onnx"), set, cfg.Spec)
		})
	}
}

// checkORT checks that ONNX Runtime computes the checkpoint's logits as the GoMLX import does.
func checkORT(t *testing.T, ckpt string, set *train.Images, spec preprocess.Spec) {
	t.Helper()
	m, err := onnxgraph.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	be, err := unleash.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	opts := unleash.DefaultOptions(unleash.UM)
	opts.Backend = be
	tr, err := unleash.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	bt, err := train.NewBatcher(set, spec, n, train.Augment{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var x []float32
	for batch := range bt.Epoch(0) {
		x = slices.Clone(batch.X)
		break
	}
	got, err := tr.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	clf, err := ort.Open(ckpt, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	r, err := clf.NewRunner(n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetInput(x); err != nil {
		t.Fatal(err)
	}
	want, err := r.Run()
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	t.Logf("%s: max |GoMLX - ORT| = %.2g", filepath.Base(ckpt), worst)
	if worst > 1e-4 {
		t.Errorf("%s: GoMLX and ORT logits differ by %.3g", ckpt, worst)
	}
}

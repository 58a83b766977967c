package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/internal/atomicfile"
	ort "github.com/oodguard/oodguard/runtime"
	"github.com/oodguard/oodguard/unleash/arch"
	"github.com/oodguard/oodguard/unleash/train"
	"github.com/schollz/progressbar/v3"
)

// trainCommand trains a classifier from scratch on GoMLX and writes an ONNX checkpoint per epoch.
type trainCommand struct {
	ort            ortFlags
	bestMaxAccDrop float64
	depth          int
	arch           string
	width          int
	blocks         string
	classes        int
	data           string
	dataPrefix     string
	idVal          string
	oodVal         string
	preset         string
	specFile       string
	epochs         int
	batch          int
	lr             float64
	momentum       float64
	wd             float64
	crop           int
	flip           bool
	seed           uint64
	backend        string
	temperature    float64
	limit          int
	valLimit       int
	out            string
	resume         bool
}

func (c *trainCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard train -data TRAIN [-id-val TEST [-ood-val OOD]] [flags]

Trains an image classifier from scratch in Go (GoMLX) and writes, after every epoch, an ONNX
checkpoint that ONNX Runtime and oodguardd run: OUT/epoch-NNN.onnx with its
OUT/epoch-NNN.preprocess.json. With -id-val each checkpoint is run through ONNX Runtime on the ID
test set (accuracy) and, with -ood-val, on an OOD set too (energy score, T=1: FPR95 and
AUROC, ID positive). OUT/train.json holds the config, the seed and the per-epoch loss,
accuracies, FPR95, AUROC, learning rate and seconds; OUT/train.png plots them.

Resuming: after every epoch OUT/epoch-NNN.state holds the whole training state (weights,
BatchNorm statistics, SGD momentum, step and epoch; the two newest are kept). A run stopped
by Ctrl-C, SIGTERM or a crash continues with the same command plus -resume: it checks that
every setting and the training data are the same as stored (else it names what differs),
starts at the epoch after the last complete one and appends to train.json; the result equals
an uninterrupted run's to the bit. -resume on an OUT without a state file starts a new run,
so scripts can always pass it. Without -resume an OUT holding a run is refused.

Architectures: cnn28 (the small CNN with BatchNorm of testdata/make_models.py: widths w, 2w,
4w) and resnet (CIFAR-style ResNet, basic blocks, stages of widths w, 2w, 4w; -blocks 3,3,3
-width 16 is ResNet-20). Recipe: SGD momentum 0.9, weight decay, cosine learning rate per
epoch, BatchNorm in train mode, a reshuffle each epoch, a random crop with zero padding and a
random horizontal flip (turn it off with -flip=false for digits). The training set is read
into memory once (Fashion-MNIST 47 MB, CIFAR-10 150 MB).

The preprocessing spec comes from -preset (default: fashion-mnist for cnn28, cifar10 for
resnet) or -preprocess; images of another size are resampled as on the device.

Datasets are PATH or PATH#PREFIX: IDX files (train-images-idx3-ubyte.gz), CIFAR-10 .bin
batches, folders of JPEG/PNG with one folder per class, or tar archives of them
(cifar10/train.tar#train). Training and ID test data need labels.

Example:
  oodguard train -arch cnn28 -data fashion-mnist/train-images-idx3-ubyte.gz \
    -id-val fashion-mnist/t10k-images-idx3-ubyte.gz -ood-val mnist/t10k-images-idx3-ubyte.gz \
    -epochs 10 -out runs/cnn28

Flags:
`)
}

func (c *trainCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("train", c)
	c.ort.register(fs)
	def := train.DefaultConfig()
	fs.StringVar(&c.arch, "arch", arch.CNN28, "architecture: "+strings.Join(arch.Names, " or "))
	fs.IntVar(&c.width, "width", 16, "base width w: channels of the first convolution (densenet: the growth rate k, 12 unless given)")
	fs.IntVar(&c.depth, "depth", 0, "densenet: depth, 4 plus a multiple of 6 (0: 100, DenseNet-BC-100 as in the paper)")
	fs.StringVar(&c.blocks, "blocks", "1,1,1", "resnet: basic blocks per stage, one count or three (3 or 3,3,3: ResNet-20 at -width 16)")
	fs.IntVar(&c.classes, "classes", 0, "number of classes (0: from the training data)")
	fs.StringVar(&c.data, "data", "", "training data, PATH or PATH#PREFIX (required)")
	fs.StringVar(&c.dataPrefix, "data-prefix", "", "folder inside -data's tar archive or folder (same as PATH#PREFIX)")
	fs.StringVar(&c.idVal, "id-val", "", "labelled ID test data: accuracy of each checkpoint")
	fs.StringVar(&c.oodVal, "ood-val", "", "OOD data: FPR95 and AUROC of each checkpoint (needs -id-val)")
	fs.StringVar(&c.preset, "preset", "", "preprocessing preset: fashion-mnist or cifar10 (default: by -arch)")
	fs.StringVar(&c.specFile, "preprocess", "", "preprocessing spec JSON instead of a preset")
	fs.IntVar(&c.epochs, "epochs", def.Epochs, "epochs (also the length of the cosine schedule)")
	fs.IntVar(&c.batch, "batch", def.Batch, "images per step (the last partial batch of an epoch is dropped)")
	fs.Float64Var(&c.lr, "lr", def.LR, "base learning rate")
	fs.Float64Var(&c.momentum, "momentum", def.Momentum, "SGD momentum")
	fs.Float64Var(&c.wd, "wd", def.WeightDecay, "weight decay (coupled, on every parameter)")
	fs.IntVar(&c.crop, "crop", def.Augment.Crop, "zero padding of the random crop in pixels (0: no crop)")
	fs.BoolVar(&c.flip, "flip", def.Augment.Flip, "random horizontal flip")
	fs.Uint64Var(&c.seed, "seed", def.Seed, "seed of the initialisation, the subset, shuffling and augmentation")
	fs.StringVar(&c.backend, "backend", def.Backend, "GoMLX backend: onnx (ONNX Runtime, fastest) or go (pure Go, slow)")
	fs.Float64Var(&c.temperature, "temperature", 1, "energy temperature T of the OOD score")
	fs.IntVar(&c.limit, "limit", 0, "train on a random subset of N images (0: all)")
	fs.IntVar(&c.valLimit, "val-limit", 0, "validate on a random subset of N images of each set, the same every epoch (0: all)")
	fs.StringVar(&c.out, "out", "train-run", "output folder (must not hold a run already, unless -resume)")
	fs.BoolVar(&c.resume, "resume", false, "continue the run in -out from its last epoch-NNN.state (same settings), or start one when there is none")
	fs.Float64Var(&c.bestMaxAccDrop, "best-max-acc-drop", 2, "with -ood-val: best.onnx is the epoch with the lowest validation FPR95 among those at most this many accuracy points below the final epoch")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := c.config(fs)
	if err != nil {
		return err
	}
	trainData, err := parseDataArg(c.data)
	if err != nil {
		return usageError{err}
	}
	if c.dataPrefix != "" {
		if trainData.prefix != "" {
			return usagef("give the prefix as -data PATH#PREFIX or -data-prefix, not both")
		}
		trainData.prefix = c.dataPrefix
	}
	// ONNX Runtime runs the evaluations and the onnx backend; the go backend alone needs none.
	var ortOpts ort.Options
	if c.idVal != "" || strings.HasPrefix(cfg.Backend, "onnx") {
		if ortOpts, err = c.ort.options(); err != nil {
			return err
		}
	}
	if c.ort.lib != "" && strings.HasPrefix(cfg.Backend, "onnx") && !strings.Contains(cfg.Backend, ":") {
		cfg.Backend = "onnx:" + c.ort.lib
	}

	// Load the training set.
	r, err := dataset.Open(trainData.path, dataset.Options{Prefix: trainData.prefix, Layout: dataset.LayoutClasses})
	if err != nil {
		return err
	}
	bar := newBar(r.Len(), "load "+trainData.name())
	start := time.Now()
	set, err := train.Load(ctx, r, cfg.Spec, func(n int) { bar.Set(n) })
	bar.Finish()
	r.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", trainData.name(), err)
	}
	fmt.Fprintf(stderr, "%s: %d images, %d classes, loaded in %.1fs\n", trainData.name(), set.Len(), set.NumClasses(), time.Since(start).Seconds())
	if c.limit > 0 {
		set = set.Subset(c.limit, c.seed)
	}
	if c.classes == 0 && set.NumClasses() < 2 {
		return fmt.Errorf("%s: the training data has %d class: a classifier needs at least 2", trainData.name(), set.NumClasses())
	}

	val, err := c.validation(set.Classes, ortOpts)
	if err != nil {
		return err
	}
	hooks := train.Hooks{
		Epoch: func(e train.Epoch) { printEpoch(stdout, e, cfg.Epochs) },
		Eval: func(name string, total int) func(int) {
			b := newBar(total, name)
			return func(n int) {
				b.Set(n)
				if n >= total && total > 0 {
					b.Finish()
				}
			}
		},
	}
	var stepBar *progressbar.ProgressBar
	hooks.Step = func(epoch, done, total int) {
		if done == 1 {
			stepBar = newBar(total*cfg.Batch, fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs))
		}
		stepBar.Set(done * cfg.Batch)
		if done == total {
			stepBar.Finish()
		}
	}
	log, err := train.Run(ctx, cfg, set, trainData.name(), val, hooks)
	if err != nil {
		return err
	}
	if n := len(log.Resumed); n > 0 {
		fmt.Fprintf(stdout, "resumed after epoch %d (%s)\n", log.Resumed[n-1].AfterEpoch, log.Resumed[n-1].State)
	}
	fmt.Fprintf(stdout, "%d epochs in %.0fs; checkpoints, train.json and train.png in %s\n", len(log.Runs), log.Seconds, cfg.Out)
	if c.oodVal != "" {
		return keepBest(cfg.Out, log.Runs, c.bestMaxAccDrop/100)
	}
	return nil
}

// keepBest copies the checkpoint with the lowest validation FPR95 among the epochs whose
// validation accuracy is at most maxDrop below the final epoch's to best.onnx (and its
// preprocessing spec to best.preprocess.json): a model trained until it memorises often
// detected OOD inputs better at an intermediate epoch (the Unleashing Mask paper's observation),
// and this is what a user gets with no method at all. Choose -ood-val from an OOD family you
// will not test on.
func keepBest(dir string, runs []train.Epoch, maxDrop float64) error {
	if len(runs) == 0 || runs[len(runs)-1].ValAcc == nil || runs[len(runs)-1].FPR95 == nil {
		return nil
	}
	final := runs[len(runs)-1]
	best := len(runs) - 1
	for i, e := range runs {
		if e.ValAcc == nil || e.FPR95 == nil || *e.ValAcc < *final.ValAcc-maxDrop {
			continue
		}
		if *e.FPR95 < *runs[best].FPR95 {
			best = i
		}
	}
	b := runs[best]
	for _, ext := range []string{".onnx", ".preprocess.json"} {
		src := filepath.Join(dir, strings.TrimSuffix(b.Checkpoint, ".onnx")+ext)
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("keep the best epoch: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, "best"+ext), data, 0o644); err != nil {
			return fmt.Errorf("keep the best epoch: %w", err)
		}
	}
	fmt.Fprintf(stdout, "best epoch on validation: %d of %d (FPR95 %.2f%%, accuracy %.2f%%; final epoch %.2f%%, %.2f%%; accuracy floor %.1f points below the final): %s\n",
		b.Epoch, len(runs), 100**b.FPR95, 100**b.ValAcc, 100**final.FPR95, 100**final.ValAcc, 100*maxDrop, filepath.Join(dir, "best.onnx"))
	return nil
}

// config turns the flags into a training config.
func (c *trainCommand) config(fs *flag.FlagSet) (train.Config, error) {
	cfg := train.DefaultConfig()
	if c.data == "" {
		return cfg, usagef("-data is required")
	}
	if fs.NArg() != 0 {
		return cfg, usagef("unexpected arguments %v", fs.Args())
	}
	if c.oodVal != "" && c.idVal == "" {
		return cfg, usagef("-ood-val needs -id-val: FPR95 compares OOD scores with ID test scores")
	}
	if !slices.Contains(arch.Names, c.arch) {
		return cfg, usagef("unknown -arch %q (want %s)", c.arch, strings.Join(arch.Names, " or "))
	}
	var blocks []int
	if c.arch == arch.ResNet {
		var err error
		if blocks, err = parseBlocks(c.blocks); err != nil {
			return cfg, usageError{err}
		}
	}
	width := c.width
	if c.arch == arch.DenseNet {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "width" })
		if !given {
			width = 0 // the growth rate's default, 12
		}
	} else if c.depth != 0 {
		return cfg, usagef("-depth is for -arch densenet")
	}
	cfg.Arch = arch.Config{Arch: c.arch, Width: width, Blocks: blocks, Classes: c.classes, Depth: c.depth}
	if c.width < 1 {
		return cfg, usagef("-width %d: want at least 1", c.width)
	}
	if !strings.HasPrefix(c.backend, "onnx") && !strings.HasPrefix(c.backend, "go") && !strings.HasPrefix(c.backend, "xla") {
		return cfg, usagef("unknown -backend %q (want onnx or go)", c.backend)
	}
	if err := checkTemperature("temperature", c.temperature); err != nil {
		return cfg, err
	}
	if c.limit < 0 || c.valLimit < 0 {
		return cfg, usagef("-limit and -val-limit must be >= 0")
	}
	if c.specFile != "" && c.preset != "" {
		return cfg, usagef("give -preset or -preprocess, not both")
	}
	preset := c.preset
	if preset == "" && c.specFile == "" {
		switch c.arch {
		case arch.CNN28:
			preset = "fashion-mnist"
		case arch.ResNet:
			preset = "cifar10"
		case arch.DenseNet:
			preset = "cifar10-raw" // the model normalises by CIFAR's mean and std itself
		}
	}
	var err error
	if cfg.Spec, _, err = loadSpec(preset, c.specFile, ""); err != nil {
		return cfg, err
	}
	cfg.Epochs, cfg.Batch, cfg.LR, cfg.Momentum, cfg.WeightDecay = c.epochs, c.batch, c.lr, c.momentum, c.wd
	cfg.Augment = train.Augment{Crop: c.crop, Flip: c.flip}
	cfg.Seed, cfg.Backend, cfg.Out = c.seed, c.backend, c.out
	cfg.Tool = "oodguard " + Version
	cfg.Resume = c.resume
	// The validation subsets are drawn here, not in train.Run: a resumed run must draw the same.
	cfg.Settings = map[string]string{"val-limit": strconv.Itoa(c.valLimit)}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// validation opens the validation sets. The ID set gets the training set's class names, so that
// its labels follow the training order (and a class the model does not know is an error).
func (c *trainCommand) validation(classes []string, ortOpts ort.Options) (train.Validation, error) {
	// -val-limit is a random subset (seeded by -seed), the same for every checkpoint.
	val := train.Validation{Temperature: c.temperature, ORT: ortOpts}
	sub := subset{limit: c.valLimit, seed: c.seed}
	if c.idVal == "" {
		return val, nil
	}
	id, err := parseDataArg(c.idVal)
	if err != nil {
		return val, usageError{err}
	}
	val.ID = &train.Source{Name: id.name(), Open: func() (dataset.Reader, error) {
		r, err := dataset.Open(id.path, dataset.Options{Prefix: id.prefix, Layout: dataset.LayoutClasses, Classes: classes})
		if err != nil {
			return nil, err
		}
		return sub.apply(r, id)
	}}
	if c.oodVal != "" {
		ood, err := parseDataArg(c.oodVal)
		if err != nil {
			return val, usageError{err}
		}
		val.OOD = &train.Source{Name: ood.name(), Open: func() (dataset.Reader, error) {
			r, err := ood.open(true)
			if err != nil {
				return nil, err
			}
			return sub.apply(r, ood)
		}}
	}
	// Open each once now, so that a wrong path fails before training starts.
	for _, s := range []*train.Source{val.ID, val.OOD} {
		if s == nil {
			continue
		}
		r, err := s.Open()
		if err != nil {
			return val, err
		}
		r.Close()
	}
	return val, nil
}

// parseBlocks parses "3" (every stage) or "2,2,2".
func parseBlocks(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return nil, fmt.Errorf("-blocks %q: want one count or three (one per stage)", s)
	}
	var out []int
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-blocks %q: counts must be whole numbers >= 1", s)
		}
		out = append(out, n)
	}
	if len(out) == 1 {
		out = []int{out[0], out[0], out[0]}
	}
	return out, nil
}

// printEpoch prints one line per epoch.
func printEpoch(w io.Writer, e train.Epoch, epochs int) {
	fmt.Fprintf(w, "epoch %3d/%d  lr %.4f  loss %.4f  train %6.2f%%", e.Epoch, epochs, e.LR, e.Loss, 100*e.TrainAcc)
	if e.ValAcc != nil {
		fmt.Fprintf(w, "  val %6.2f%%", 100**e.ValAcc)
	}
	if e.FPR95 != nil {
		fmt.Fprintf(w, "  FPR95 %6.2f%%  AUROC %6.2f%%", 100**e.FPR95, 100**e.AUROC)
	}
	fmt.Fprintf(w, "  (%.1fs train, %.1fs eval)  %s\n", e.TrainSec, e.EvalSec, filepath.Base(e.Checkpoint))
}

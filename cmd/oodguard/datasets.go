package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oodguard/oodguard/calibrate/batchscore"
	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// dataArg is a dataset named on the command line as PATH or PATH#PREFIX, where PREFIX selects
// a folder inside a tar archive or folder (e.g. cifar10/test.tar#test,
// tiny-imagenet/val.tar#val/images).
type dataArg struct {
	path, prefix string
}

func parseDataArg(s string) (dataArg, error) {
	if s == "" {
		return dataArg{}, fmt.Errorf("empty dataset argument")
	}
	path, prefix, _ := strings.Cut(s, "#")
	return dataArg{path: path, prefix: prefix}, nil
}

// name is how reports name the dataset: its folder and file name, and the prefix
// (fashion-mnist/t10k-images-idx3-ubyte.gz, cifar10/test.tar#test).
func (d dataArg) name() string {
	base := filepath.Base(d.path)
	if dir := filepath.Base(filepath.Dir(filepath.Clean(d.path))); dir != "." && dir != "/" {
		base = dir + "/" + base
	}
	if d.prefix != "" {
		return base + "#" + d.prefix
	}
	return base
}

func (d dataArg) open(unlabeled bool) (dataset.Reader, error) {
	return dataset.Open(d.path, d.options(unlabeled))
}

// openForScoring opens the dataset, or the subset sub selects of it, for a consumer that is
// done with each sample before it reads the next (batch scoring): IDX and CIFAR readers reuse
// one image.
func (d dataArg) openForScoring(unlabeled bool, sub subset) (dataset.Reader, error) {
	opts := d.options(unlabeled)
	opts.ReuseImages = true
	r, err := dataset.Open(d.path, opts)
	if err != nil {
		return nil, err
	}
	return sub.apply(r, d)
}

// subset is a command's -limit and -seed: a seeded random subset of each dataset, never its
// first N images (data stored class by class would give one class).
type subset struct {
	limit int
	seed  uint64
}

// register adds -limit and, unless the command has its own -seed (seed is then set by it),
// -seed. what names the datasets in the help.
func (s *subset) register(fs *flag.FlagSet, what string, withSeed bool) {
	fs.IntVar(&s.limit, "limit", 0, "use a random subset of N images of "+what+", in their stored order (0: all); the same -seed gives the same subset")
	if withSeed {
		fs.Uint64Var(&s.seed, "seed", 1, "seed of the -limit subset")
	}
}

// check rejects a negative limit.
func (s subset) check(flag string) error {
	if s.limit < 0 {
		return usagef("-%s %d must be >= 0", flag, s.limit)
	}
	return nil
}

// apply returns the subset of r (r itself without a limit); on error it closes r.
func (s subset) apply(r dataset.Reader, d dataArg) (dataset.Reader, error) {
	sr, err := dataset.RandomSubset(r, s.limit, s.seed, d.name())
	if err != nil {
		r.Close()
		return nil, err
	}
	return sr, nil
}

func (d dataArg) options(unlabeled bool) dataset.Options {
	layout := dataset.LayoutAuto
	if unlabeled {
		layout = dataset.LayoutFlat
	}
	return dataset.Options{Prefix: d.prefix, Layout: layout, Unlabeled: unlabeled}
}

// dataList collects repeated dataset flags.
type dataList []dataArg

func (l *dataList) String() string {
	var s []string
	for _, d := range *l {
		s = append(s, d.name())
	}
	return strings.Join(s, ",")
}

func (l *dataList) Set(v string) error {
	d, err := parseDataArg(v)
	if err != nil {
		return err
	}
	*l = append(*l, d)
	return nil
}

// presets are the preprocessing specs selectable by name.
var presets = map[string]func() preprocess.Spec{
	"fashion-mnist": preprocess.FashionMNIST,
	"cifar10":       preprocess.CIFAR10,
	"cifar10-raw":   preprocess.CIFAR10Raw, // pixels in [0,1]: for models that normalise inside (train -arch densenet)
}

// loadSpec returns the preprocessing spec: a preset by name, a JSON file, or, when neither is
// given, MODEL.preprocess.json next to the model (model.onnx -> model.preprocess.json).
func loadSpec(preset, file, model string) (preprocess.Spec, string, error) {
	if preset != "" && file != "" {
		return preprocess.Spec{}, "", usagef("give -preset or -preprocess, not both")
	}
	if preset != "" {
		f, ok := presets[preset]
		if !ok {
			return preprocess.Spec{}, "", usagef("unknown -preset %q (want fashion-mnist or cifar10)", preset)
		}
		return f(), "preset " + preset, nil
	}
	if file == "" {
		file = strings.TrimSuffix(model, filepath.Ext(model)) + ".preprocess.json"
		if _, err := os.Stat(file); err != nil {
			return preprocess.Spec{}, "", usagef("no preprocessing spec: give -preset or -preprocess, or put %s next to the model", filepath.Base(file))
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return preprocess.Spec{}, "", err
	}
	var s preprocess.Spec
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return preprocess.Spec{}, "", fmt.Errorf("preprocessing spec %s: %w", file, err)
	}
	if err := s.Validate(); err != nil {
		return preprocess.Spec{}, "", fmt.Errorf("preprocessing spec %s: %w", file, err)
	}
	return s, file, nil
}

// scoreData scores one dataset, or the subset sub selects of it, with a progress bar on a
// terminal.
func scoreData(ctx context.Context, pool *batchscore.Pool, spec preprocess.Spec, d dataArg, unlabeled bool, sub subset, opts batchscore.Options) (*batchscore.Result, error) {
	r, err := d.openForScoring(unlabeled, sub)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	total := r.Len()
	bar := newBar(total, d.name())
	opts.Progress = func(n int) { bar.Set(n) }
	start := time.Now()
	res, err := pool.Run(ctx, spec, r, opts)
	bar.Finish()
	if err != nil {
		return nil, err
	}
	if res.Len() == 0 {
		return nil, fmt.Errorf("dataset %s holds no images", d.path)
	}
	fmt.Fprintf(stderr, "%s: %d images in %.1fs (%.0f img/s)\n", d.name(), res.Len(), time.Since(start).Seconds(),
		float64(res.Len())/time.Since(start).Seconds())
	return res, nil
}

// newBar returns a progress bar on stderr, hidden unless stderr is a terminal. total < 0 shows
// a spinner.
func newBar(total int, desc string) *progressbar.ProgressBar {
	visible := false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		visible = true
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetVisibility(visible),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("img"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

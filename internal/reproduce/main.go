// Command reproduce is `make reproduce`: it proves, or fails to prove, Unleashing Mask's effect
// on real data, end to end with oodguard's own commands. For Fashion-MNIST (the small CNN,
// cnn28) and CIFAR-10 (the CIFAR ResNet) it
//
//  1. makes the data splits (ID validation held out of the training data; the OOD sets split
//     into a validation half, used for every choice, and a test half, used only for the table);
//  2. trains with `oodguard train`, keeping every epoch's checkpoint and its validation curve;
//  3. picks the best intermediate epoch on the validation sets;
//  4. runs `oodguard unleash -mode um` and `-mode umap` from the final epoch, the constraint
//     chosen by the grid on the validation sets;
//  5. evaluates the final epoch (baseline), the best epoch, UM and UMAP with `oodguard eval`
//     (Energy, MSP, MaxLogit, ODIN) on the test sets, and (energy only) on the validation sets;
//
// and writes results.md, results.csv, results.json and steps.csv into the output folder
// (.cache/reproduce/MODE by default). Every step's command, log and wall time is kept; a step
// that finished is not run again unless -fresh (delete the folder to start over).
//
//	go run ./internal/reproduce -mode smoke|short|full [-seeds 1,2,3] [-only cifar10]
//
// See docs/reproduce.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "reproduce:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	mode, only, seeds  string
	out, data, bin     string
	threads            int
	fresh, noODIN, dry bool
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("reproduce", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", envOr("REPRODUCE", "short"), "size of the run: "+modeNames()+" ($REPRODUCE)")
	fs.StringVar(&o.only, "only", os.Getenv("REPRODUCE_ONLY"), "only these datasets, comma separated: fashion-mnist, cifar10 ($REPRODUCE_ONLY)")
	fs.StringVar(&o.seeds, "seeds", os.Getenv("REPRODUCE_SEEDS"), "seeds, comma separated (default: the mode's) ($REPRODUCE_SEEDS)")
	fs.StringVar(&o.out, "out", os.Getenv("REPRODUCE_OUT"), "output folder (default .cache/reproduce/MODE) ($REPRODUCE_OUT)")
	fs.StringVar(&o.data, "data", envOr("REPRODUCE_DATA", "../shared/data"), "the shared data folder ($REPRODUCE_DATA)")
	fs.StringVar(&o.bin, "oodguard", "bin/oodguard", "the oodguard binary")
	fs.IntVar(&o.threads, "threads", 0, "ONNX Runtime threads of the eval runs (0: ONNX Runtime decides)")
	fs.BoolVar(&o.fresh, "fresh", os.Getenv("REPRODUCE_FRESH") == "1", "run every step again, even those that finished ($REPRODUCE_FRESH=1)")
	fs.BoolVar(&o.noODIN, "no-odin", false, "skip the ODIN score (the slowest evaluation)")
	fs.BoolVar(&o.dry, "n", false, "print the commands, run nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var seeds []uint64
	if o.seeds != "" {
		for _, f := range strings.Split(o.seeds, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return fmt.Errorf("-seeds %q: %v", o.seeds, err)
			}
			seeds = append(seeds, v)
		}
	}
	m, err := pick(o.mode, o.only, seeds)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(".cache", "reproduce", m.Name)
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: build it first (make build): %w", o.bin, err)
	}
	for _, sub := range []string{"fashion-mnist", "mnist", "cifar10", "tiny-imagenet"} {
		if _, err := os.Stat(filepath.Join(o.data, sub)); err != nil {
			return fmt.Errorf("the shared data folder %s lacks %s (set REPRODUCE_DATA): %w", o.data, sub, err)
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	r := &runner{opts: o, mode: m, start: time.Now(), log: os.Stdout}
	return r.all(ctx)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runner runs the whole reproduction.
type runner struct {
	opts  options
	mode  Mode
	start time.Time
	log   *os.File
	steps []*StepRecord
	ran   map[string]bool // seed folders where a step ran in this run
}

func (r *runner) printf(format string, a ...any) {
	el := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(r.log, "[%s] %s\n", fmtDuration(el), fmt.Sprintf(format, a...))
}

func fmtDuration(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

func (r *runner) all(ctx context.Context) error {
	m := r.mode
	r.printf("reproduce: mode %s (%s); seeds %v; %d CPUs; output in %s", m.Name, m.What, m.Seeds, runtime.NumCPU(), r.opts.out)
	res := &Results{
		Mode: m, Commit: gitCommit(), Started: r.start.UTC().Truncate(time.Second), CPUs: runtime.NumCPU(),
		Host: hostName(), Convention: convention,
	}
	for _, s := range m.Sets {
		dataDir := filepath.Join(".cache", "reproduce", "data")
		r.printf("%s: data splits in %s", s.Key, dataDir)
		t0 := time.Now()
		sp, err := makeSplits(s, r.opts.data, dataDir)
		if err != nil {
			return fmt.Errorf("%s: data splits: %w", s.Key, err)
		}
		r.steps = append(r.steps, &StepRecord{Dataset: s.Key, Step: "data", Seconds: time.Since(t0).Seconds(), Started: t0.UTC()})
		ds := &DatasetResult{Setup: s, Splits: *sp}
		for _, seed := range m.Seeds {
			sr, err := r.seed(ctx, s, sp, seed)
			if err != nil {
				return fmt.Errorf("%s seed %d: %w", s.Key, seed, err)
			}
			ds.Seeds = append(ds.Seeds, sr)
		}
		res.Datasets = append(res.Datasets, ds)
		if r.opts.dry {
			continue
		}
		res.Steps, res.Seconds = r.steps, time.Since(r.start).Seconds()
		if err := res.write(r.opts.out); err != nil { // after each dataset, so a later failure keeps the first
			return err
		}
	}
	if r.opts.dry {
		return nil
	}
	res.Steps, res.Seconds = r.steps, time.Since(r.start).Seconds()
	if err := res.write(r.opts.out); err != nil {
		return err
	}
	md, err := os.ReadFile(filepath.Join(r.opts.out, "results.md"))
	if err != nil {
		return err
	}
	fmt.Fprintf(r.log, "\n%s\n", md)
	r.printf("done in %s: %s/results.{md,csv,json}, steps.csv", fmtDuration(time.Since(r.start)), r.opts.out)
	return nil
}

// seed runs every step of one setup and seed.
func (r *runner) seed(ctx context.Context, s Setup, sp *Splits, seed uint64) (*SeedResult, error) {
	dir := filepath.Join(r.opts.out, s.Key, fmt.Sprintf("seed-%d", seed))
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	sr := &SeedResult{Seed: seed, Dir: dir}
	seedArg := strconv.FormatUint(seed, 10)
	bin := r.opts.bin

	// 1. Train from scratch, a checkpoint per epoch, validation curve on the validation sets.
	trainDir := filepath.Join(dir, "train")
	cmd := []string{bin, "train", "-arch", s.Arch, "-width", strconv.Itoa(s.Width)}
	if s.Blocks != "" {
		cmd = append(cmd, "-blocks", s.Blocks)
	}
	cmd = append(cmd, "-data", sp.Train, "-id-val", sp.IDVal, "-ood-val", sp.OODVal,
		"-epochs", strconv.Itoa(s.Epochs), "-batch", strconv.Itoa(s.Batch), "-lr", fmtFloat(s.LR),
		"-seed", seedArg, "-resume", "-out", trainDir)
	if err := r.step(ctx, s.Key, seed, "train", dir, cmd, trainDir); err != nil {
		return nil, err
	}
	if r.opts.dry {
		trainDir = filepath.Join(dir, "train")
	}

	// 2. The best intermediate epoch, on the validation sets only.
	final := filepath.Join(trainDir, fmt.Sprintf("epoch-%03d.onnx", s.Epochs))
	best := final
	if !r.opts.dry {
		sel, err := selectEpoch(filepath.Join(trainDir, "train.json"), s.BestMaxAccDrop)
		if err != nil {
			return nil, err
		}
		sr.Train = sel
		best = filepath.Join(trainDir, sel.Best.Checkpoint)
		r.printf("%s seed %d: best epoch %d of %d on the validation sets (val FPR95 %.2f, val acc %.2f; final: %.2f, %.2f)",
			s.Key, seed, sel.Best.Epoch, sel.Epochs, 100*sel.Best.FPR95, 100*sel.Best.ValAcc, 100*sel.Final.FPR95, 100*sel.Final.ValAcc)
	}

	// 3. UM and UMAP from the final epoch, the constraint chosen by the grid on the validation sets.
	// -keep-worse: the tables measure the method itself, also where unleash's validation guard
	// would have kept the input (the run record holds the guard's verdict all the same).
	unleashed := map[string]string{}
	for _, mode := range []string{"um", "umap"} {
		u := s.UM
		if mode == "umap" {
			u = s.UMAP
		}
		out := filepath.Join(dir, mode, mode+".onnx")
		cmd := []string{bin, "unleash", "-mode", mode, "-model", final, "-data", sp.Train,
			"-constraint", "grid", "-id-val", sp.IDVal, "-ood-val", sp.OODVal,
			"-grid-factors", u.GridFactors, "-grid-epochs", strconv.Itoa(u.GridEpochs), "-val-limit", "0", "-check-limit", "0",
			"-epochs", strconv.Itoa(u.Epochs), "-lr", fmtFloat(u.LR), "-batch", strconv.Itoa(u.Batch), "-seed", seedArg, "-keep-worse"}
		if u.Limit > 0 {
			cmd = append(cmd, "-limit", strconv.Itoa(u.Limit))
		}
		if mode == "umap" {
			cmd = append(cmd, "-keep", fmtFloat(u.Keep), "-score-init", u.ScoreInit)
		}
		cmd = append(cmd, "-resume", "-out", out)
		if err := r.step(ctx, s.Key, seed, mode, dir, cmd, filepath.Dir(out)); err != nil {
			return nil, err
		}
		unleashed[mode] = out
		if !r.opts.dry {
			rec, err := readRun(strings.TrimSuffix(out, ".onnx") + ".run.json")
			if err != nil {
				return nil, err
			}
			if mode == "um" {
				sr.UM = rec
			} else {
				sr.UMAP = rec
			}
		}
	}

	// 4. Evaluate the four models on the test sets.
	scores := "energy,msp,maxlogit,odin"
	if r.opts.noODIN {
		scores = "energy,msp,maxlogit"
	}
	models := []struct{ step, model string }{
		{StepFinal, final}, {StepBest, best}, {StepUM, unleashed["um"]}, {StepUMAP, unleashed["umap"]},
	}
	// The lowest validation FPR95 with no accuracy floor, when it is another epoch: often an
	// early, underfit one (reported, never the headline).
	if sr.Train != nil && sr.Train.BestAny.Epoch != sr.Train.Best.Epoch {
		models = append(models, struct{ step, model string }{StepBestAny, filepath.Join(trainDir, sr.Train.BestAny.Checkpoint)})
	}
	for _, mm := range models {
		evalDir := filepath.Join(dir, "eval", mm.step)
		cmd := []string{bin, "eval", "-model", mm.model, "-id", sp.IDTest}
		for _, o := range sp.OODTest {
			cmd = append(cmd, "-ood", o)
		}
		cmd = append(cmd, "-scores", scores, "-threads", strconv.Itoa(r.opts.threads), "-out", evalDir)
		if err := r.step(ctx, s.Key, seed, "eval-"+mm.step, dir, cmd, evalDir); err != nil {
			return nil, err
		}
		if r.opts.dry {
			continue
		}
		rows, err := readReport(filepath.Join(evalDir, "report.json"))
		if err != nil {
			return nil, err
		}
		for i := range rows {
			rows[i].Dataset, rows[i].Seed, rows[i].Step, rows[i].Model = s.Key, seed, mm.step, mm.model
		}
		sr.Rows = append(sr.Rows, rows...)
	}

	// 5. The same models on the validation sets (energy only): what the choices saw, for the
	// final models (the grid scored its own shorter candidate runs).
	for _, mm := range models {
		valDir := filepath.Join(dir, "val", mm.step)
		cmd := []string{bin, "eval", "-model", mm.model, "-id", sp.IDVal, "-ood", sp.OODVal,
			"-scores", "energy", "-threads", strconv.Itoa(r.opts.threads), "-out", valDir}
		if err := r.step(ctx, s.Key, seed, "val-"+mm.step, dir, cmd, valDir); err != nil {
			return nil, err
		}
		if r.opts.dry {
			continue
		}
		rows, err := readReport(filepath.Join(valDir, "report.json"))
		if err != nil {
			return nil, err
		}
		if len(rows) != 1 {
			return nil, fmt.Errorf("%s: %d rows, want 1", valDir, len(rows))
		}
		v := rows[0]
		v.Dataset, v.Seed, v.Step, v.Model = s.Key, seed, mm.step, mm.model
		sr.Val = append(sr.Val, v)
	}
	return sr, nil
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Steps of the table.
const (
	StepFinal = "final"
	StepBest  = "best"
	StepUM    = "um"
	StepUMAP  = "umap"
	// StepBestAny is the epoch with the lowest validation FPR95 regardless of its accuracy.
	StepBestAny = "best-any"
)

// gitCommit returns the short commit, with "-dirty" when tracked files differ from it.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD", "--").Run() != nil {
		c += "-dirty"
	}
	return c
}

func hostName() string {
	h, _ := os.Hostname()
	return h
}

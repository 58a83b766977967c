// Command oodguard is the workstation tool: it inspects and scores ONNX image classifiers,
// calibrates energy-score thresholds, evaluates OOD detection, applies Unleashing Mask and
// packages models into signed bundles for oodguardd.
//
// Each subcommand lives in its own file as a type with Run(ctx, args) and Usage().
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// command is one oodguard subcommand.
type command interface {
	Run(ctx context.Context, args []string) error
	Usage(w io.Writer)
}

// commands lists the subcommands in the order the help shows them. Each run gets a fresh
// command value, so flag state never leaks from one run to the next.
var commands = []struct {
	name, summary string
	cmd           func() command
}{
	{"bundle", "pack a model and its calibration into a signed update bundle", func() command { return &bundleCommand{} }},
	{"calibrate", "fit the score threshold at a target ID true-positive rate; write calibration.json", func() command { return &calibrateCommand{} }},
	{"choose", "measure post-hoc detectors on your model and data; write the chosen one into the graph, with its calibration", func() command { return &chooseCommand{} }},
	{"eval", "evaluate OOD detection on ID and OOD datasets; write a report with plots", func() command { return &evalCommand{} }},
	{"inspect", "show a model's inputs and outputs and check it is an image classifier", func() command { return &inspectCommand{} }},
	{"keygen", "create an Ed25519 key pair for signing bundles", func() command { return &keygenCommand{} }},
	{"metrics", "compute AUROC, AUPR and FPR95 of OOD scores from score files", func() command { return &metricsCommand{} }},
	{"score", "score an image, a folder, a dataset or a tensor file: class, OOD scores and, with a calibration, the decision", func() command { return &scoreCommand{} }},
	{"train", "train a classifier from scratch (GoMLX); an ONNX checkpoint, accuracy and FPR95 per epoch", func() command { return &trainCommand{} }},
	{"unleash", "restore OOD detection with Unleashing Mask (UMAP mask or UM fine-tuning); write the new model", func() command { return &unleashCommand{} }},
	{"verify", "check a bundle's signature, files, device class and version", func() command { return &verifyCommand{} }},
	{"watch", "subscribe to oodguardd alerts over MQTT and print them", func() command { return &watchCommand{} }},
	{"version", "print the version of oodguard and of ONNX Runtime", func() command { return &versionCommand{} }},
}

// usageError marks errors caused by bad flags or arguments; they exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// stdout and stderr are where commands print results and flag help; run sets them so that
// tests can capture them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, out, errOut io.Writer) int {
	stdout, stderr = out, errOut
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if args[0] == "-version" || args[0] == "--version" {
		args = append([]string{"version"}, args[1:]...) // as oodguardd -version, plus ONNX Runtime's
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.cmd().Run(ctx, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "Error: %v\nTry: oodguard %s -h\n", err, c.name)
			return 2
		case ctx.Err() != nil:
			// SIGINT or SIGTERM: the command stopped at its next step; what it had finished
			// (checkpoints, outputs written atomically) stays, nothing half-written does.
			fmt.Fprintf(stderr, "Error: interrupted: %v\n", err)
			return 130
		default:
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "Error: unknown command %q\nTry: oodguard help\n", args[0])
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "oodguard %s: guard image classifiers against out-of-distribution inputs\n\nUsage: oodguard <command> [flags]\n\nCommands:\n", Version)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'oodguard <command> -h' for a command's flags; 'oodguard -version' prints the version.\n")
}

// newFlagSet returns a flag set that reports errors instead of exiting and prints the
// command's usage on -h.
func newFlagSet(name string, c command) *flag.FlagSet {
	fs := flag.NewFlagSet("oodguard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { c.Usage(fs.Output()); fs.PrintDefaults() }
	return fs
}

// parseFlags parses args and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

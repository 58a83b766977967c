// Command oodguardd is the device daemon: it will read camera frames, run the unleashed model
// with ONNX Runtime, score energy against the calibrated threshold and publish alerts over MQTT.
//
// Today it loads ONNX Runtime and checks a model (-check-model); the frame pipeline, MQTT and OTA
// parts are not built yet (see the README's status table).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	ort "github.com/oodguard/oodguard/runtime"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oodguardd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the version and exit")
	lib := fs.String("ort-lib", "", "path of libonnxruntime.so (default: $"+ort.EnvLibrary+", then the usual places)")
	model := fs.String("check-model", "", "load this model, check that it is an image classifier, and exit")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "oodguardd %s\n", Version)
		return 0
	}
	if *model == "" {
		fmt.Fprintln(stderr, "Error: the daemon pipeline is not built yet; only -version and -check-model work")
		return 2
	}
	if _, err := ort.Setup(*lib); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	c, err := ort.Open(*model, ort.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	defer c.Close()
	fmt.Fprintf(stdout, "%s: %s (sha256 %s, ONNX Runtime %s)\n", *model, c.Shape(), c.SHA256(), ort.Version())
	return 0
}

package main

import (
	"context"
	"fmt"
	"io"

	ort "github.com/oodguard/oodguard/runtime"
)

// versionCommand prints the oodguard version and, when it can load it, the ONNX Runtime version.
type versionCommand struct{ lib string }

func (c *versionCommand) Usage(w io.Writer) {
	fmt.Fprint(w, "Usage: oodguard version [-ort-lib PATH]\n\nFlags:\n")
}

func (c *versionCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("version", c)
	fs.StringVar(&c.lib, "ort-lib", "", "path of libonnxruntime.so")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "oodguard %s\n", Version)
	path, err := ort.Setup(c.lib)
	if err != nil {
		fmt.Fprintf(stdout, "onnxruntime: not loaded: %v\n", err)
		return nil
	}
	fmt.Fprintf(stdout, "onnxruntime %s (%s)\n", ort.Version(), path)
	return nil
}

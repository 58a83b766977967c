// Command dumpdata writes a labelled dataset exactly as `oodguard unleash -data` holds it in
// memory (dataset.Open with unleash's options, then unleash/run.Load with the model's
// preprocessing spec): PREFIX.f32, the images as little-endian float32 [N,C,H,W], and
// PREFIX.json, {"shape": [N,C,H,W], "labels": [...]}. scripts/peer/um_peer.py -data PREFIX.f32
// trains on it, so that the peer sees the same tensors as oodguard (JPEG decoding and resizing
// included). No -limit: pass the subset oodguard trained on (e.g. a train-subset folder).
// Usage: go run ./scripts/peer/dumpdata -data PATH[#PREFIX] -preprocess MODEL.preprocess.json -out PREFIX
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	urun "github.com/oodguard/oodguard/unleash/run"
)

func main() {
	data := flag.String("data", "", "dataset PATH or PATH#PREFIX, labelled (as unleash -data)")
	pre := flag.String("preprocess", "", "the model's preprocessing spec JSON")
	out := flag.String("out", "", "output prefix")
	flag.Parse()
	if err := run(*data, *pre, *out); err != nil {
		fmt.Fprintln(os.Stderr, "dumpdata:", err)
		os.Exit(1)
	}
}

func run(data, pre, out string) error {
	if data == "" || pre == "" || out == "" {
		return fmt.Errorf("-data, -preprocess and -out are required")
	}
	b, err := os.ReadFile(pre)
	if err != nil {
		return err
	}
	var spec preprocess.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", pre, err)
	}
	path, prefix, _ := strings.Cut(data, "#")
	r, err := dataset.Open(path, dataset.Options{Prefix: prefix, Layout: dataset.LayoutAuto})
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := urun.Load(context.Background(), data, r, spec, 0, true)
	if err != nil {
		return err
	}
	f, err := os.Create(out + ".f32")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	buf := make([]byte, 4)
	for _, v := range d.X {
		binary.LittleEndian.PutUint32(buf, math.Float32bits(v))
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	meta, err := json.Marshal(map[string]any{"shape": []int{d.Len(), d.C, d.H, d.W}, "labels": d.Labels, "source": data})
	if err != nil {
		return err
	}
	return os.WriteFile(out+".json", meta, 0o644)
}

package unleash

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/gobackend"
	ort "github.com/oodguard/oodguard/runtime"
)

// DefaultGoConfig is the configuration of the pure-Go backend when none is given. Its default
// parallel op scheduling deadlocks on 2-core machines (a worker-pool wait inside convolutions);
// sequential op scheduling does not, and still parallelises inside the large ops.
const DefaultGoConfig = "ops_sequential"

// NewBackend returns the GoMLX backend named by spec:
//
//	"" or "go"        the pure-Go backend with DefaultGoConfig (no native library)
//	"go:OPTIONS"      the pure-Go backend with GoMLX's options, e.g. "go:parallelism=2,ops_sequential"
//	"onnx"            GoMLX graphs run by ONNX Runtime, CPU, with the library the project finds
//	                  (runtime.FindLibrary: $ONNXRUNTIME_LIB, the repo cache, system folders)
//	"onnx:PATH"       the same with the library at PATH
//	"xla:..."         XLA, only in builds with the "xla" tag
//
// Backends are shared: asking twice for the same spec returns the same backend.
func NewBackend(spec string) (compute.Backend, error) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if b, ok := backends[spec]; ok {
		return b, nil
	}
	name, config, _ := strings.Cut(spec, ":")
	var (
		b   compute.Backend
		err error
	)
	switch name {
	case "", "go":
		if config == "" {
			config = DefaultGoConfig
		}
		b, err = gobackend.New(config)
	case "onnx", "onnxruntime":
		b, err = newONNXBackend(config)
	case "xla":
		b, err = newXLABackend(config)
	default:
		err = fmt.Errorf("unknown backend %q (want go, onnx or xla)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("unleash: backend %q: %w", spec, err)
	}
	backends[spec] = b
	return b, nil
}

var (
	backendsMu sync.Mutex
	backends   = map[string]compute.Backend{}
)

func newONNXBackend(path string) (compute.Backend, error) {
	// Never download a library: use the one the rest of oodguard uses.
	onnxbackend.EnableAutoInstall(false)
	if path == "" {
		p, err := ort.FindLibrary("")
		if err != nil {
			return nil, err
		}
		path = p
	}
	// Loading the library probes ONNX Runtime's API versions from the newest the backend knows
	// down, and ORT prints a line to stderr for each one it lacks: keep those off the terminal.
	var b compute.Backend
	err := withoutAPIProbeNoise(func() (err error) {
		b, err = onnxbackend.New("cpu," + path)
		return err
	})
	return b, err
}

// isONNXBackend reports whether b runs graphs on ONNX Runtime.
func isONNXBackend(b compute.Backend) bool {
	_, ok := b.(*onnxbackend.Backend)
	return ok
}

package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// Provider names an ONNX Runtime execution provider.
type Provider string

// The execution providers oodguard can select.
const (
	ProviderCPU      Provider = "cpu"
	ProviderCUDA     Provider = "cuda"
	ProviderTensorRT Provider = "tensorrt" // with CUDA registered after it for the nodes TensorRT does not take
)

// ErrProviderUnavailable is returned when the loaded library lacks the selected provider.
var ErrProviderUnavailable = errors.New("execution provider not available")

// ProviderOptions selects an execution provider and its options.
type ProviderOptions struct {
	Name     Provider `json:"name" yaml:"name"`           // "cpu" (default), "cuda" or "tensorrt"
	DeviceID int      `json:"device_id" yaml:"device_id"` // GPU index for cuda and tensorrt
	// Options go to the provider as they are: for CUDA e.g. "gpu_mem_limit",
	// "cudnn_conv_algo_search"; for TensorRT e.g. "trt_fp16_enable", "trt_engine_cache_enable",
	// "trt_engine_cache_path" (build engines on the target device and keep them there).
	Options map[string]string `json:"options,omitempty" yaml:"options,omitempty"`
	// FallbackToCPU runs on the CPU, with a warning, when the provider is not available. Without
	// it an unavailable provider is an error.
	FallbackToCPU bool `json:"fallback_to_cpu" yaml:"fallback_to_cpu"`
}

// Validate reports whether o names a known provider.
func (o ProviderOptions) Validate() error {
	switch o.Name {
	case "", ProviderCPU:
		if len(o.Options) > 0 {
			return fmt.Errorf("runtime: the cpu execution provider takes no options (got %d)", len(o.Options))
		}
		return nil
	case ProviderCUDA, ProviderTensorRT:
		if o.DeviceID < 0 {
			return fmt.Errorf("runtime: device_id %d must not be negative", o.DeviceID)
		}
		return nil
	default:
		return fmt.Errorf("runtime: unknown execution provider %q (want cpu, cuda or tensorrt)", o.Name)
	}
}

// apply registers the provider with the session options. It returns ErrProviderUnavailable,
// wrapped with the library's own message, when the library lacks the provider.
func (o ProviderOptions) apply(so *ort.SessionOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := o.checkLibraries(); err != nil {
		return err
	}
	switch o.Name {
	case ProviderCUDA:
		return appendCUDA(so, o.DeviceID, o.Options)
	case ProviderTensorRT:
		trt, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return o.unavailable(err)
		}
		defer trt.Destroy()
		opts := map[string]string{"device_id": strconv.Itoa(o.DeviceID)}
		for k, v := range o.Options {
			opts[k] = v
		}
		if err := trt.Update(opts); err != nil {
			return fmt.Errorf("runtime: tensorrt options: %w", err)
		}
		if err := so.AppendExecutionProviderTensorRT(trt); err != nil {
			return o.unavailable(err)
		}
		return appendCUDA(so, o.DeviceID, nil)
	}
	return nil
}

func appendCUDA(so *ort.SessionOptions, device int, extra map[string]string) error {
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return ProviderOptions{Name: ProviderCUDA}.unavailable(err)
	}
	defer cuda.Destroy()
	opts := map[string]string{"device_id": strconv.Itoa(device)}
	for k, v := range extra {
		opts[k] = v
	}
	if err := cuda.Update(opts); err != nil {
		return fmt.Errorf("runtime: cuda options: %w", err)
	}
	if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
		return ProviderOptions{Name: ProviderCUDA}.unavailable(err)
	}
	return nil
}

// providerLibraries lists the shared libraries ONNX Runtime loads, from the folder of
// libonnxruntime.so, for each GPU provider.
var providerLibraries = map[Provider][]string{
	ProviderCUDA:     {"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"},
	ProviderTensorRT: {"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"},
}

// checkLibraries reports ErrProviderUnavailable when a library the provider needs is not beside
// the loaded libonnxruntime.so; ONNX Runtime would fail later with a less helpful message.
func (o ProviderOptions) checkLibraries() error {
	dir := filepath.Dir(LibraryPath())
	for _, name := range providerLibraries[o.Name] {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("runtime: %w: %s needs %s beside %s (a CPU-only ONNX Runtime build lacks it)",
				ErrProviderUnavailable, o.Name, name, LibraryPath())
		}
	}
	return nil
}

func (o ProviderOptions) unavailable(err error) error {
	return fmt.Errorf("runtime: %w: %s in the ONNX Runtime library %s (a CPU-only build lacks it): %v",
		ErrProviderUnavailable, o.Name, LibraryPath(), err)
}

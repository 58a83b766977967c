//go:build !linux

package unleash

// withoutAPIProbeNoise runs f. Only Linux builds filter ONNX Runtime's API-version probe lines
// from stderr (see ortnoise_linux.go).
func withoutAPIProbeNoise(f func() error) error { return f() }

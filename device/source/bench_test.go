package source

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/preprocess"
)

// benchSource is a named way to make a 640x480 source for a benchmark.
type benchSource struct {
	name string
	open func(b *testing.B) device.Source
}

func benchSources() []benchSource {
	folder := func(n int, png bool, opts FolderOptions) func(b *testing.B) device.Source {
		return func(b *testing.B) device.Source {
			files := map[string][]byte{}
			for i := range n {
				img := testImage(640, 480, uint64(i))
				if png {
					files[fmt.Sprintf("%02d.png", i)] = encodePNG(b, img)
				} else {
					files[fmt.Sprintf("%02d.jpg", i)] = encodeJPEG(b, img, 85)
				}
			}
			s, err := OpenFolder(writeFiles(b, files), opts, nil)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	synthetic := func(opts SyntheticOptions) func(b *testing.B) device.Source {
		return func(b *testing.B) device.Source {
			s, err := NewSynthetic(opts)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	srcs := []benchSource{
		{"folder-jpeg-std", folder(8, false, FolderOptions{Loop: true, CacheBytes: -1, JPEGDecoder: JPEGStd})},
		{"folder-jpeg-cached", folder(8, false, FolderOptions{Loop: true})},
		{"folder-png-std", folder(4, true, FolderOptions{Loop: true, CacheBytes: -1})},
		{"synthetic-gradient-rgb", synthetic(SyntheticOptions{})},
		{"synthetic-noise-gray", synthetic(SyntheticOptions{Pattern: PatternNoise, Gray: true})},
		{"camera-yuyv-fake", func(b *testing.B) device.Source {
			dev := &fakeDevice{repeat: bytes.Repeat([]byte{16, 100, 235, 150}, 640*480/2)}
			o := &fakeOpener{devices: []*fakeDevice{dev}, format: camFormat{fourcc: fourccYUYV, width: 640, height: 480}}
			c, err := openCamera(CameraConfig{}, nil, o.open, Sleep)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}},
	}
	if d, err := newTurboJPEG(); err == nil {
		d.close()
		srcs = append(srcs, benchSource{"folder-jpeg-turbo", folder(8, false, FolderOptions{Loop: true, CacheBytes: -1, JPEGDecoder: JPEGTurbo})})
	}
	return srcs
}

// BenchmarkSource measures each source at 640x480, alone and followed by preprocessing into
// the 1x28x28 (Fashion-MNIST) and 3x32x32 (CIFAR-10) tensors. One op is one frame.
func BenchmarkSource(b *testing.B) {
	specs := []struct {
		name string
		spec *preprocess.Spec
	}{
		{"source", nil},
		{"+1x28x28", ptr(preprocess.FashionMNIST())},
		{"+3x32x32", ptr(preprocess.CIFAR10())},
	}
	for _, bs := range benchSources() {
		for _, sp := range specs {
			b.Run(bs.name+"/"+sp.name, func(b *testing.B) {
				src := bs.open(b)
				defer src.Close()
				var pre *preprocess.Preprocessor
				var tensor []float32
				if sp.spec != nil {
					var err error
					if pre, err = preprocess.New(*sp.spec); err != nil {
						b.Fatal(err)
					}
					tensor = make([]float32, pre.Len())
				}
				var f device.Frame
				for range 16 { // warm up: buffers, cache
					next(b, src, &f)
				}
				b.ReportAllocs()
				for b.Loop() {
					next(b, src, &f)
					if pre != nil {
						if err := pre.Process(tensor, f.Image); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkConvertYUYV measures the YUYV conversion of a 640x480 frame alone.
func BenchmarkConvertYUYV(b *testing.B) {
	src := bytes.Repeat([]byte{16, 100, 235, 150}, 640*480/2)
	f := YUYVFormat{Width: 640, Height: 480}
	dst, _ := ConvertYUYV(nil, src, f)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = ConvertYUYV(dst, src, f)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

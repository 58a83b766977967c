package preprocess

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/oodguard/oodguard/dataset"
)

// TestPresetConstants recomputes the preset normalisation constants from the real
// training sets in $OODGUARD_DATA (e.g. ../shared/data). It is skipped when OODGUARD_DATA
// is unset and in -short mode. Fashion-MNIST must round to the preset values; the CIFAR-10
// JPEG copy is only reported, since its presets come from the Unleashing Mask code and
// JPEG compression shifts the statistics a little.
func TestPresetConstants(t *testing.T) {
	root := os.Getenv("OODGUARD_DATA")
	if root == "" || testing.Short() {
		t.Skip("set OODGUARD_DATA to the shared data folder to recompute the preset constants")
	}
	mean, std := channelStats(t, filepath.Join(root, "fashion-mnist/train-images-idx3-ubyte.gz"), dataset.Options{}, 1)
	t.Logf("Fashion-MNIST train: mean %.6f std %.6f", mean[0], std[0])
	s := FashionMNIST()
	if math.Abs(mean[0]-float64(s.Mean[0])) > 5e-5 || math.Abs(std[0]-float64(s.Std[0])) > 5e-5 {
		t.Errorf("Fashion-MNIST mean %.6f std %.6f do not round to the preset %v %v", mean[0], std[0], s.Mean, s.Std)
	}
	mean, std = channelStats(t, filepath.Join(root, "cifar10/train.tar"), dataset.Options{Prefix: "train"}, 3)
	t.Logf("CIFAR-10 train (JPEG copy), in 0..255: mean %.2f %.2f %.2f, std %.2f %.2f %.2f (presets: 125.3 123.0 113.9, 63.0 62.1 66.7)",
		255*mean[0], 255*mean[1], 255*mean[2], 255*std[0], 255*std[1], 255*std[2])
}

// channelStats returns the per-channel mean and population standard deviation of every
// pixel of a dataset, scaled to [0,1], read through a Preprocessor with mean 0 and std 1.
func channelStats(t *testing.T, path string, opts dataset.Options, channels int) (mean, std []float64) {
	r, err := dataset.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	b := first.Image.Bounds()
	s := Spec{Width: b.Dx(), Height: b.Dy(), Channels: channels}
	for range channels {
		s.Mean, s.Std = append(s.Mean, 0), append(s.Std, 1)
	}
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, p.Len())
	sum, sq := make([]float64, channels), make([]float64, channels)
	n := 0
	for sample := first; ; n++ {
		if err := p.Process(dst, sample.Image); err != nil {
			t.Fatal(err)
		}
		plane := len(dst) / channels
		for c := range channels {
			for _, v := range dst[c*plane : (c+1)*plane] {
				sum[c] += float64(v)
				sq[c] += float64(v) * float64(v)
			}
		}
		if sample, err = r.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			n++
			break
		}
	}
	count := float64(n * b.Dx() * b.Dy())
	for c := range channels {
		m := sum[c] / count
		mean = append(mean, m)
		std = append(std, math.Sqrt(sq[c]/count-m*m))
	}
	return mean, std
}

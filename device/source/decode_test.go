package source

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/device/preprocess"
)

// TestDecodeNormalizes checks that every PNG and JPEG kind comes out as a type preprocess reads
// directly, with the tensor preprocess makes of Go's own decoding.
func TestDecodeNormalizes(t *testing.T) {
	for _, rel := range []string{
		"png/testdata/pngsuite/basn3p08.png", // paletted
		"png/testdata/pngsuite/tbbn3p08.png", // paletted, transparent
		"png/testdata/pngsuite/basn0g16.png", // 16-bit gray
		"png/testdata/pngsuite/basn2c16.png", // 16-bit RGB
		"png/testdata/pngsuite/basn6a16.png", // 16-bit RGBA
		"png/testdata/pngsuite/basn4a08.png", // gray + alpha
		"png/testdata/pngsuite/basn0g01.png", // 1-bit gray
		"testdata/video-001.cmyk.jpeg",
		"testdata/video-001.rgb.jpeg",
		"testdata/video-001.q50.411.jpeg",
		"testdata/video-005.gray.jpeg",
	} {
		t.Run(rel, func(t *testing.T) {
			data := readFile(t, goImageTestdata(t, rel))
			var want image.Image
			var err error
			if strings.HasSuffix(rel, ".png") {
				want, err = png.Decode(bytes.NewReader(data))
			} else {
				want, err = jpeg.Decode(bytes.NewReader(data))
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := newFrameDecoder(JPEGStd)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := d.decode(data)
			if err != nil {
				t.Fatal(err)
			}
			switch got.(type) {
			case *image.Gray, *image.RGBA, *image.NRGBA, *image.YCbCr:
			default:
				t.Fatalf("decoded to %T, which preprocess reads through At", got)
			}
			for _, spec := range []preprocess.Spec{preprocess.FashionMNIST(), preprocess.CIFAR10()} {
				if d := maxDiff(tensor(t, spec, got), tensor(t, spec, want)); d != 0 {
					t.Errorf("%dx%dx%d tensor differs from Go's decoding by %g", spec.Channels, spec.Height, spec.Width, d)
				}
			}
		})
	}
}

func TestDecodeJPEGBytes(t *testing.T) {
	jpg := encodeJPEG(t, testImage(40, 30, 1), 80)
	d, _ := newFrameDecoder(JPEGStd)
	_, enc, err := d.decode(jpg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, jpg) {
		t.Error("Encoded is not the JPEG itself")
	}
	_, enc, err = d.decode(encodePNG(t, testImage(4, 4, 1)))
	if err != nil || enc != nil {
		t.Errorf("PNG: encoded %d bytes, err %v; want none, nil", len(enc), err)
	}
}

func TestDecodeErrors(t *testing.T) {
	jpg := encodeJPEG(t, testImage(64, 48, 1), 80)
	pngData := encodePNG(t, testImage(64, 48, 1))
	huge := slices.Clone(jpg)
	// The SOF0 segment of Go's JPEG: ff c0, length, precision, height, width.
	sof := bytes.Index(huge, []byte{0xff, 0xc0})
	huge[sof+5], huge[sof+6], huge[sof+7], huge[sof+8] = 0xff, 0xff, 0xff, 0xff
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"truncated JPEG", "decode JPEG", jpg[:len(jpg)/2]},
		{"truncated PNG", "decode PNG", pngData[:len(pngData)/2]},
		{"corrupt PNG", "decode PNG", append(slices.Clone(pngData[:40]), bytes.Repeat([]byte{7}, 200)...)},
		{"65535x65535 JPEG", "larger than the limit", huge},
		{"garbage", "not a JPEG or PNG", []byte("GIF89a....")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newFrameDecoder("")
			_, _, err := d.decode(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestUnknownJPEGDecoder(t *testing.T) {
	if _, err := newFrameDecoder("libjpeg"); err == nil || !strings.Contains(err.Error(), "unknown JPEG decoder") {
		t.Errorf("err = %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the decode path of the folder source and the camera:
// it must return an image or an error, never panic.
func FuzzDecode(f *testing.F) {
	f.Add(encodeJPEG(f, testImage(24, 16, 1), 75))
	f.Add(stripDHT(f, encodeJPEG(f, testImage(17, 9, 2), 50)))
	f.Add(encodeJPEG(f, image.NewGray(image.Rect(0, 0, 8, 8)), 50))
	f.Add(encodePNG(f, testImage(5, 3, 1)))
	f.Add(encodePNG(f, image.NewPaletted(image.Rect(0, 0, 3, 3), []color.Color{color.Black, color.White})))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 1, 0, 1, 1, 1, 0x11, 0, 0xff, 0xda, 0, 2})
	d, err := newFrameDecoder("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := d.decode(data)
		if err == nil && img == nil {
			t.Fatal("no image and no error")
		}
	})
}

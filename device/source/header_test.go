package source

import (
	"image"
	"strings"
	"testing"
)

func TestReadHeader(t *testing.T) {
	jpg := encodeJPEG(t, testImage(33, 17, 1), 80)
	pngData := encodePNG(t, image.NewGray(image.Rect(0, 0, 5, 7)))
	for _, tc := range []struct {
		name    string
		data    []byte
		format  imageFormat
		w, h    int
		wantErr string
	}{
		{"jpeg", jpg, formatJPEG, 33, 17, ""},
		{"png", pngData, formatPNG, 5, 7, ""},
		{"empty", nil, 0, 0, 0, "not a JPEG or PNG"},
		{"text", []byte("hello"), 0, 0, 0, "not a JPEG or PNG"},
		{"jpeg SOI only", []byte{0xff, 0xd8}, 0, 0, 0, "truncated"},
		{"jpeg cut in the header", jpg[:40], 0, 0, 0, "truncated"},
		{"jpeg EOI first", []byte{0xff, 0xd8, 0xff, 0xd9}, 0, 0, 0, "end of image"},
		{"jpeg scan before frame", []byte{0xff, 0xd8, 0xff, 0xda, 0, 2}, 0, 0, 0, "scan before"},
		{"jpeg bad length", []byte{0xff, 0xd8, 0xff, 0xe0, 0, 1}, 0, 0, 0, "truncated"},
		{"jpeg zero size", []byte{0xff, 0xd8, 0xff, 0xc0, 0, 7, 8, 0, 0, 0, 4}, 0, 0, 0, "unsupported size"},
		{"jpeg two frames", []byte{0xff, 0xd8, 0xff, 0xc0, 0, 7, 8, 0, 1, 0, 1, 0xff, 0xc0, 0, 7, 8, 0, 1, 0, 1}, 0, 0, 0, "more than one"},
		{"png cut", pngData[:20], 0, 0, 0, "truncated"},
		{"png zero width", append(append([]byte{}, pngData[:16]...), 0, 0, 0, 0, 0, 0, 0, 1), 0, 0, 0, "invalid size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hd, err := readHeader(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if hd.format != tc.format || hd.width != tc.w || hd.height != tc.h {
				t.Errorf("got format %d %dx%d, want %d %dx%d", hd.format, hd.width, hd.height, tc.format, tc.w, tc.h)
			}
		})
	}
}

func TestReadHeaderFindsScanAndTables(t *testing.T) {
	jpg := encodeJPEG(t, testImage(16, 16, 1), 80)
	hd, err := readHeader(jpg)
	if err != nil {
		t.Fatal(err)
	}
	if !hd.hasDHT {
		t.Error("Go's encoder writes Huffman tables; hasDHT is false")
	}
	if jpg[hd.sos] != 0xff || jpg[hd.sos+1] != 0xda {
		t.Errorf("sos = %d points at % x, want ff da", hd.sos, jpg[hd.sos:hd.sos+2])
	}
}

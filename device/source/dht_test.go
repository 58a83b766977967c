package source

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// stripDHT returns data without its Huffman table segments, as UVC cameras send MJPEG frames.
func stripDHT(t testing.TB, data []byte) []byte {
	t.Helper()
	hd, err := readHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	out = append(out, data[:2]...)
	for i := 2; i < hd.sos; {
		n := int(data[i+2])<<8 | int(data[i+3])
		if data[i+1] != 0xc4 {
			out = append(out, data[i:i+2+n]...)
		}
		i += 2 + n
	}
	return append(out, data[hd.sos:]...)
}

// TestStandardTablesAreGos checks stdDHT against the segment Go's encoder writes, which holds
// the same Annex K.3 tables.
func TestStandardTablesAreGos(t *testing.T) {
	data := encodeJPEG(t, testImage(16, 16, 1), 90)
	i := bytes.Index(data, []byte{0xff, 0xc4})
	if i < 0 {
		t.Fatal("no DHT in Go's JPEG")
	}
	n := int(data[i+2])<<8 | int(data[i+3])
	if got := data[i : i+2+n]; !bytes.Equal(stdDHT, got) {
		t.Errorf("stdDHT differs from Go's encoder tables:\n got % x\nwant % x", stdDHT, got)
	}
}

func TestMJPEGWithoutTables(t *testing.T) {
	src := testImage(64, 48, 3)
	full := encodeJPEG(t, src, 85)
	bare := stripDHT(t, full)
	if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
		t.Fatal("Go decoded a JPEG without Huffman tables: the test no longer shows the problem")
	}
	d, err := newFrameDecoder(JPEGStd)
	if err != nil {
		t.Fatal(err)
	}
	img, enc, err := d.decode(bare)
	if err != nil {
		t.Fatalf("decode without tables: %v", err)
	}
	want, err := jpeg.Decode(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	got, w := img.(*image.YCbCr), want.(*image.YCbCr)
	if !bytes.Equal(got.Y, w.Y) || !bytes.Equal(got.Cb, w.Cb) || !bytes.Equal(got.Cr, w.Cr) {
		t.Error("pixels differ from the JPEG with its tables")
	}
	if _, err := jpeg.Decode(bytes.NewReader(enc)); err != nil {
		t.Errorf("Frame.Encoded of a frame without tables does not decode on its own: %v", err)
	}
}

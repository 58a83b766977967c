package source

import (
	"bytes"
	"context"
	"errors"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oodguard/oodguard/device"
)

// folderOf writes n JPEG frames (a.jpg, b.jpg, ...) of w x h and returns the folder and the
// files' contents in order.
func folderOf(t testing.TB, n, w, h int) (string, [][]byte) {
	t.Helper()
	files := map[string][]byte{}
	var data [][]byte
	for i := range n {
		b := encodeJPEG(t, testImage(w, h, uint64(i)), 85)
		files[string(rune('a'+i))+".jpg"] = b
		data = append(data, b)
	}
	return writeFiles(t, files), data
}

func openFolder(t testing.TB, path string, opts FolderOptions) *Folder {
	t.Helper()
	s, err := OpenFolder(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFolderOrderAndEOF(t *testing.T) {
	dir := writeFiles(t, map[string][]byte{
		"b.png":       encodePNG(t, testImage(8, 6, 2)),
		"a.JPG":       encodeJPEG(t, testImage(8, 6, 1), 90),
		"c.jpeg":      encodeJPEG(t, testImage(8, 6, 3), 90),
		"notes.txt":   []byte("not an image"),
		".hidden.jpg": encodeJPEG(t, testImage(8, 6, 4), 90),
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openFolder(t, dir, FolderOptions{})
	var f device.Frame
	for i, want := range []string{"a.JPG", "b.png", "c.jpeg"} {
		next(t, s, &f)
		if filepath.Base(f.Name) != want || f.ID != uint64(i+1) {
			t.Errorf("frame %d: %s (ID %d), want %s (ID %d)", i, f.Name, f.ID, want, i+1)
		}
		if (f.Encoded == nil) != strings.HasSuffix(want, ".png") {
			t.Errorf("%s: Encoded has %d bytes", want, len(f.Encoded))
		}
	}
	if err := s.Next(context.Background(), &f); err != io.EOF {
		t.Errorf("after the last file: %v, want io.EOF", err)
	}
}

func TestFolderSingleFileAndErrors(t *testing.T) {
	dir, data := folderOf(t, 1, 10, 10)
	s := openFolder(t, filepath.Join(dir, "a.jpg"), FolderOptions{})
	var f device.Frame
	next(t, s, &f)
	if !bytes.Equal(f.Encoded, data[0]) {
		t.Error("Encoded is not the file")
	}
	empty := writeFiles(t, map[string][]byte{"x.txt": nil})
	if _, err := OpenFolder(empty, FolderOptions{}, nil); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("folder without images: %v", err)
	}
	if _, err := OpenFolder(filepath.Join(dir, "missing"), FolderOptions{}, nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: %v", err)
	}
	if _, err := OpenFolder(dir, FolderOptions{FPS: -1}, nil); err == nil {
		t.Error("negative fps accepted")
	}
	if _, err := OpenFolder(dir, FolderOptions{JPEGDecoder: "nope"}, nil); err == nil {
		t.Error("unknown decoder accepted")
	}
}

// TestFolderBadFrames checks that corrupt, truncated and vanished files are frame errors that
// name the file, and that the source goes on.
func TestFolderBadFrames(t *testing.T) {
	good := encodeJPEG(t, testImage(16, 16, 1), 80)
	for _, cache := range []int64{0, -1} {
		dir := writeFiles(t, map[string][]byte{
			"1.jpg": good,
			"2.jpg": good[:len(good)*3/4],
			"3.png": []byte("\x89PNG\r\n\x1a\nrubbish"),
			"4.jpg": good,
			"5.jpg": good,
		})
		s := openFolder(t, dir, FolderOptions{Loop: true, CacheBytes: cache})
		if err := os.Remove(filepath.Join(dir, "4.jpg")); err != nil {
			t.Fatal(err)
		}
		var f device.Frame
		for pass := range 2 {
			for _, want := range []string{"1.jpg", "2.jpg", "3.png", "4.jpg", "5.jpg"} {
				err := s.Next(context.Background(), &f)
				if want == "1.jpg" || want == "5.jpg" {
					if err != nil {
						t.Fatalf("cache %d pass %d %s: %v", cache, pass, want, err)
					}
					continue
				}
				var fe *device.FrameError
				if !errors.Is(err, device.ErrBadFrame) || !errors.As(err, &fe) || filepath.Base(fe.Name) != want || !strings.Contains(err.Error(), want) {
					t.Errorf("cache %d pass %d %s: err = %v, want a frame error naming the file", cache, pass, want, err)
				}
			}
		}
	}
}

func TestFolderAllBadStopsLooping(t *testing.T) {
	dir := writeFiles(t, map[string][]byte{"1.jpg": []byte("no"), "2.png": []byte("no")})
	s := openFolder(t, dir, FolderOptions{Loop: true})
	var f device.Frame
	for range 2 {
		if err := s.Next(context.Background(), &f); !errors.Is(err, device.ErrBadFrame) {
			t.Fatalf("err = %v, want a frame error", err)
		}
	}
	err := s.Next(context.Background(), &f)
	if err == nil || errors.Is(err, device.ErrBadFrame) || !strings.Contains(err.Error(), dir) {
		t.Errorf("after a pass without a good frame: %v, want a fatal error naming the folder", err)
	}
}

// TestFolderCache checks that cached frames equal decoded ones, that a small budget caches a
// prefix and decodes the rest, and that cached frames keep their JPEG bytes.
func TestFolderCache(t *testing.T) {
	dir, data := folderOf(t, 4, 32, 24)
	d, _ := newFrameDecoder("")
	img, _, err := d.decode(data[0])
	if err != nil {
		t.Fatal(err)
	}
	frameBytes := imageBytes(img)
	for _, tc := range []struct {
		name   string
		budget int64
		cached int
	}{
		{"all", 0, 4},
		{"two", 2*frameBytes + int64(len(data[0])+len(data[1])) + 10, 2},
		{"off", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openFolder(t, dir, FolderOptions{Loop: true, CacheBytes: tc.budget})
			var f device.Frame
			var first [][]byte
			for i := range 12 {
				next(t, s, &f)
				y := f.Image.(*image.YCbCr).Y
				if i < 4 {
					first = append(first, bytes.Clone(y))
				} else if !bytes.Equal(y, first[i%4]) {
					t.Errorf("frame %d differs from its first pass", i)
				}
				if !bytes.Equal(f.Encoded, data[i%4]) {
					t.Errorf("frame %d: Encoded is not the file", i)
				}
			}
			if got := s.cache.count(); got != tc.cached {
				t.Errorf("%d frames cached, want %d", got, tc.cached)
			}
		})
	}
}

func TestFolderOnceDoesNotCache(t *testing.T) {
	dir, _ := folderOf(t, 2, 8, 8)
	s := openFolder(t, dir, FolderOptions{})
	var f device.Frame
	next(t, s, &f)
	next(t, s, &f)
	if s.cache.count() != 0 {
		t.Error("a source that does not loop cached frames")
	}
}

func TestFolderFPSAndCancel(t *testing.T) {
	dir, _ := folderOf(t, 1, 8, 8)
	s := openFolder(t, dir, FolderOptions{Loop: true, FPS: 50})
	var f device.Frame
	start := time.Now()
	for range 6 {
		next(t, s, &f)
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("6 frames at 50 fps took %v, want at least 100ms", el)
	}
	slow := openFolder(t, dir, FolderOptions{Loop: true, FPS: 0.01})
	next(t, slow, &f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := slow.Next(ctx, &f); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled wait: %v", err)
	}
}

func TestFolderClose(t *testing.T) {
	dir, _ := folderOf(t, 1, 8, 8)
	s := openFolder(t, dir, FolderOptions{Loop: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var f device.Frame
	if err := s.Next(context.Background(), &f); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
}

// TestFolderAllocs measures the allocations per frame of each decode path at 320x240 (JPEG's
// are the same at any size, PNG's grow with it; BenchmarkSource measures 640x480); the cached
// path must make none.
func TestFolderAllocs(t *testing.T) {
	dir, _ := folderOf(t, 3, 320, 240)
	pngDir := writeFiles(t, map[string][]byte{"a.png": encodePNG(t, testImage(320, 240, 1))})
	for _, tc := range []struct {
		name string
		dir  string
		opts FolderOptions
		max  float64 // -1: only reported
	}{
		{"jpeg std", dir, FolderOptions{Loop: true, CacheBytes: -1, JPEGDecoder: JPEGStd}, -1},
		{"png std", pngDir, FolderOptions{Loop: true, CacheBytes: -1}, -1},
		{"jpeg cached", dir, FolderOptions{Loop: true}, 0},
	} {
		s := openFolder(t, tc.dir, tc.opts)
		var f device.Frame
		for range 3 {
			next(t, s, &f) // fill the buffers and the cache
		}
		n := testing.AllocsPerRun(10, func() { next(t, s, &f) })
		t.Logf("%s: %v allocations per frame", tc.name, n)
		if tc.max >= 0 && n > tc.max {
			t.Errorf("%s: %v allocations per frame, want at most %v", tc.name, n, tc.max)
		}
	}
}

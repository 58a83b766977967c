package source

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/oodguard/oodguard/device"
)

// FolderOptions configure a folder source. The zero value reads each file once, as fast as the
// consumer asks, with the best JPEG decoder of the build.
type FolderOptions struct {
	Loop        bool    `json:"loop" yaml:"loop"`                 // start again after the last file instead of returning io.EOF
	FPS         float64 `json:"fps" yaml:"fps"`                   // most frames per second; 0: no limit
	CacheBytes  int64   `json:"cache_bytes" yaml:"cache_bytes"`   // when looping, memory for decoded frames; 0: DefaultCacheBytes; < 0: no cache
	JPEGDecoder string  `json:"jpeg_decoder" yaml:"jpeg_decoder"` // JPEGStd or JPEGTurbo; "": turbojpeg when built in, else std
}

// Validate reports whether the options are usable.
func (o FolderOptions) Validate() error {
	if o.FPS < 0 || math.IsNaN(o.FPS) || math.IsInf(o.FPS, 0) {
		return fmt.Errorf("folder source: fps must be a finite number >= 0, not %v", o.FPS)
	}
	return nil
}

// Folder is a Source of the JPEG and PNG images of a folder, in file name order, or of one
// image file. See the package documentation for its decode paths and their allocations.
//
// The folder is listed once, by OpenFolder. A file that cannot be read or decoded (corrupt,
// truncated, removed since) gives a device.FrameError that names it, and the next Next goes on
// with the next file. A looping source whose files all failed in one pass returns an error
// that is not a frame error, rather than spin.
type Folder struct {
	path  string
	names []string // the image files, full paths, sorted
	files *fileReader
	dec   *frameDecoder
	cache *frameCache // empty unless looping
	pace  *pacer
	loop  bool
	log   *zap.Logger

	buf    []byte // the file being decoded
	pos    int    // next file
	good   int    // frames delivered in the current pass
	id     uint64
	full   bool // the cache has closed (logged once)
	closed bool
}

var _ device.Source = (*Folder)(nil)

// OpenFolder returns a source of the images in the folder path (files ending in .jpg, .jpeg or
// .png, any case, not hidden, not in subfolders) or of the image file path. log may be nil.
func OpenFolder(path string, opts FolderOptions, log *zap.Logger) (*Folder, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	names, skipped, err := listImages(path)
	if err != nil {
		return nil, err
	}
	dec, err := newFrameDecoder(opts.JPEGDecoder)
	if err != nil {
		return nil, fmt.Errorf("folder source %s: %w", path, err)
	}
	s := &Folder{
		path:  path,
		names: names,
		files: newFileReader(names),
		dec:   dec,
		pace:  newPacer(opts.FPS),
		loop:  opts.Loop,
		log:   log.Named("folder").With(zap.String("path", path)),
	}
	budget := opts.CacheBytes
	if budget == 0 {
		budget = DefaultCacheBytes
	}
	if !opts.Loop {
		budget = 0 // each frame is served once: nothing to gain
	}
	s.cache = newFrameCache(len(names), budget)
	s.log.Info("folder source opened", zap.Int("files", len(names)), zap.Int("skipped", skipped),
		zap.Bool("loop", opts.Loop), zap.Float64("fps", opts.FPS), zap.Int64("cache_bytes", max(budget, 0)))
	return s, nil
}

// listImages returns the image files of the folder path, sorted, and how many other entries it
// skipped; or path itself when it is a file.
func listImages(path string) (names []string, skipped int, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("folder source: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, 0, nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, 0, fmt.Errorf("folder source: %w", err)
	}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || (ext != ".jpg" && ext != ".jpeg" && ext != ".png") {
			skipped++
			continue
		}
		names = append(names, filepath.Join(path, e.Name()))
	}
	if len(names) == 0 {
		return nil, skipped, fmt.Errorf("folder source: no .jpg, .jpeg or .png file in %s", path)
	}
	return names, skipped, nil
}

// Next fills f with the next image. See device.Source.
func (s *Folder) Next(ctx context.Context, f *device.Frame) error {
	if s.closed {
		return device.ErrClosed
	}
	if s.pos == len(s.names) {
		if !s.loop {
			return io.EOF
		}
		if s.good == 0 {
			return fmt.Errorf("folder source %s: none of its %d files could be decoded", s.path, len(s.names))
		}
		s.pos, s.good = 0, 0
	}
	if err := s.pace.wait(ctx); err != nil {
		return err
	}
	i := s.pos
	s.pos++
	img, jpeg, err := s.frame(i)
	if err != nil {
		return &device.FrameError{Name: s.names[i], Err: err}
	}
	s.good++
	s.id++
	*f = device.Frame{ID: s.id, Time: time.Now(), Image: img, Encoded: jpeg, Name: s.names[i]}
	return nil
}

// frame returns image i from the cache, or reads and decodes it, and caches it when it fits.
func (s *Folder) frame(i int) (image.Image, []byte, error) {
	if c, ok := s.cache.get(i); ok {
		return c.img, c.jpeg, nil
	}
	data, err := s.files.read(i, s.buf, MaxFileBytes)
	s.buf = data[:0]
	if err != nil {
		return nil, nil, err
	}
	img, jpeg, err := s.dec.decode(data)
	if err != nil {
		return nil, nil, err
	}
	if !s.cache.put(i, img, jpeg) && s.cache.closed && !s.full {
		s.full = true
		s.log.Info("frame cache full: later frames are decoded on every pass", zap.Int("cached", s.cache.count()))
	}
	return img, jpeg, nil
}

// Close releases the decoder and the cached frames.
func (s *Folder) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.pace.stop()
	s.dec.close()
	s.cache, s.buf = nil, nil
	return nil
}

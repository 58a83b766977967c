// Package source holds the frame sources of the device daemon, each a device.Source:
//
//   - Folder (OpenFolder): the JPEG and PNG files of a folder in name order, or one file, once
//     or looping, at a frame rate or as fast as asked. For demos, tests and replays.
//   - Synthetic (NewSynthetic): generated gradients or noise, deterministic, for benchmarks and
//     tests.
//   - Camera (OpenCamera): a V4L2 camera through github.com/blackjack/webcam (Linux only), YUYV
//     or MJPEG, reopened with backoff when it goes away.
//
// # Buffers and allocations
//
// Every source owns the buffers it fills: a Frame's Image and Encoded stay valid until the next
// Next or Close (see device.Frame). Images are always *image.Gray, *image.RGBA, *image.NRGBA or
// *image.YCbCr, the types device/preprocess reads without allocating; other decoded types
// (palette and 16-bit PNGs, CMYK JPEGs) are converted into a reused buffer first.
//
// Allocations per 640x480 frame, measured by the benchmarks (BenchmarkSource) and checked by
// the tests with testing.AllocsPerRun, with or without preprocessing after:
//
//	Synthetic                              0
//	Camera, YUYV (copy + 4:2:2 conversion) 0
//	Folder, cached frames (looping)        0
//	Folder, JPEG, JPEGTurbo                0  (build tag turbojpeg)
//	Folder, JPEG, JPEGStd                  5  (~480 KB: Go's decoder state and a new image)
//	Folder, PNG                          170  (~1.3 MB: image/png, zlib)
//
// # Decode paths
//
// Go's image/jpeg and image/png allocate their state and a new image on every Decode, and
// neither can decode into a given buffer. The folder source therefore reads each file into one
// reused buffer (on Linux through openat/read on C-string paths made once, which allocates
// nothing where os.Open allocates three times) and then:
//
//  1. caches: a looping folder keeps each frame decoded the first time (a copy of the image and
//     of the JPEG bytes, for Encoded) while they fit FolderOptions.CacheBytes (64 MiB by
//     default: about 130 frames of 640x480, 4:2:0 planes and a 50 kB JPEG each). Later passes
//     serve them from memory: no file read, no decode, no allocation. Frames past the budget
//     fall back to path 2 on every pass. The folder is not re-read, so a cached file changed
//     on disk is not seen.
//  2. decodes with the standard library (JPEGStd, the default build): 5 allocations (480 kB)
//     per JPEG frame, and about 4.5 times slower than libjpeg-turbo (4.5 ms against 1.0 ms
//     for a 640x480 frame on the 2-core development machine).
//  3. decodes with libjpeg-turbo (JPEGTurbo) when built with -tags turbojpeg (cgo, Debian's
//     libturbojpeg0-dev; the default build needs no native library): the JPEG's Y, Cb and Cr
//     planes are decoded, without colour conversion, into one reused buffer behind a reused
//     *image.YCbCr or *image.Gray, as Go's decoder would give them (samples within one level:
//     the two IDCTs round differently). CMYK, YCCK and RGB JPEGs and unusual subsamplings
//     (4:1:0) go to Go's decoder. It is stricter than Go's: a libjpeg warning fails the frame.
//
// With the tag, JPEGTurbo is the default for the folder source and for MJPEG cameras; without
// it JPEGStd is, and asking for JPEGTurbo is an error.
//
// # Bad input
//
// A file or camera frame that cannot be read or decoded gives a *device.FrameError naming the
// file or device, which matches device.ErrBadFrame; the source stays usable. Sizes are read from
// the JPEG or PNG header before decoding and refused above MaxFramePixels, files above
// MaxFileBytes. No input makes a source panic (FuzzDecode, FuzzConvertYUYV).
package source

//go:build !turbojpeg || !cgo

package source

import "errors"

// newTurboJPEG reports that this build has no libjpeg-turbo decoder.
func newTurboJPEG() (jpegDecoder, error) {
	return nil, errors.New("JPEG decoder turbojpeg: not in this build (build with -tags turbojpeg and cgo; needs libturbojpeg)")
}

//go:build !linux

package source

import "errors"

// openV4L2 reports that cameras need Linux: V4L2 exists nowhere else.
func openV4L2(CameraConfig) (camDevice, camFormat, error) {
	return nil, camFormat{}, errors.New("V4L2 cameras are supported on Linux only")
}

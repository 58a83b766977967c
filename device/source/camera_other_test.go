//go:build !linux

package source

import (
	"strings"
	"testing"
)

func TestCameraNeedsLinux(t *testing.T) {
	if _, err := OpenCamera(CameraConfig{}, nil); err == nil || !strings.Contains(err.Error(), "Linux only") {
		t.Errorf("err = %v", err)
	}
}

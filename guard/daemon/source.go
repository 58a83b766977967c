package daemon

import (
	"fmt"

	"github.com/oodguard/oodguard/device"
	"github.com/oodguard/oodguard/device/source"
	"go.uber.org/zap"
)

// openSource opens the configured frame source.
func openSource(c SourceConfig, log *zap.Logger) (device.Source, error) {
	switch c.Type {
	case "folder":
		return source.OpenFolder(c.Path, c.Folder, log)
	case "camera":
		return source.OpenCamera(c.Camera, log)
	case "synthetic":
		return source.NewSynthetic(c.Synthetic)
	}
	return nil, fmt.Errorf("unknown source type %q", c.Type)
}

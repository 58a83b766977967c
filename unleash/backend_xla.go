//go:build xla

package unleash

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/go-xla/compute/xla"
)

// newXLABackend returns the XLA backend. It needs the PJRT plugin installed beforehand: this
// machine's network cannot download it at first use.
func newXLABackend(config string) (compute.Backend, error) {
	return xla.New(config)
}

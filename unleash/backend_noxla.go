//go:build !xla

package unleash

import (
	"errors"

	"github.com/gomlx/compute"
)

func newXLABackend(string) (compute.Backend, error) {
	return nil, errors.New("this build has no XLA backend (build with -tags xla)")
}

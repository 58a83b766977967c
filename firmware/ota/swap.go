package ota

// SwapMode is how the daemon brings a slot into service after Install or Rollback.
type SwapMode string

const (
	// SwapRestart: the daemon exits with ExitRestart and systemd starts it again; the new
	// process calls Recover and Activate, which load the current slot.
	SwapRestart SwapMode = "restart"
	// SwapInProcess: the daemon opens an ONNX Runtime session of the new slot, checks it, swaps
	// it in under a lock and destroys the old session.
	SwapInProcess SwapMode = "in-process"
)

// RecommendedSwap is how oodguardd applies a new model: a clean restart under systemd, because
// ONNX Runtime does not give back the memory of destroyed sessions (see "Applying a new model"
// in the package documentation for the measurements).
const RecommendedSwap = SwapRestart

// ExitRestart is the exit status with which the daemon asks systemd to start it again into the
// current slot (EX_TEMPFAIL from sysexits.h). With Restart=on-failure in the unit, systemd
// restarts on it like on any failure.
const ExitRestart = 75

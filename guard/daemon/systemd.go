package daemon

import (
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifyReady tells systemd (Type=notify) that the daemon is up. Outside systemd it does
// nothing. unsetEnv stays false: clearing NOTIFY_SOCKET would silence every later watchdog ping.
func notifyReady(log *zap.Logger) {
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		log.Warn("sd_notify READY failed", zap.Error(err))
	} else if ok {
		log.Info("told systemd we are ready")
	}
}

// notifyWatchdog pings the systemd watchdog.
func notifyWatchdog() { sd.SdNotify(false, sd.SdNotifyWatchdog) }

// watchdogInterval returns half of systemd's WatchdogSec, or 0 when the watchdog is off.
func watchdogInterval(log *zap.Logger) time.Duration {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("reading the systemd watchdog settings", zap.Error(err))
		return 0
	}
	return d / 2
}

// Package ota is the device side of over-the-air model updates: it downloads signed bundles
// (see package firmware/bundle) with resume, installs them into slots on disk, puts a new slot
// on trial, and commits it or rolls back to the previous one, so that a power cut or a crash at
// any point leaves the device serving a complete, verified model. It does not talk MQTT or load
// models: oodguardd calls it, supplies the model check (CheckFunc), and publishes the states it
// reports (Config.OnState).
//
// # On disk
//
// Everything lives in one state folder, e.g. /var/lib/oodguard (systemd's StateDirectory=):
//
//	ota-state.json          the state machine (State): phase, current, previous, pending slot,
//	                        attempt counter, reason
//	current  -> slots/1.3.0-1
//	previous -> slots/1.2.0-1
//	slots/1.3.0-1/          manifest.json, manifest.sig, model.onnx, calibration.json,
//	slots/1.2.0-1/          canary-*.f32, as bundle.Open extracted and checked them
//	slots/.staging*         only while a bundle is being extracted
//	downloads/SHA256.bundle(.part)   only while a bundle is being downloaded or installed
//
// A slot is named VERSION-N (N counts reinstalls of one version) and never changes once
// installed. At most two slots are kept: the current one and the previous one; older slots,
// and anything an interrupted install left, are removed.
//
// The state file is the single source of truth, and the links follow it. Every transition is
// one write of ota-state.json with internal/atomicfile (temporary file, fsync, rename, folder
// fsync), made before anything else changes; then the current and previous links are switched,
// each by creating a temporary symlink and renaming it over the old one (atomic) and syncing
// the folder; then unneeded slots are removed. Recover, at every daemon start, points the links
// where the state file says, which finishes a switch that a crash cut short. Why both:
//
//   - Two symlinks cannot change together atomically, and a trial changes more than one
//     pointer at once (current, previous, pending) plus an attempt counter, which a symlink
//     cannot hold. One atomic file write makes each transition a single step.
//   - The links are still worth having: operators and scripts (ls -l, a unit's ExecStartPre,
//     a support bundle) follow current/model.onnx without parsing JSON, and a reader resolving
//     the link always lands in a whole slot.
//
// A slot is complete and synced (bundle.Open fsyncs each file and the folder, Install renames
// .staging to its name and syncs slots/) before the state file names it, so the state never
// points at a partial slot. Recover also checks the current slot's files against the sizes and
// sha256 sums of its manifest and rolls back to the previous slot when they do not match. It
// does not check the signature again: the slot's signature was checked at install, the state
// folder is trusted as much as the keyring itself, and a key rotation must not make installed
// slots unusable.
//
// The power-loss tests kill a child process (SIGKILL) after every step of Install, Update,
// Commit, Rollback, Activate and Recover in turn, recover, and check the folder from scratch.
// A killed process keeps what it wrote, a power cut loses what was not synced: the fsync after
// every write and rename, in the order above, is what makes a power cut (on a file system that
// honours fsync) end like one of those kills. The tests cannot cut the power themselves.
//
// # States
//
//	idle ─Update─▶ downloading ─▶ verifying ─▶ installed ─▶ trial ─Commit──────▶ committed
//	  ▲                 │              │                      ├─Rollback/check─▶ rolled_back
//	  └────── failure ◀─┴──────────────┘                      └─too many starts▶ rolled_back
//
// Install enters at verifying. A failed download or bundle goes back to idle, with the error
// as Reason, and leaves the current slot alone. Trial is recorded (pending = the new slot,
// previous = the old one, attempts = 0) before the current link switches. A stop before trial
// is recorded ends the update (Recover: idle, "update interrupted while ..."). Each daemon
// start on a slot on trial counts an attempt, like a boot counter: Recover rolls back once
// Config.MaxAttempts starts did not end in Commit, so a model that crashes the daemon when it
// loads (a segfault in ONNX Runtime, the OOM killer, a watchdog kill) cannot keep the device
// down.
//
// # Applying a new model
//
// The daemon applies a new slot by restarting (RecommendedSwap is SwapRestart): after Install
// or Update succeeds, or after Rollback, it exits with ExitRestart and systemd starts it again
// into the current slot. It does not swap ONNX Runtime sessions in process, because ONNX
// Runtime, with glibc's allocator, does not give the memory of a destroyed session back to the
// system. BenchmarkModelSwapRSS measured it (2-core Xeon development machine, Debian 12,
// ONNX Runtime 1.24.1 CPU, 2 intra-op threads, each swap opening the new session before closing
// the old, VmRSS with one session open, Go heap returned to the OS):
//
//	model                            1 session   after 5 swaps   growth over the next 200 swaps
//	resnet32.onnx (83 KB)            36-40 MB    41.5-42.1 MB    +3.9 to +5.2 MB (19-26 KiB/swap)
//	25 MB classifier (MLP, 3x32x32)  113-135 MB  360-411 MB      +102 to +123 MB (0.5-0.6 MB/swap)
//
// (ONNX Runtime initialised without a session: 24 MB; the lower "1 session" figures are from
// a process that had opened sessions before. The 25 MB model was made for this
// measurement, with Debian's python3-onnx, and is not in the repository; run the benchmark
// with OODGUARD_SWAP_MODEL=path for a device's real model.) A longer run of 1000 swaps levels
// off, at about 42 MB for resnet32 and 650-800 MB for the 25 MB model: 5-6 times what one
// session needs, on devices with a few GB shared with the GPU. The growth follows the model's
// size, as in onnxruntime_go #112-#114 and onnxruntime #26831. It is heap fragmentation: with
// MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0 the 25 MB model stays at 64 MB through
// 200 swaps (+0.7 MB), and one session needs 64 MB instead of 113. That tuning is specific to
// glibc, makes opening a session slower (about 100 ms to 220 ms per swap here), and says
// nothing about CUDA and TensorRT memory, so it is not a reason to swap in process; it may be
// worth measuring for the daemon's memory in general.
//
// A restart also fits the trial: a crash while loading the new model is one more daemon start
// for Recover to count, rather than the loss of a daemon that was still serving the old model;
// start, update and rollback share one path (Recover, then Activate); and two models are never
// in memory at once. Its cost is a few seconds without frames per update, and updates are rare.
//
// # Daemon integration
//
//   - At start: Open the store, call Recover (it reports the state through OnState: publish
//     it retained), then Activate with a CheckFunc that opens slot.ModelPath() with ONNX
//     Runtime, checks the model's input against slot.Manifest.Preprocess, loads
//     slot.CalibrationPath(), scores every canary (slot.CanaryInput) and keeps the model. Tell
//     systemd READY only after Activate returned. ErrNoSlot means nothing is installed: keep
//     running, report the state, wait for an update.
//   - While the state is PhaseTrial, count healthy frames; after K of them call Commit. When the
//     model fails in service during the trial (inference errors, the stuck-inference watchdog),
//     call Rollback(reason) and exit with ExitRestart.
//   - On an update command: Update(ctx, url, sha256, opts); on success exit with ExitRestart
//     (after flushing what must be sent). On error the state is already idle with the reason;
//     retry later when errors.Is(err, ErrInterrupted) or a *StatusError is Temporary: the next
//     Update with the same sha256 resumes the download.
//   - The unit: Restart=on-failure (75 is a failure), RestartSec=2s or more, and
//     StartLimitBurst/StartLimitIntervalSec that allow MaxAttempts+2 starts in a row, or systemd
//     gives up before Recover can roll back; WatchdogSec, so that a hang while loading a slot on
//     trial also ends in a restart that counts; StateDirectory=oodguard.
//   - One Store per state folder: no other process (e.g. the CLI) may change it while the daemon
//     runs.
package ota

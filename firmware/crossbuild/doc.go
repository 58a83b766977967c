// Package crossbuild holds no code: its tests check the device firmware as it is built for
// linux/arm64 (scripts/cross-arm64.sh, `make firmware`) and its systemd unit
// (firmware/systemd).
//
// TestARM64 cross-compiles with cgo (aarch64-linux-gnu-gcc) and runs the results under
// qemu-aarch64: the runtime package's PyTorch-reference tests on the arm64 ONNX Runtime, the
// arm64 logits and scores against the host's, and the daemon from the firmware tarball. It is
// skipped under -short; without the cross toolchain or qemu it skips, except where CI=true or
// OODGUARD_REQUIRE_ORT=1, where it fails. `make debs` installs what it needs.
package crossbuild

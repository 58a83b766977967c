#!/usr/bin/env bash
# make reproduce: Unleashing Mask's effect on real data, end to end with oodguard's own commands
# (train, unleash, eval). See docs/reproduce.md.
#
#   REPRODUCE=memorisation         (the default) issue #14's memorisation regime, 3 seeds, both
#                                  datasets: scripts/memorisation/regime.sh (hours; resumable)
#   REPRODUCE=memorisation-smoke   the same chain on a few hundred images, one seed: minutes
#   REPRODUCE=smoke|short|full     the older driver internal/reproduce (short: about 20 minutes
#                                  on 2 cores), Fashion-MNIST vs MNIST and CIFAR-10 vs Tiny ImageNet
#   REPRODUCE_SEEDS=1,2,3          seeds (default: the mode's)
#   REPRODUCE_ONLY=cifar10         one dataset only (fashion-mnist or cifar10)
#   REPRODUCE_OUT=DIR              output folder (default .cache/reproduce/$REPRODUCE)
#   REPRODUCE_DATA=DIR             the shared data (default ../shared/data)
#   REPRODUCE_FRESH=1              run every step again (finished steps are reused otherwise)
#
# Extra arguments go to the driver (go run ./internal/reproduce -h lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
if [[ -z "${ONNXRUNTIME_LIB:-}" ]]; then
	ONNXRUNTIME_LIB="$PWD/.cache/onnxruntime/1.24.1/linux-$($GO env GOARCH)/libonnxruntime.so"
	export ONNXRUNTIME_LIB
fi
[[ -f "$ONNXRUNTIME_LIB" ]] || scripts/fetch-onnxruntime.sh
# Always (re)build: a bin/oodguard left from an older checkout would run older code under this
# commit's name in results.md (go build is quick when nothing changed).
$GO build -o bin/ ./cmd/oodguard
case "${REPRODUCE:-memorisation}" in
	memorisation) exec scripts/memorisation/regime.sh full "$@" ;;
	memorisation-smoke) exec scripts/memorisation/regime.sh smoke "$@" ;;
	memorisation-densenet) exec scripts/memorisation/regime.sh densenet "$@" ;;
	smoke | short | default | full) ;;
	*)
		echo "make reproduce: unknown REPRODUCE=$REPRODUCE (want memorisation, memorisation-smoke, memorisation-densenet, smoke, short or full)" >&2
		exit 2
		;;
esac

mkdir -p .cache/reproduce
$GO build -o .cache/reproduce/reproduce ./internal/reproduce
exec .cache/reproduce/reproduce "$@"
